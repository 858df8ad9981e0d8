//! Samplers: ternary secrets, centred binomial noise, uniform RNS polynomials, flooding noise.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::params::{HeParams, CBD_ETA};

/// Uniform ternary coefficients in {−1, 0, 1}.
pub(crate) fn ternary(rng: &mut impl RngCore, n: usize) -> Vec<i8> {
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 255 = 3·85: rejection keeps the three values equally likely.
            if b < 255 && out.len() < n {
                out.push((b % 3) as i8 - 1);
            }
        }
    }
    out
}

/// Centred binomial noise with η = 21 (|e| ≤ 21, variance 10.5).
pub(crate) fn cbd(rng: &mut impl RngCore, n: usize) -> Vec<i8> {
    let mask = (1u64 << CBD_ETA) - 1;
    (0..n)
        .map(|_| {
            let r = rng.next_u64();
            ((r & mask).count_ones() as i32 - ((r >> CBD_ETA) & mask).count_ones() as i32) as i8
        })
        .collect()
}

/// One centred binomial sample (η = 21).
pub(crate) fn cbd1(rng: &mut impl RngCore) -> i8 {
    let mask = (1u64 << CBD_ETA) - 1;
    let r = rng.next_u64();
    ((r & mask).count_ones() as i32 - ((r >> CBD_ETA) & mask).count_ones() as i32) as i8
}

/// The uniform polynomial (NTT domain, prime-major) expanded from a 32-byte seed.
pub(crate) fn uniform_from_seed(params: &HeParams, seed: &[u8; 32]) -> Vec<u64> {
    uniform_over(params.primes.iter().copied(), params.n, seed)
}

/// Uniform residues, N per listed prime (in order), expanded from a 32-byte seed.
pub(crate) fn uniform_over(
    primes: impl Iterator<Item = u64>,
    n: usize,
    seed: &[u8; 32],
) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let mut out = Vec::new();
    for q in primes {
        let mask = u64::MAX >> q.leading_zeros();
        let mut filled = 0;
        while filled < n {
            let v = rng.next_u64() & mask;
            if v < q {
                out.push(v);
                filled += 1;
            }
        }
    }
    out
}

/// A uniform integer in [−bound, bound] (bound < 2^126).
pub(crate) fn uniform_i128(rng: &mut impl RngCore, bound: u128) -> i128 {
    let range = 2 * bound + 1;
    let bits = 128 - range.leading_zeros();
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    loop {
        let v = (((rng.next_u64() as u128) << 64) | rng.next_u64() as u128) & mask;
        if v < range {
            return v as i128 - bound as i128;
        }
    }
}
