//! One RNS prime: Barrett and Shoup reduction, powers and inverses.

/// High 128 bits of the 256-bit product `a · b`.
#[inline]
pub(crate) fn mul_hi_u128(a: u128, b: u128) -> u128 {
    let (a0, a1) = (a as u64 as u128, a >> 64);
    let (b0, b1) = (b as u64 as u128, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64)
}

/// One NTT-friendly prime q < 2^61 with its Barrett constant.
#[derive(Clone, Debug)]
pub(crate) struct Prime {
    pub q: u64,
    /// floor(2^128 / q).
    barrett: u128,
    /// floor(2^64 / q).
    barrett64: u64,
}

impl Prime {
    pub fn new(q: u64) -> Self {
        assert!(q > 2 && q < (1 << 61), "prime out of range");
        // floor(2^128 / q) = floor((2^128 - 1) / q) because q is odd and > 1.
        Prime {
            q,
            barrett: u128::MAX / q as u128,
            barrett64: ((u128::MAX / q as u128) >> 64) as u64,
        }
    }

    /// x mod q for any 64-bit x.
    #[inline]
    pub fn reduce_u64(&self, x: u64) -> u64 {
        let est = ((x as u128 * self.barrett64 as u128) >> 64) as u64;
        // est ∈ [floor(x/q) − 2, floor(x/q)].
        let mut r = x - est * self.q;
        if r >= self.q {
            r -= self.q;
        }
        if r >= self.q {
            r -= self.q;
        }
        r
    }

    /// x mod q for any 128-bit x.
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let est = mul_hi_u128(x, self.barrett);
        let mut r = x.wrapping_sub(est.wrapping_mul(self.q as u128)) as u64;
        // est ∈ [floor(x/q) − 2, floor(x/q)], so r < 3q < 2^63.
        if r >= self.q {
            r -= self.q;
        }
        if r >= self.q {
            r -= self.q;
        }
        r
    }

    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.q {
            s - self.q
        } else {
            s
        }
    }

    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            a - b
        } else {
            a + self.q - b
        }
    }

    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 {
            0
        } else {
            self.q - a
        }
    }

    /// A signed integer as a residue.
    #[inline]
    pub fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 {
            self.neg(r)
        } else {
            r
        }
    }

    pub fn pow(&self, mut b: u64, mut e: u64) -> u64 {
        let mut r = 1u64;
        b %= self.q;
        while e > 0 {
            if e & 1 == 1 {
                r = self.mul(r, b);
            }
            b = self.mul(b, b);
            e >>= 1;
        }
        r
    }

    /// Inverse of a unit (Fermat).
    pub fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.q - 2)
    }

    /// Shoup constant floor(w · 2^64 / q) for a fixed multiplicand w < q.
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.q as u128) as u64
    }

    /// a · w mod q with w's Shoup constant.
    #[inline]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let hi = ((a as u128 * w_shoup as u128) >> 64) as u64;
        let r = a.wrapping_mul(w).wrapping_sub(hi.wrapping_mul(self.q));
        if r >= self.q {
            r - self.q
        } else {
            r
        }
    }
}
