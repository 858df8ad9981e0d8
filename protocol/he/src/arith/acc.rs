//! Lazy multiply-accumulate of NTT-domain products over several primes.

use super::ntt::NttTable;
use super::SimdPath;

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
        if tables.iter().all(|t| t.path() == SimdPath::Ifma) && self.lo.len().is_multiple_of(8) {
            // SAFETY: `Ifma` is chosen only on CPUs with avx512f + avx512ifma; lengths are multiples of 8.
            unsafe { super::ifma::mac(&mut self.lo, &mut self.hi, x, k) };
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
        if tables.iter().all(|t| t.path() == SimdPath::Ifma) && n.is_multiple_of(8) {
            for (i, t) in tables.iter().enumerate() {
                let r = i * n..(i + 1) * n;
                // SAFETY: `Ifma` is chosen only on CPUs with avx512f + avx512ifma; n is a multiple of 8.
                unsafe {
                    super::ifma::reduce(t, &self.lo[r.clone()], &self.hi[r.clone()], &mut out[r])
                };
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
