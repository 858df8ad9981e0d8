//! The negacyclic NTT over one prime: tables, scalar Harvey butterflies and the dispatch to the
//! vector paths.

use super::prime::Prime;
use super::SimdPath;

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
    pub(super) n: usize,
    pub(super) psi_rev: Vec<u64>,
    pub(super) psi_rev_shoup: Vec<u64>,
    pub(super) ipsi_rev: Vec<u64>,
    pub(super) ipsi_rev_shoup: Vec<u64>,
    pub(super) n_inv: u64,
    pub(super) n_inv_shoup: u64,
    /// 52-bit Shoup constants for the AVX-512 IFMA path.
    pub(super) psi_rev_shoup52: Vec<u64>,
    pub(super) ipsi_rev_shoup52: Vec<u64>,
    pub(super) n_inv_shoup52: u64,
    /// Twiddles as doubles for the AVX2 path (built only when that path runs).
    pub(super) twiddles_f64: Option<Box<TwiddlesF64>>,
    /// Which kernels run on this CPU.
    pub(super) path: SimdPath,
}

/// Twiddle factors as doubles, in the lane orders the AVX2 butterflies load them.
#[derive(Clone, Debug)]
pub(super) struct TwiddlesF64 {
    /// psi_rev[i] (blocks of span ≥ 4 broadcast one entry).
    pub fwd: Vec<f64>,
    /// Inverse twiddles, likewise.
    pub inv: Vec<f64>,
    /// Span-2 stage (m = n/4 blocks): per pair of blocks i, i+1: [w_i, w_i, w_i+1, w_i+1].
    pub fwd_s2: Vec<f64>,
    pub inv_s2: Vec<f64>,
    /// Span-1 stage (m = n/2 blocks): per quad of blocks i..i+3: [w_i, w_i+2, w_i+1, w_i+3].
    pub fwd_s1: Vec<f64>,
    pub inv_s1: Vec<f64>,
}

impl TwiddlesF64 {
    fn new(psi_rev: &[u64], ipsi_rev: &[u64]) -> Self {
        let n = psi_rev.len();
        let s2 = |t: &[u64]| -> Vec<f64> {
            let m = n / 4;
            (0..m / 2)
                .flat_map(|p| {
                    let (a, b) = (t[m + 2 * p] as f64, t[m + 2 * p + 1] as f64);
                    [a, a, b, b]
                })
                .collect()
        };
        let s1 = |t: &[u64]| -> Vec<f64> {
            let m = n / 2;
            (0..m / 4)
                .flat_map(|p| {
                    let b = m + 4 * p;
                    [
                        t[b] as f64,
                        t[b + 2] as f64,
                        t[b + 1] as f64,
                        t[b + 3] as f64,
                    ]
                })
                .collect()
        };
        TwiddlesF64 {
            fwd: psi_rev.iter().map(|&w| w as f64).collect(),
            inv: ipsi_rev.iter().map(|&w| w as f64).collect(),
            fwd_s2: s2(psi_rev),
            inv_s2: s2(ipsi_rev),
            fwd_s1: s1(psi_rev),
            inv_s1: s1(ipsi_rev),
        }
    }
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
        let mut path = SimdPath::detect(q);
        if path == SimdPath::Avx2 && n < 8 {
            path = SimdPath::Scalar;
        }
        let twiddles_f64 =
            (path == SimdPath::Avx2).then(|| Box::new(TwiddlesF64::new(&psi_rev, &ipsi_rev)));
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
            twiddles_f64,
            path,
        })
    }

    /// The same tables with the vector paths switched off (tests compare the paths).
    #[cfg(test)]
    pub fn scalar_only(mut self) -> Self {
        self.path = SimdPath::Scalar;
        self
    }

    /// The same tables on the AVX2 path, if this CPU has it (tests compare the paths).
    #[cfg(test)]
    pub fn avx2_only(mut self) -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if self.n >= 8
            && self.p.q < 1 << 50
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
        {
            self.twiddles_f64 = Some(Box::new(TwiddlesF64::new(&self.psi_rev, &self.ipsi_rev)));
            self.path = SimdPath::Avx2;
            return Some(self);
        }
        None
    }

    /// Which kernels this table runs.
    pub fn path(&self) -> SimdPath {
        self.path
    }

    /// In-place forward transform (coefficients → evaluations, bit-reversed order).
    pub fn forward(&self, a: &mut [u64]) {
        assert_eq!(a.len(), self.n);
        #[cfg(target_arch = "x86_64")]
        match (self.path, &self.twiddles_f64) {
            // SAFETY: `Ifma` is chosen only when the CPU reports avx512f + avx512ifma, and q < 2^50.
            (SimdPath::Ifma, _) => return unsafe { super::ifma::forward(self, a) },
            // SAFETY: `Avx2` is chosen only when the CPU reports avx2 + fma, q < 2^50 and n ≥ 8.
            (SimdPath::Avx2, Some(tw)) => return unsafe { super::avx2::forward(self, tw, a) },
            _ => {}
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
        match (self.path, &self.twiddles_f64) {
            // SAFETY: as in `forward`.
            (SimdPath::Ifma, _) => return unsafe { super::ifma::inverse(self, a) },
            // SAFETY: as in `forward`.
            (SimdPath::Avx2, Some(tw)) => return unsafe { super::avx2::inverse(self, tw, a) },
            _ => {}
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
        if self.path == SimdPath::Ifma && src.len().is_multiple_of(8) && from < (1 << 52) {
            // SAFETY: `Ifma` is chosen only on CPUs with avx512f + avx512ifma; lengths are multiples of 8.
            unsafe { super::ifma::lift_centred(self, src, from, dst) };
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
        if self.path == SimdPath::Ifma && a.len().is_multiple_of(8) {
            // SAFETY: as above.
            unsafe { super::ifma::sub_mul_const(self, a, b, w) };
            return;
        }
        let ws = self.p.shoup(w);
        for (x, &y) in a.iter_mut().zip(b) {
            *x = self.p.mul_shoup(self.p.sub(*x, y), w, ws);
        }
    }
}
