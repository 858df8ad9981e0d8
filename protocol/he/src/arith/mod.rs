//! Word-size modular arithmetic and the negacyclic NTT over one RNS prime.
//!
//! Three paths compute bit-identical results: AVX-512 IFMA (52-bit integer lanes, [`ifma`]), AVX2 + FMA
//! (exact double-precision arithmetic on values below 2^52, [`avx2`]) and scalar. The fastest one the CPU
//! has is chosen at run time; `PI_HE_NO_IFMA=1` skips IFMA (the portable path an AVX2-only host runs)
//! and `PI_HE_NO_SIMD=1` skips both vector paths.

mod acc;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod ifma;
mod ntt;
mod prime;
#[cfg(test)]
mod tests;

pub(crate) use acc::Acc52;
pub(crate) use ntt::NttTable;
#[allow(unused_imports)]
pub(crate) use prime::{mul_hi_u128, Prime};

/// Which implementation of the vector kernels runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SimdPath {
    /// Plain 64-bit integer code.
    Scalar,
    /// AVX2 + FMA on doubles (exact for the values involved, all below 2^52).
    Avx2,
    /// AVX-512 IFMA on 52-bit integer lanes.
    Ifma,
}

impl SimdPath {
    /// The fastest path this CPU supports for a prime q, honouring `PI_HE_NO_IFMA` and `PI_HE_NO_SIMD`.
    pub(crate) fn detect(q: u64) -> SimdPath {
        #[cfg(target_arch = "x86_64")]
        {
            // Both vector paths keep 4q below 2^52.
            if q >= 1 << 50 || std::env::var_os("PI_HE_NO_SIMD").is_some() {
                return SimdPath::Scalar;
            }
            if std::env::var_os("PI_HE_NO_IFMA").is_none()
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512ifma")
            {
                return SimdPath::Ifma;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return SimdPath::Avx2;
            }
            SimdPath::Scalar
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = q;
            SimdPath::Scalar
        }
    }

    /// The name printed by benchmarks (`ifma`, `avx2` or `scalar`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            SimdPath::Scalar => "scalar",
            SimdPath::Avx2 => "avx2",
            SimdPath::Ifma => "ifma",
        }
    }
}
