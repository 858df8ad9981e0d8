//! The local linear code of primal LPN: output j is XORed with d = 10 pseudorandom entries of the
//! k-entry secret vector. The code is public: indices come from AES-CTR under a public seed.

use super::params::LPN_D;
use crate::aes::{Block, Prg};

/// Outputs per index batch (5 PRG blocks give the 20 indices of two outputs).
const CHUNK: usize = 256;

/// The LPN encoder of one round.
pub(crate) struct Lpn {
    prg: Prg,
    mask: u32,
}

impl Lpn {
    /// The code for dimension 2^log_k with public seed `seed`.
    pub(crate) fn new(seed: Block, log_k: u32) -> Self {
        Lpn {
            prg: Prg::new(seed),
            mask: ((1u64 << log_k) - 1) as u32,
        }
    }

    /// `out[j] ^= ⊕_l base[idx(start + j, l)]` for every j; `start` and `out.len()` are even.
    pub(crate) fn apply(&self, base: &[Block], start: u64, out: &mut [Block]) {
        debug_assert!(start.is_multiple_of(2) && out.len().is_multiple_of(2));
        debug_assert_eq!(base.len(), self.mask as usize + 1);
        let mut rnd = [0 as Block; CHUNK / 2 * 5];
        let mut idx = [0u32; CHUNK / 2 * 5 * 4];
        for (ci, chunk) in out.chunks_mut(CHUNK).enumerate() {
            let first = start + (ci * CHUNK) as u64;
            let blocks = chunk.len() / 2 * 5;
            self.prg.fill(0, first / 2 * 5, &mut rnd[..blocks]);
            as_u32(&rnd[..blocks], &mut idx);
            for (o, ix) in chunk.iter_mut().zip(idx.chunks_exact(LPN_D)) {
                let mut acc = *o;
                for &i in ix {
                    // `mask` < base.len(): in bounds by construction.
                    acc ^= base[(i & self.mask) as usize];
                }
                *o = acc;
            }
        }
    }
}

/// Splits blocks into little-endian u32 words (4 per block).
fn as_u32(blocks: &[Block], out: &mut [u32]) {
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(4)) {
        o[0] = *b as u32;
        o[1] = (*b >> 32) as u32;
        o[2] = (*b >> 64) as u32;
        o[3] = (*b >> 96) as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_linear_and_independent_of_chunking() {
        let log_k = 8;
        let base: Vec<Block> = (0..256u128).map(|i| i * 0x1111_2222_3333_4445).collect();
        let lpn = Lpn::new(42, log_k);
        let mut whole = vec![7 as Block; 600];
        lpn.apply(&base, 100, &mut whole);
        let mut parts = vec![7 as Block; 600];
        lpn.apply(&base, 100, &mut parts[..260]);
        lpn.apply(&base, 360, &mut parts[260..]);
        assert_eq!(whole, parts);
        // Linear in the base: encoding b1 ⊕ b2 equals the XOR of the encodings (from zero outputs).
        let b2: Vec<Block> = (0..256u128).map(|i| i ^ 0xabcdef).collect();
        let sum: Vec<Block> = base.iter().zip(&b2).map(|(a, b)| a ^ b).collect();
        let (mut e1, mut e2, mut e3) = (vec![0; 64], vec![0; 64], vec![0; 64]);
        lpn.apply(&base, 0, &mut e1);
        lpn.apply(&b2, 0, &mut e2);
        lpn.apply(&sum, 0, &mut e3);
        for i in 0..64 {
            assert_eq!(e1[i] ^ e2[i], e3[i]);
        }
        assert_ne!(e1[0], e1[1]);
    }
}
