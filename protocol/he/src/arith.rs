//! Word-size modular arithmetic and the negacyclic NTT over one RNS prime.

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

fn bit_reverse(x: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        x.reverse_bits() >> (usize::BITS - bits)
    }
}

/// Precomputed tables for the negacyclic NTT of length n modulo one prime.
#[derive(Clone, Debug)]
pub(crate) struct NttTable {
    pub p: Prime,
    n: usize,
    psi_rev: Vec<u64>,
    psi_rev_shoup: Vec<u64>,
    ipsi_rev: Vec<u64>,
    ipsi_rev_shoup: Vec<u64>,
    n_inv: u64,
    n_inv_shoup: u64,
    /// 52-bit Shoup constants for the AVX-512 IFMA path.
    psi_rev_shoup52: Vec<u64>,
    ipsi_rev_shoup52: Vec<u64>,
    n_inv_shoup52: u64,
    /// Whether this CPU runs the IFMA path (q < 2^50 and avx512ifma present).
    ifma: bool,
}

impl NttTable {
    /// Tables for X^n + 1 modulo q; q must be 1 mod 2n.
    pub fn new(q: u64, n: usize) -> Option<Self> {
        let p = Prime::new(q);
        if !n.is_power_of_two() || !(q - 1).is_multiple_of(2 * n as u64) {
            return None;
        }
        let log_n = n.trailing_zeros();
        // A primitive 2n-th root of unity: x^((q−1)/2n) with x^(...·n) = −1.
        let mut psi = 0;
        for g in 2..10_000u64 {
            let c = p.pow(g, (q - 1) / (2 * n as u64));
            if p.pow(c, n as u64) == q - 1 {
                psi = c;
                break;
            }
        }
        if psi == 0 {
            return None;
        }
        let ipsi = p.inv(psi);
        let mut psi_rev = vec![0; n];
        let mut ipsi_rev = vec![0; n];
        let (mut pw, mut ipw) = (1u64, 1u64);
        for i in 0..n {
            let r = bit_reverse(i, log_n);
            psi_rev[r] = pw;
            ipsi_rev[r] = ipw;
            pw = p.mul(pw, psi);
            ipw = p.mul(ipw, ipsi);
        }
        let psi_rev_shoup = psi_rev.iter().map(|&w| p.shoup(w)).collect();
        let ipsi_rev_shoup = ipsi_rev.iter().map(|&w| p.shoup(w)).collect();
        let n_inv = p.inv(n as u64);
        let n_inv_shoup = p.shoup(n_inv);
        let s52 = |w: u64| (((w as u128) << 52) / q as u128) as u64;
        let psi_rev_shoup52 = psi_rev.iter().map(|&w| s52(w)).collect();
        let ipsi_rev_shoup52 = ipsi_rev.iter().map(|&w| s52(w)).collect();
        let n_inv_shoup52 = s52(n_inv);
        let ifma = q < (1 << 50) && ifma_available();
        Some(NttTable {
            p,
            n,
            psi_rev,
            psi_rev_shoup,
            ipsi_rev,
            ipsi_rev_shoup,
            n_inv,
            n_inv_shoup,
            psi_rev_shoup52,
            ipsi_rev_shoup52,
            n_inv_shoup52,
            ifma,
        })
    }

    /// The same tables with the vector path switched off (tests compare both paths).
    #[cfg(test)]
    pub fn scalar_only(mut self) -> Self {
        self.ifma = false;
        self
    }

