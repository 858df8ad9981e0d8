//! The correlated GGM tree of Half-Tree (Guo, Yang, Wang, Zhang, Xie, Liu, Zhao, Eurocrypt 2023):
//! the single-point COT inside Ferret's MPCOT.
//!
//! Level 1 is (s, Δ ⊕ s); every parent p has children left = H(p), right = p ⊕ H(p) with the
//! circular correlation-robust H(x) = π(σ(x)) ⊕ σ(x). Every level then XORs to Δ, so the XOR K⁰ᵢ
//! of the left children of level i determines the right XOR as K⁰ᵢ ⊕ Δ, and one base COT per
//! level (the receiver's choice b = ¬αᵢ) gives the receiver K^{ᾱᵢ}ᵢ from the one block
//! c = q ⊕ K⁰ᵢ that the sender sends. Children are stored split (lefts at j, rights at n + j), so
//! the leaf of path p sits at index bit-reverse(p); the order is irrelevant to Ferret.
//!
//! Leaves have their least significant bit cleared (the COT convention: sender values have
//! lsb 0, the receiver's lsb is its choice bit), and the receiver's punctured leaf is the XOR of
//! all its other leaves with lsb set, which equals the sender's leaf ⊕ Δ.

use crate::aes::{sigma, Block, Ccr};

const LSB_CLEAR: Block = !1;
/// Parents hashed per AES batch.
const TILE: usize = 32;

/// Expands parents `leaves[..n]` into `leaves[..2n]`; returns the XOR of the left children (or of
/// the right children when `want_right`). `clear` masks the lsb of every child (leaf level).
fn expand(h: &Ccr, leaves: &mut [Block], n: usize, want_right: bool, clear: bool) -> Block {
    let mask = if clear { LSB_CLEAR } else { !0 };
    let mut sum = 0 as Block;
    let mut z = [0 as Block; TILE];
    let mut e = [0 as Block; TILE];
    let mut base = 0;
    while base < n {
        let m = TILE.min(n - base);
        for (zi, &p) in z.iter_mut().zip(&leaves[base..base + m]) {
            *zi = sigma(p);
        }
        e[..m].copy_from_slice(&z[..m]);
        h.pi().encrypt(&mut e[..m]);
        for t in 0..m {
            let j = base + t;
            let parent = leaves[j];
            let left = (e[t] ^ z[t]) & mask;
            let right = (parent ^ e[t] ^ z[t]) & mask;
            leaves[n + j] = right;
            leaves[j] = left;
            sum ^= if want_right { right } else { left };
        }
        base += m;
    }
    sum
}

/// Sender: builds the depth-`d` tree from Δ and the secret `seed` into `leaves` (2^d entries) and
/// writes the left XOR of every level into `k0` (d entries). Requires d ≥ 2.
pub(crate) fn build(
    h: &Ccr,
    d: usize,
    delta: Block,
    seed: Block,
    leaves: &mut [Block],
    k0: &mut [Block],
) {
    leaves[0] = seed;
    leaves[1] = delta ^ seed;
    k0[0] = seed;
    for i in 2..=d {
        k0[i - 1] = expand(h, leaves, 1 << (i - 1), false, i == d);
    }
}

/// Receiver: rebuilds every leaf but the one on path `alpha` (d bits, most significant first)
/// from `k_recv[i] = K^{ᾱ}ᵢ`; fills the punctured leaf with the XOR of the others, lsb set.
/// Returns the punctured leaf's index.
pub(crate) fn eval(
    h: &Ccr,
    d: usize,
    alpha: usize,
    k_recv: &[Block],
    leaves: &mut [Block],
) -> usize {
    let a1 = (alpha >> (d - 1)) & 1;
    leaves[0] = 0;
    leaves[1] = 0;
    leaves[1 - a1] = k_recv[0];
    let mut pos = a1;
    for i in 2..=d {
        let half = 1 << (i - 1);
        let ai = (alpha >> (d - i)) & 1;
        let side = 1 - ai;
        let clear = i == d;
        let sum = expand(h, leaves, half, side == 1, clear);
        // Both children of the unknown on-path parent are H(0) junk.
        let junk = leaves[pos];
        leaves[pos] = 0;
        leaves[pos + half] = 0;
        let mut sib = sum ^ junk ^ k_recv[i - 1];
        if clear {
            sib &= LSB_CLEAR;
        }
        leaves[pos + side * half] = sib;
        pos += ai * half;
    }
    let all = leaves.iter().fold(0 as Block, |a, &x| a ^ x);
    leaves[pos] = all | 1;
    pos
}

/// Index of path `p` (d bits, most significant first) in the split leaf layout.
#[cfg(test)]
fn bit_reverse(p: usize, d: usize) -> usize {
    (0..d).fold(0, |r, i| (r << 1) | ((p >> i) & 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_gets_every_leaf_but_alpha_and_alpha_is_offset_by_delta() {
        let h = Ccr::new();
        let delta = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321u128 | 1;
        for d in [2usize, 3, 5, 10] {
            let n = 1 << d;
            let mut s = vec![0; n];
            let mut k0 = vec![0; d];
            build(&h, d, delta, 0xfeed_beef ^ d as u128, &mut s, &mut k0);
            for alpha in [0, 1, n / 3, n - 1] {
                // K^{ᾱᵢ}ᵢ as the receiver gets it: K⁰ᵢ ⊕ ᾱᵢ·Δ (lsb as the base COT delivers it).
                let k_recv: Vec<Block> = (1..=d)
                    .map(|i| {
                        let abar = 1 - ((alpha >> (d - i)) & 1);
                        k0[i - 1] ^ if abar == 1 { delta } else { 0 }
                    })
                    .collect();
                let mut r = vec![0; n];
                let pos = eval(&h, d, alpha, &k_recv, &mut r);
                assert_eq!(pos, bit_reverse(alpha, d));
                for j in 0..n {
                    assert_eq!(s[j] & 1, 0, "sender lsb");
                    if j == pos {
                        assert_eq!(r[j], s[j] ^ delta, "d={d} alpha={alpha}");
                    } else {
                        assert_eq!(r[j], s[j], "d={d} alpha={alpha} j={j}");
                    }
                }
            }
        }
    }
}
