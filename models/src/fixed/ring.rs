//! The share ring Z_2^k, k ≤ 64, on `u64` values kept reduced (`x < 2^k`).

use serde::{Deserialize, Serialize};

/// The ring Z_2^bits; values are `u64` in `[0, 2^bits)`, arithmetic is wrapping then masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Ring {
    /// k: the ring is Z_2^k (1 ≤ k ≤ 64).
    pub bits: u32,
}

impl Ring {
    /// The ring Z_2^bits (`bits` is clamped to 1..=64).
    pub fn new(bits: u32) -> Ring {
        Ring {
            bits: bits.clamp(1, 64),
        }
    }

    /// `2^k − 1`.
    pub fn mask(&self) -> u64 {
        if self.bits >= 64 {
            u64::MAX
        } else {
            (1u64 << self.bits) - 1
        }
    }

    /// `x mod 2^k`.
    pub fn reduce(&self, x: u64) -> u64 {
        x & self.mask()
    }

    /// The ring element of a signed integer (`v mod 2^k`, two's complement).
    pub fn from_i64(&self, v: i64) -> u64 {
        self.reduce(v as u64)
    }

    /// `sext_k(x)`: the signed integer in `[−2^(k−1), 2^(k−1))` congruent to `x`.
    pub fn to_i64(&self, x: u64) -> i64 {
        sext(x, self.bits)
    }

    /// `sext_w(x)`: the low `w` bits of `x` read as a two's-complement number (`w` ≤ 64).
    pub fn sext(&self, x: u64, w: u32) -> i64 {
        sext(x, w)
    }

    /// `a + b mod 2^k`.
    pub fn add(&self, a: u64, b: u64) -> u64 {
        self.reduce(a.wrapping_add(b))
    }

    /// `a − b mod 2^k`.
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        self.reduce(a.wrapping_sub(b))
    }

    /// `−a mod 2^k`.
    pub fn neg(&self, a: u64) -> u64 {
        self.reduce(a.wrapping_neg())
    }

    /// `a · b mod 2^k`.
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce(a.wrapping_mul(b))
    }

    /// `a · 2^s mod 2^k`.
    pub fn shl(&self, a: u64, s: u32) -> u64 {
        if s >= 64 {
            0
        } else {
            self.reduce(a << s)
        }
    }
}

/// The low `w` bits of `x` (1 ≤ w ≤ 64) read as a two's-complement number.
pub fn sext(x: u64, w: u32) -> i64 {
    let w = w.clamp(1, 64);
    let sh = 64 - w;
    ((x << sh) as i64) >> sh
}
