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

/// Tweakable circular-correlation-robust hash of Guo, Katz, Wang and Yu (S&P 2020, §7):
/// H(x, i) = π(π(x) ⊕ i') ⊕ π(x), with i' = i ⊕ N for this garbling's random nonce N, over the
/// fixed-key AES permutation π. Two AES calls per hash (batched, so the pipeline stays full).
///
/// Unlike the σ-based hash used before (π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i, a function of σ(x) ⊕ i only),
/// inputs with different tweaks do not collide by construction: a client that chooses its
/// labels (through its OT seeds) cannot line up two gates' hashes to learn Δ. The nonce makes
/// tweaks differ across garblings, so work against one garbling's tweaks does not carry to
/// another's.
pub struct Tccr {
    pi: Aes128Enc,
    nonce: Block,
}

impl Default for Tccr {
    fn default() -> Self {
        Self::new()
    }
}

impl Tccr {
    /// The hash with nonce 0 (tests and benchmarks; sessions use [`Tccr::with_nonce`]).
    pub fn new() -> Self {
        Self::with_nonce(0)
    }

    /// The hash of one garbling, whose tweaks are offset by `nonce`.
    pub fn with_nonce(nonce: Block) -> Self {
        Tccr {
            pi: Aes128Enc::new(&FIXED_KEY.into()),
            nonce,
        }
    }

    /// The nonce XORed into every tweak.
    pub fn nonce(&self) -> Block {
        self.nonce
    }

    /// Replaces every `xs[j]` by H(xs[j], tweaks[j]), in place (`tweaks` at least as long).
    #[inline]
    pub(crate) fn hash_many(&self, xs: &mut [Block], tweaks: &[Block]) {
        let mut buf = [aes::Block::default(); BATCH];
        let mut u = [0 as Block; BATCH];
        for (chunk, tw) in xs.chunks_mut(BATCH).zip(tweaks.chunks(BATCH)) {
            let n = chunk.len();
            for (b, x) in buf.iter_mut().zip(chunk.iter()) {
                *b = aes::Block::from(x.to_le_bytes());
            }
            self.pi.encrypt_blocks(&mut buf[..n]);
            for ((b, ui), t) in buf.iter_mut().zip(u.iter_mut()).zip(tw).take(n) {
                *ui = u128::from_le_bytes((*b).into());
                *b = aes::Block::from((*ui ^ *t ^ self.nonce).to_le_bytes());
            }
            self.pi.encrypt_blocks(&mut buf[..n]);
            for ((x, b), ui) in chunk.iter_mut().zip(buf.iter()).zip(u.iter()) {
                *x = u128::from_le_bytes((*b).into()) ^ ui;
            }
        }
    }

    /// H(x, i) for one input (tests and reference use; the garbler batches).
    pub fn hash(&self, x: Block, tweak: Block) -> Block {
        let mut z = [x];
        self.hash_many(&mut z, &[tweak]);
        z[0]
    }

    /// The fixed permutation π itself (the collision test builds the old hash from it).
    #[cfg(test)]
    pub(crate) fn permute(&self, x: Block) -> Block {
        let mut b = aes::Block::from(x.to_le_bytes());
        self.pi.encrypt_block(&mut b);
        u128::from_le_bytes(b.into())
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
pub fn blocks_from_bytes(bytes: &[u8], out: &mut Vec<Block>) {
    out.extend(bytes.chunks_exact(16).map(|c| {
        let mut a = [0u8; 16];
        a.copy_from_slice(c);
        u128::from_le_bytes(a)
    }));
}

/// Writes blocks as little-endian bytes into `dst` (16 bytes each).
pub fn blocks_to_bytes(dst: &mut [u8], src: &[Block]) {
    for (d, s) in dst.chunks_exact_mut(16).zip(src) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_batches_agree_with_single_calls_and_depend_on_tweak() {
        let h = Tccr::new();
        let xs: Vec<Block> = (0..70u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let tweaks: Vec<Block> = (0..70u128).collect();
        let mut zs = xs.clone();
        h.hash_many(&mut zs, &tweaks);
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(zs[i], h.hash(x, i as u128));
            // The definition, spelled out: π(π(x) ⊕ i) ⊕ π(x).
            let px = h.permute(x);
            assert_eq!(zs[i], h.permute(px ^ i as u128) ^ px);
        }
        assert_ne!(h.hash(xs[1], 0), h.hash(xs[1], 1));
        // The nonce moves every tweak: the same (x, i) hashes differently in another garbling.
        let other = Tccr::with_nonce(0x1234_5678_9abc_def0_0fed_cba9_8765_4321);
        assert_ne!(other.hash(xs[1], 0), h.hash(xs[1], 0));
        assert_eq!(other.hash(xs[1], 5), h.hash(xs[1], 5 ^ other.nonce()));
    }
}