    /// In-place forward transform (coefficients → evaluations, bit-reversed order).
    pub fn forward(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n);
        #[cfg(target_arch = "x86_64")]
        if self.ifma {
            // SAFETY: `ifma` is set only when the CPU reports avx512f + avx512ifma, and q < 2^50.
            unsafe { ifma::forward(self, a) };
            return;
        }
        self.forward_scalar(a);
    }

    fn forward_scalar(&self, a: &mut [u64]) {
        let (q, n) = (self.p.q, self.n);
        let mut t = n;
        let mut m = 1;
        while m < n {
            t >>= 1;
            self.forward_stage_scalar(a, m, t);
            m <<= 1;
        }
        for x in a.iter_mut() {
            let mut v = *x;
            if v >= 2 * q {
                v -= 2 * q;
            }
            if v >= q {
                v -= q;
            }
            *x = v;
        }
    }

    /// One Cooley–Tukey stage (m blocks of span t), Harvey's lazy butterflies: values stay in [0, 4q).
    fn forward_stage_scalar(&self, a: &mut [u64], m: usize, t: usize) {
        let q = self.p.q;
        let two_q = 2 * q;
        for i in 0..m {
            let j1 = 2 * i * t;
            let w = self.psi_rev[m + i];
            let ws = self.psi_rev_shoup[m + i];
            let (lo, hi) = a[j1..j1 + 2 * t].split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let mut u = *x;
                if u >= two_q {
                    u -= two_q;
                }
                let qh = ((*y as u128 * ws as u128) >> 64) as u64;
                let v = y.wrapping_mul(w).wrapping_sub(qh.wrapping_mul(q)); // in [0, 2q)
                *x = u + v;
                *y = u + two_q - v;
            }
        }
    }

    /// In-place inverse transform (evaluations → coefficients), inputs and outputs reduced.
    pub fn inverse(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n);
        #[cfg(target_arch = "x86_64")]
        if self.ifma {
            // SAFETY: as in `forward`.
            unsafe { ifma::inverse(self, a) };
            return;
        }
        self.inverse_scalar(a);
    }

    fn inverse_scalar(&self, a: &mut [u64]) {
        let mut t = 1;
        let mut m = self.n;
        while m > 1 {
            let h = m >> 1;
            self.inverse_stage_scalar(a, h, t);
            t <<= 1;
            m = h;
        }
        for x in a.iter_mut() {
            *x = self.p.mul_shoup(*x, self.n_inv, self.n_inv_shoup);
        }
    }

    /// One Gentleman–Sande stage (h blocks of span t), lazy: values stay in [0, 2q).
    fn inverse_stage_scalar(&self, a: &mut [u64], h: usize, t: usize) {
        let q = self.p.q;
        let two_q = 2 * q;
        let mut j1 = 0;
        for i in 0..h {
            let w = self.ipsi_rev[h + i];
            let ws = self.ipsi_rev_shoup[h + i];
            let (lo, hi) = a[j1..j1 + 2 * t].split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let u = *x;
                let v = *y;
                let mut s = u + v;
                if s >= two_q {
                    s -= two_q;
                }
                *x = s;
                let d = u + two_q - v;
                let qh = ((d as u128 * ws as u128) >> 64) as u64;
                *y = d.wrapping_mul(w).wrapping_sub(qh.wrapping_mul(q));
            }
            j1 += 2 * t;
        }
    }
}

impl NttTable {
    /// dst = the centred lift of src (residues mod `from` < 2^52) as residues of this prime.
    pub fn lift_centred(&self, src: &[u64], from: u64, dst: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if self.ifma && src.len().is_multiple_of(8) && from < (1 << 52) {
            // SAFETY: `ifma` is set only on CPUs with avx512f + avx512ifma; lengths are multiples of 8.
            unsafe { ifma::lift_centred(self, src, from, dst) };
            return;
        }
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = if x > from / 2 {
                self.p.neg(self.p.reduce_u64(from - x))
            } else {
                self.p.reduce_u64(x)
            };
        }
    }

    /// a = (a − b)·w mod q for w < q with Shoup constant floor(w·2^64/q) (scalar) — all < q.
    pub fn sub_mul_const(&self, a: &mut [u64], b: &[u64], w: u64) {
        #[cfg(target_arch = "x86_64")]
        if self.ifma && a.len().is_multiple_of(8) {
            // SAFETY: as above.
            unsafe { ifma::sub_mul_const(self, a, b, w) };
            return;
        }
        let ws = self.p.shoup(w);
        for (x, &y) in a.iter_mut().zip(b) {
            *x = self.p.mul_shoup(self.p.sub(*x, y), w, ws);
        }
    }
}

