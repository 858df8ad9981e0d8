//! 128-bit labels and the fixed-key-AES primitives built on them.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128Enc;

/// A 128-bit wire label, seed or OT output.
pub type Block = u128;

/// Number of AES blocks hashed in one batch (keeps the AES-NI pipeline full).
const BATCH: usize = 32;

/// Key of the fixed permutation π (any public constant works; these are digits of π).
const FIXED_KEY: [u8; 16] = [
    0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44,
];

/// The point-and-permute (colour) bit of a label.
#[inline(always)]
pub fn lsb(x: Block) -> bool {
    x & 1 == 1
}

/// All-ones when the low bit of `x` is set, zero otherwise (branch-free selection).
#[inline(always)]
pub(crate) fn lsb_mask(x: Block) -> Block {
    (x & 1).wrapping_neg()
}

/// All-ones when `bit` is true (branch-free selection).
#[inline(always)]
pub(crate) fn bit_mask(bit: bool) -> Block {
    (bit as u128).wrapping_neg()
}

/// σ(x_hi, x_lo) = (x_hi ⊕ x_lo, x_hi): the linear orthomorphism of Guo et al. 2020.
#[inline(always)]
pub(crate) fn sigma(x: Block) -> Block {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    (((hi ^ lo) as u128) << 64) | hi as u128
}

/// Encrypts `xs` in place with `cipher`, in batches that fill the AES pipeline.
#[inline]
pub(crate) fn aes_in_place(cipher: &Aes128Enc, xs: &mut [Block]) {
    let mut buf = [aes::Block::default(); BATCH];
    for chunk in xs.chunks_mut(BATCH) {
        let n = chunk.len();
        for (b, x) in buf.iter_mut().zip(chunk.iter()) {
            *b = aes::Block::from(x.to_le_bytes());
        }
        cipher.encrypt_blocks(&mut buf[..n]);
        for (x, b) in chunk.iter_mut().zip(buf.iter()) {
            *x = u128::from_le_bytes((*b).into());
        }
    }
}

/// Tweakable circular-correlation-robust hash H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i over fixed-key AES.
pub struct Tccr {
    pi: Aes128Enc,
}

impl Default for Tccr {
    fn default() -> Self {
        Self::new()
    }
}

impl Tccr {
    /// Builds the hash with the public fixed key.
    pub fn new() -> Self {
        Tccr {
            pi: Aes128Enc::new(&FIXED_KEY.into()),
        }
    }

    /// Replaces every pre-tweaked input z = σ(x) ⊕ i by π(z) ⊕ z, in place.
    #[inline]
    pub(crate) fn hash_pretweaked(&self, zs: &mut [Block]) {
        let mut buf = [aes::Block::default(); BATCH];
        for chunk in zs.chunks_mut(BATCH) {
            let n = chunk.len();
            for (b, z) in buf.iter_mut().zip(chunk.iter()) {
                *b = aes::Block::from(z.to_le_bytes());
            }
            self.pi.encrypt_blocks(&mut buf[..n]);
            for (z, b) in chunk.iter_mut().zip(buf.iter()) {
                *z ^= u128::from_le_bytes((*b).into());
            }
        }
    }

    /// H(x, i) for one input (tests and reference use; the garbler batches).
    pub fn hash(&self, x: Block, tweak: Block) -> Block {
        let mut z = [sigma(x) ^ tweak];
        self.hash_pretweaked(&mut z);
        z[0]
    }
}

/// A keyed pseudorandom function F_K(x) = AES_K(x), used to derive garbler input labels.
pub(crate) struct Prf {
    cipher: Aes128Enc,
}

impl Prf {
    /// Keys the PRF (the key schedule is wiped on drop by the `aes` crate's `zeroize` feature).
    pub(crate) fn new(key: Block) -> Self {
        Prf {
            cipher: Aes128Enc::new(&key.to_le_bytes().into()),
        }
    }

    /// Replaces every input by its PRF value, in place.
    pub(crate) fn eval_in_place(&self, xs: &mut [Block]) {
        aes_in_place(&self.cipher, xs);
    }
}

/// Reads little-endian 128-bit blocks from bytes (length a multiple of 16).
pub(crate) fn blocks_from_bytes(bytes: &[u8], out: &mut Vec<Block>) {
    out.extend(bytes.chunks_exact(16).map(|c| {
        let mut a = [0u8; 16];
        a.copy_from_slice(c);
        u128::from_le_bytes(a)
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigma_is_linear_and_invertible() {
        let x = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let y = 0xdead_beef_0000_1111_2222_3333_4444_5555u128;
        assert_eq!(sigma(x ^ y), sigma(x) ^ sigma(y));
        // σ is an orthomorphism: σ(x) ⊕ x is also a permutation, in particular nonzero for x ≠ 0.
        assert_ne!(sigma(x) ^ x, 0);
        assert_ne!(sigma(x), x);
    }

    #[test]
    fn hash_batches_agree_with_single_calls_and_depend_on_tweak() {
        let h = Tccr::new();
        let xs: Vec<Block> = (0..70u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let mut zs: Vec<Block> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| sigma(x) ^ i as u128)
            .collect();
        h.hash_pretweaked(&mut zs);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(zs[i], h.hash(x, i as u128));
        }
        assert_ne!(h.hash(xs[1], 0), h.hash(xs[1], 1));
    }
}