/// Lazy multiply-accumulate of NTT-domain products: Σ x·k kept as hi·2^52 + lo (two u64 lanes),
/// so the IFMA instructions can do the products 8 at a time.
pub(crate) struct Acc52 {
    lo: Vec<u64>,
    hi: Vec<u64>,
    pending: usize,
}

impl Acc52 {
    /// Each step adds < 2^52 to `lo`; fold long before 2^64.
    const FOLD_EVERY: usize = 1 << 11;

    pub fn new(len: usize) -> Self {
        Acc52 {
            lo: vec![0; len],
            hi: vec![0; len],
            pending: 0,
        }
    }

    /// Resets every sum to zero (keeps the allocation).
    pub fn clear(&mut self) {
        self.lo.iter_mut().for_each(|x| *x = 0);
        self.hi.iter_mut().for_each(|x| *x = 0);
        self.pending = 0;
    }

    /// acc += x ⊙ k (all values < 2^50); `tables` only tell whether IFMA runs and how to fold.
    pub fn mac(&mut self, x: &[u64], k: &[u64], tables: &[NttTable]) {
        assert!(x.len() == self.lo.len() && k.len() == self.lo.len());
        #[cfg(target_arch = "x86_64")]
        if tables.iter().all(|t| t.ifma) && self.lo.len().is_multiple_of(8) {
            // SAFETY: `ifma` is set only on CPUs with avx512f + avx512ifma; lengths are multiples of 8.
            unsafe { ifma::mac(&mut self.lo, &mut self.hi, x, k) };
            self.after_step(tables);
            return;
        }
        for (((lo, hi), &a), &b) in self.lo.iter_mut().zip(self.hi.iter_mut()).zip(x).zip(k) {
            let p = a as u128 * b as u128;
            *lo += (p as u64) & ((1 << 52) - 1);
            *hi += (p >> 52) as u64;
        }
        self.after_step(tables);
    }

    fn after_step(&mut self, tables: &[NttTable]) {
        self.pending += 1;
        if self.pending == Self::FOLD_EVERY {
            let r = self.reduce(tables);
            self.lo = r;
            self.hi.iter_mut().for_each(|h| *h = 0);
            self.pending = 0;
        }
    }

    /// The sums reduced modulo each prime (prime-major layout, n = len / primes).
    pub fn reduce(&self, tables: &[NttTable]) -> Vec<u64> {
        let n = self.lo.len() / tables.len();
        let mut out = vec![0u64; self.lo.len()];
        #[cfg(target_arch = "x86_64")]
        if tables.iter().all(|t| t.ifma) && n.is_multiple_of(8) {
            for (i, t) in tables.iter().enumerate() {
                let r = i * n..(i + 1) * n;
                // SAFETY: `ifma` is set only on CPUs with avx512f + avx512ifma; n is a multiple of 8.
                unsafe { ifma::reduce(t, &self.lo[r.clone()], &self.hi[r.clone()], &mut out[r]) };
            }
            return out;
        }
        for (j, o) in out.iter_mut().enumerate() {
            *o = tables[j / n]
                .p
                .reduce_u128(((self.hi[j] as u128) << 52) + self.lo[j] as u128);
        }
        out
    }
}

fn ifma_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::env::var_os("PI_HE_NO_IFMA").is_none()
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512ifma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// AVX-512 IFMA butterflies (52-bit lanes, as in Intel HEXL); stages with span < 8 stay scalar.
#[cfg(target_arch = "x86_64")]
mod ifma {
    use std::arch::x86_64::*;

    use super::NttTable;

    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul_shoup52(x: __m512i, w: __m512i, ws: __m512i, q: __m512i) -> __m512i {
        // x·w − ⌊x·ws/2^52⌋·q, exact modulo 2^52, lies in [0, 2q) for x < 2^52.
        let zero = _mm512_setzero_si512();
        let qh = _mm512_madd52hi_epu64(zero, x, ws);
        let l1 = _mm512_madd52lo_epu64(zero, x, w);
        let l2 = _mm512_madd52lo_epu64(zero, qh, q);
        _mm512_and_si512(
            _mm512_sub_epi64(l1, l2),
            _mm512_set1_epi64(((1u64 << 52) - 1) as i64),
        )
    }

    /// Lane indices that gather the x (first) and y (second) halves of blocks of span t from two
    /// vectors, and spread them back.
    type Lanes = [i64; 8];

    /// (gather x, gather y, scatter to first vector, scatter to second vector, twiddle spread).
    fn small_indices(span: usize) -> (Lanes, Lanes, Lanes, Lanes, Lanes) {
        match span {
            4 => (
                [0, 1, 2, 3, 8, 9, 10, 11],
                [4, 5, 6, 7, 12, 13, 14, 15],
                [0, 1, 2, 3, 8, 9, 10, 11],
                [4, 5, 6, 7, 12, 13, 14, 15],
                [0, 0, 0, 0, 1, 1, 1, 1],
            ),
            2 => (
                [0, 1, 4, 5, 8, 9, 12, 13],
                [2, 3, 6, 7, 10, 11, 14, 15],
                [0, 1, 8, 9, 2, 3, 10, 11],
                [4, 5, 12, 13, 6, 7, 14, 15],
                [0, 0, 1, 1, 2, 2, 3, 3],
            ),
            _ => (
                [0, 2, 4, 6, 8, 10, 12, 14],
                [1, 3, 5, 7, 9, 11, 13, 15],
                [0, 8, 1, 9, 2, 10, 3, 11],
                [4, 12, 5, 13, 6, 14, 7, 15],
                [0, 1, 2, 3, 4, 5, 6, 7],
            ),
        }
    }

    /// A stage with span 1, 2 or 4: 16 values (16/(2·span) blocks) per step, shuffled into x and y lanes.
    #[target_feature(enable = "avx512f,avx512ifma")]
    unsafe fn small_stage(t: &NttTable, a: &mut [u64], base: usize, span: usize, forward: bool) {
        let q = t.p.q;
        let (vq, v2q) = (
            _mm512_set1_epi64(q as i64),
            _mm512_set1_epi64((2 * q) as i64),
        );
        let (gx, gy, s0, s1, wi) = small_indices(span);
        let load = |v: &[i64; 8]| _mm512_loadu_si512(v.as_ptr() as *const _);
        let (gx, gy, s0, s1, wi) = (load(&gx), load(&gy), load(&s0), load(&s1), load(&wi));
        let (tw, tws) = if forward {
            (&t.psi_rev, &t.psi_rev_shoup52)
        } else {
            (&t.ipsi_rev, &t.ipsi_rev_shoup52)
        };
        let blocks_per_step = 8 / span;
        let p = a.as_mut_ptr();
        let mut j = 0;
        let mut blk = base;
        while j < t.n {
            let v0 = _mm512_loadu_si512(p.add(j) as *const _);
            let v1 = _mm512_loadu_si512(p.add(j + 8) as *const _);
            let x = _mm512_permutex2var_epi64(v0, gx, v1);
            let y = _mm512_permutex2var_epi64(v0, gy, v1);
            // Twiddles of the blocks in this step (tables have n entries; blk + 8 ≤ n here).
            let w =
                _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(tw.as_ptr().add(blk) as *const _));
            let ws =
                _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(tws.as_ptr().add(blk) as *const _));
            let (nx, ny) = if forward {
                let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
                let tv = mul_shoup52(y, w, ws, vq);
                (
                    _mm512_add_epi64(x, tv),
                    _mm512_sub_epi64(_mm512_add_epi64(x, v2q), tv),
                )
            } else {
                let s = _mm512_add_epi64(x, y);
                let s = _mm512_min_epu64(s, _mm512_sub_epi64(s, v2q));
                let d = _mm512_sub_epi64(_mm512_add_epi64(x, v2q), y);
                (s, mul_shoup52(d, w, ws, vq))
            };
            _mm512_storeu_si512(p.add(j) as *mut _, _mm512_permutex2var_epi64(nx, s0, ny));
            _mm512_storeu_si512(
                p.add(j + 8) as *mut _,
                _mm512_permutex2var_epi64(nx, s1, ny),
            );
            j += 16;
            blk += blocks_per_step;
        }
    }

    /// dst = centred lift of src (mod `from`) into this prime, 8 lanes at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn lift_centred(t: &NttTable, src: &[u64], from: u64, dst: &mut [u64]) {
        let q = t.p.q;
        let s1 = ((1u128 << 52) / q as u128) as u64;
        let (vq, one, vs1) = (
            _mm512_set1_epi64(q as i64),
            _mm512_set1_epi64(1),
            _mm512_set1_epi64(s1 as i64),
        );
        let (vfrom, vhalf) = (
            _mm512_set1_epi64(from as i64),
            _mm512_set1_epi64((from / 2) as i64),
        );
        let zero = _mm512_setzero_si512();
        let (ps, pd) = (src.as_ptr(), dst.as_mut_ptr());
        let mut j = 0;
        while j < dst.len() {
            let x = _mm512_loadu_si512(ps.add(j) as *const _);
            let neg = _mm512_cmpgt_epu64_mask(x, vhalf);
            let m = _mm512_mask_sub_epi64(x, neg, vfrom, x);
            let r = mul_shoup52(m, one, vs1, vq);
            let r = _mm512_min_epu64(r, _mm512_sub_epi64(r, vq));
            // q − r for the negative lanes (0 stays 0).
            let nr = _mm512_sub_epi64(vq, r);
            let nr = _mm512_mask_mov_epi64(nr, _mm512_cmpeq_epu64_mask(r, zero), zero);
            let out = _mm512_mask_mov_epi64(r, neg, nr);
            _mm512_storeu_si512(pd.add(j) as *mut _, out);
            j += 8;
        }
    }

    /// a = (a − b)·w mod q, 8 lanes at a time (inputs < q).
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn sub_mul_const(t: &NttTable, a: &mut [u64], b: &[u64], w: u64) {
        let q = t.p.q;
        let ws = (((w as u128) << 52) / q as u128) as u64;
        let (vq, vw, vws) = (
            _mm512_set1_epi64(q as i64),
            _mm512_set1_epi64(w as i64),
            _mm512_set1_epi64(ws as i64),
        );
        let (pa, pb) = (a.as_mut_ptr(), b.as_ptr());
        let mut j = 0;
        while j < a.len() {
            let x = _mm512_loadu_si512(pa.add(j) as *const _);
            let y = _mm512_loadu_si512(pb.add(j) as *const _);
            let d = _mm512_sub_epi64(_mm512_add_epi64(x, vq), y);
            let r = mul_shoup52(d, vw, vws, vq);
            _mm512_storeu_si512(
                pa.add(j) as *mut _,
                _mm512_min_epu64(r, _mm512_sub_epi64(r, vq)),
            );
            j += 8;
        }
    }

    /// out = (hi·2^52 + lo) mod q for any 64-bit hi and lo, 8 lanes at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn reduce(t: &NttTable, lo: &[u64], hi: &[u64], out: &mut [u64]) {
        let q = t.p.q;
        let c = ((1u128 << 52) % q as u128) as u64;
        let cs = (((c as u128) << 52) / q as u128) as u64;
        let s1 = ((1u128 << 52) / q as u128) as u64;
        let (vq, v2q, v4q) = (
            _mm512_set1_epi64(q as i64),
            _mm512_set1_epi64((2 * q) as i64),
            _mm512_set1_epi64((4 * q) as i64),
        );
        let (vc, vcs, one, vs1) = (
            _mm512_set1_epi64(c as i64),
            _mm512_set1_epi64(cs as i64),
            _mm512_set1_epi64(1),
            _mm512_set1_epi64(s1 as i64),
        );
        let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
        let (pl, ph, po) = (lo.as_ptr(), hi.as_ptr(), out.as_mut_ptr());
        let mut j = 0;
        while j < out.len() {
            let l = _mm512_loadu_si512(pl.add(j) as *const _);
            let h = _mm512_loadu_si512(ph.add(j) as *const _);
            // h mod q (< 4q): h = h_hi·2^52 + h_lo.
            let h1 = _mm512_add_epi64(
                mul_shoup52(_mm512_srli_epi64(h, 52), vc, vcs, vq),
                mul_shoup52(_mm512_and_si512(h, mask), one, vs1, vq),
            );
            // (h1·2^52 + l_hi·2^52 + l_lo) mod q, each term < 2q.
            let x = _mm512_add_epi64(
                _mm512_add_epi64(
                    mul_shoup52(h1, vc, vcs, vq),
                    mul_shoup52(_mm512_srli_epi64(l, 52), vc, vcs, vq),
                ),
                mul_shoup52(_mm512_and_si512(l, mask), one, vs1, vq),
            );
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v4q));
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, vq));
            _mm512_storeu_si512(po.add(j) as *mut _, x);
            j += 8;
        }
    }

    /// lo += low52(x·k), hi += high52(x·k), 8 lanes at a time.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn mac(lo: &mut [u64], hi: &mut [u64], x: &[u64], k: &[u64]) {
        let (pl, ph, px, pk) = (lo.as_mut_ptr(), hi.as_mut_ptr(), x.as_ptr(), k.as_ptr());
        let mut j = 0;
        while j < lo.len() {
            let a = _mm512_loadu_si512(px.add(j) as *const _);
            let b = _mm512_loadu_si512(pk.add(j) as *const _);
            let l = _mm512_loadu_si512(pl.add(j) as *const _);
            let h = _mm512_loadu_si512(ph.add(j) as *const _);
            _mm512_storeu_si512(pl.add(j) as *mut _, _mm512_madd52lo_epu64(l, a, b));
            _mm512_storeu_si512(ph.add(j) as *mut _, _mm512_madd52hi_epu64(h, a, b));
            j += 8;
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn forward(t: &NttTable, a: &mut [u64]) {
        let q = t.p.q;
        let (vq, v2q) = (
            _mm512_set1_epi64(q as i64),
            _mm512_set1_epi64((2 * q) as i64),
        );
        let n = t.n;
        let mut span = n;
        let mut m = 1;
        while m < n {
            span >>= 1;
            if span >= 8 {
                for i in 0..m {
                    let j1 = 2 * i * span;
                    let w = _mm512_set1_epi64(t.psi_rev[m + i] as i64);
                    let ws = _mm512_set1_epi64(t.psi_rev_shoup52[m + i] as i64);
                    let px = a.as_mut_ptr().add(j1);
                    let py = px.add(span);
                    let mut j = 0;
                    while j < span {
                        let x = _mm512_loadu_si512(px.add(j) as *const _);
                        let y = _mm512_loadu_si512(py.add(j) as *const _);
                        let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
                        let tv = mul_shoup52(y, w, ws, vq);
                        _mm512_storeu_si512(px.add(j) as *mut _, _mm512_add_epi64(x, tv));
                        _mm512_storeu_si512(
                            py.add(j) as *mut _,
                            _mm512_sub_epi64(_mm512_add_epi64(x, v2q), tv),
                        );
                        j += 8;
                    }
                }
            } else {
                small_stage(t, a, m, span, true);
            }
            m <<= 1;
        }
        let p = a.as_mut_ptr();
        let mut j = 0;
        while j < n {
            let x = _mm512_loadu_si512(p.add(j) as *const _);
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, vq));
            _mm512_storeu_si512(p.add(j) as *mut _, x);
            j += 8;
        }
    }

    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(super) unsafe fn inverse(t: &NttTable, a: &mut [u64]) {
        let q = t.p.q;
        let (vq, v2q) = (
            _mm512_set1_epi64(q as i64),
            _mm512_set1_epi64((2 * q) as i64),
        );
        let n = t.n;
        let mut span = 1;
        let mut m = n;
        while m > 1 {
            let h = m >> 1;
            if span >= 8 {
                let mut j1 = 0;
                for i in 0..h {
                    let w = _mm512_set1_epi64(t.ipsi_rev[h + i] as i64);
                    let ws = _mm512_set1_epi64(t.ipsi_rev_shoup52[h + i] as i64);
                    let px = a.as_mut_ptr().add(j1);
                    let py = px.add(span);
                    let mut j = 0;
                    while j < span {
                        let x = _mm512_loadu_si512(px.add(j) as *const _);
                        let y = _mm512_loadu_si512(py.add(j) as *const _);
                        let s = _mm512_add_epi64(x, y);
                        let s = _mm512_min_epu64(s, _mm512_sub_epi64(s, v2q));
                        let d = _mm512_sub_epi64(_mm512_add_epi64(x, v2q), y);
                        _mm512_storeu_si512(px.add(j) as *mut _, s);
                        _mm512_storeu_si512(py.add(j) as *mut _, mul_shoup52(d, w, ws, vq));
                        j += 8;
                    }
                    j1 += 2 * span;
                }
            } else {
                small_stage(t, a, h, span, false);
            }
            span <<= 1;
            m = h;
        }
        let (w, ws) = (
            _mm512_set1_epi64(t.n_inv as i64),
            _mm512_set1_epi64(t.n_inv_shoup52 as i64),
        );
        let p = a.as_mut_ptr();
        let mut j = 0;
        while j < n {
            let x = mul_shoup52(_mm512_loadu_si512(p.add(j) as *const _), w, ws, vq);
            _mm512_storeu_si512(
                p.add(j) as *mut _,
                _mm512_min_epu64(x, _mm512_sub_epi64(x, vq)),
            );
            j += 8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    const Q: u64 = 0x7fffffffe0001; // 51-bit prime, 1 mod 2^17

    fn schoolbook(p: &Prime, a: &[u64], b: &[u64]) -> Vec<u64> {
        let n = a.len();
        let mut c = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let prod = p.mul(a[i], b[j]);
                if i + j < n {
                    c[i + j] = p.add(c[i + j], prod);
                } else {
                    c[i + j - n] = p.sub(c[i + j - n], prod);
                }
            }
        }
        c
    }

    #[test]
    fn vector_lift_and_sub_mul_match_scalar() {
        let q = (1..)
            .map(|i| (1u64 << 43) - i * (1 << 14) + 1)
            .find(|&q| is_prime(q))
            .unwrap();
        let from = (1..)
            .map(|i| (1u64 << 45) - i * (1 << 14) + 1)
            .find(|&q| is_prime(q))
            .unwrap();
        let fast = NttTable::new(q, 64).unwrap();
        let slow = fast.clone().scalar_only();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut src: Vec<u64> = (0..64).map(|_| rng.next_u64() % from).collect();
        src[..4].copy_from_slice(&[0, from - 1, from / 2, from / 2 + 1]);
        let (mut a, mut b) = (vec![0u64; 64], vec![0u64; 64]);
        fast.lift_centred(&src, from, &mut a);
        slow.lift_centred(&src, from, &mut b);
        assert_eq!(a, b);
        for (&x, &y) in src.iter().zip(&a) {
            let want = if x > from / 2 {
                (q - (from - x) % q) % q
            } else {
                x % q
            };
            assert_eq!(y, want);
        }
        let y: Vec<u64> = (0..64).map(|_| rng.next_u64() % q).collect();
        let w = rng.next_u64() % q;
        let (mut x1, mut x2) = (b.clone(), b.clone());
        fast.sub_mul_const(&mut x1, &y, w);
        slow.sub_mul_const(&mut x2, &y, w);
        assert_eq!(x1, x2);
        let p = Prime::new(q);
        for j in 0..64 {
            assert_eq!(x1[j], p.mul(p.sub(b[j], y[j]), w));
        }
    }

    #[test]
    fn barrett64_matches_u64_remainder() {
        let p = Prime::new(Q);
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        for x in (0..10_000)
            .map(|_| rng.next_u64())
            .chain([0, Q - 1, Q, 2 * Q, u64::MAX])
        {
            assert_eq!(p.reduce_u64(x), x % Q);
        }
    }

    #[test]
    fn barrett_matches_u128_remainder() {
        let p = Prime::new(Q);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..10_000 {
            let x = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
            assert_eq!(p.reduce_u128(x) as u128, x % Q as u128);
        }
        assert_eq!(p.reduce_u128(u128::MAX) as u128, u128::MAX % Q as u128);
        assert_eq!(p.reduce_i128(-5), Q - 5);
    }

    #[test]
    fn vector_and_scalar_paths_agree() {
        // 1 mod 2^14 and below 2^50, so the IFMA path runs where the CPU has it.
        let q = (1..)
            .map(|i| (1u64 << 49) - i * (1 << 14) + 1)
            .find(|&q| is_prime(q))
            .unwrap();
        let fast = NttTable::new(q, 8192).unwrap();
        let slow = fast.clone().scalar_only();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a: Vec<u64> = (0..8192).map(|_| rng.next_u64() % q).collect();
        let (mut x, mut y) = (a.clone(), a.clone());
        fast.forward(&mut x);
        slow.forward(&mut y);
        assert_eq!(x, y);
        fast.inverse(&mut x);
        slow.inverse(&mut y);
        assert_eq!(x, a);
        assert_eq!(y, a);
    }

    fn is_prime(q: u64) -> bool {
        let p = Prime::new(q);
        [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]
            .iter()
            .all(|&b| {
                let (mut d, mut r) = (q - 1, 0);
                while d % 2 == 0 {
                    d /= 2;
                    r += 1;
                }
                let mut x = p.pow(b, d);
                if x == 1 || x == q - 1 {
                    return true;
                }
                for _ in 1..r {
                    x = p.mul(x, x);
                    if x == q - 1 {
                        return true;
                    }
                }
                false
            })
    }

    #[test]
    fn accumulator_matches_u128_sums() {
        let q = (1..)
            .map(|i| (1u64 << 49) - i * (1 << 14) + 1)
            .find(|&q| is_prime(q))
            .unwrap();
        let fast = vec![NttTable::new(q, 16).unwrap()];
        let slow = vec![fast[0].clone().scalar_only()];
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (mut a, mut b) = (Acc52::new(16), Acc52::new(16));
        let mut want = vec![0u128; 16];
        for _ in 0..5000 {
            let x: Vec<u64> = (0..16).map(|_| rng.next_u64() % q).collect();
            let k: Vec<u64> = (0..16).map(|_| rng.next_u64() % q).collect();
            a.mac(&x, &k, &fast);
            b.mac(&x, &k, &slow);
            for j in 0..16 {
                want[j] = (want[j] + x[j] as u128 * k[j] as u128) % q as u128;
            }
        }
        let want: Vec<u64> = want.iter().map(|&v| v as u64).collect();
        assert_eq!(a.reduce(&fast), want);
        assert_eq!(b.reduce(&slow), want);
    }

    #[test]
    fn ntt_product_is_negacyclic_convolution() {
        for n in [16usize, 256] {
            let t = NttTable::new(Q, n).expect("ntt-friendly");
            let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
            let a: Vec<u64> = (0..n).map(|_| rng.next_u64() % Q).collect();
            let b: Vec<u64> = (0..n).map(|_| rng.next_u64() % Q).collect();
            let want = schoolbook(&t.p, &a, &b);
            let (mut fa, mut fb) = (a.clone(), b.clone());
            t.forward(&mut fa);
            t.forward(&mut fb);
            let mut fc: Vec<u64> = fa.iter().zip(&fb).map(|(&x, &y)| t.p.mul(x, y)).collect();
            t.inverse(&mut fc);
            assert_eq!(fc, want);
            t.inverse(&mut fa);
            assert_eq!(fa, a);
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore]
    fn ntt_speed() {
        let t = NttTable::new(0x1fffffff74001, 8192).unwrap();
        let mut a: Vec<u64> = (0..8192u64).map(|i| i * 12345 % t.p.q).collect();
        let now = std::time::Instant::now();
        for _ in 0..1000 {
            t.forward(&mut a);
            t.inverse(&mut a);
        }
        eprintln!("fwd+inv pair: {:?}", now.elapsed() / 1000);
    }
}
