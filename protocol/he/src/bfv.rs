//! The BFV operations this protocol needs, on RNS polynomials (prime-major, N coefficients per prime).

use rand_core::RngCore;
use zeroize::Zeroize;

use crate::arith::NttTable;
use crate::params::HeParams;
use crate::sample;

/// Ternary secret s, in coefficient and NTT form (with Shoup constants of the NTT form).
pub(crate) struct SecretKey {
    pub s: Vec<i8>,
    pub s_ntt: Vec<u64>,
    pub s_shoup: Vec<u64>,
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.s.zeroize();
        self.s_ntt.zeroize();
        self.s_shoup.zeroize();
    }
}

/// Public key (p0, p1) = (−a·s + e, a) in NTT form; a is expanded from `seed`.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub seed: [u8; 32],
    pub p0: Vec<u64>,
    pub p1: Vec<u64>,
}

/// Small signed coefficients lifted to every prime, then NTT'd.
pub(crate) fn small_to_ntt(params: &HeParams, v: &[i8]) -> Vec<u64> {
    small_to_ntt_over(&params.ntt, params.n, v.iter().map(|&x| x as i64))
}

/// Small signed coefficients lifted to each listed prime, then NTT'd (prime-major).
pub(crate) fn small_to_ntt_over(
    tables: &[NttTable],
    n: usize,
    v: impl Iterator<Item = i64> + Clone,
) -> Vec<u64> {
    let mut out = vec![0u64; n * tables.len()];
    for (i, t) in tables.iter().enumerate() {
        let dst = &mut out[i * n..(i + 1) * n];
        for (d, x) in dst.iter_mut().zip(v.clone()) {
            *d = t.p.reduce_i128(x as i128);
        }
        t.forward(dst);
    }
    out
}

/// Key generation: fresh ternary s and a public key from a fresh seed.
pub(crate) fn keygen(params: &HeParams, rng: &mut impl RngCore) -> (SecretKey, PublicKey) {
    let n = params.n;
    let s = sample::ternary(rng, n);
    let s_ntt = small_to_ntt(params, &s);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let p1 = sample::uniform_from_seed(params, &seed);
    let e = sample::cbd(rng, n);
    let mut p0 = small_to_ntt(params, &e);
    for (i, t) in params.ntt.iter().enumerate() {
        for j in i * n..(i + 1) * n {
            p0[j] = t.p.sub(p0[j], t.p.mul(p1[j], s_ntt[j]));
        }
    }
    let s_shoup = s_ntt
        .iter()
        .enumerate()
        .map(|(j, &x)| params.ntt[j / n].p.shoup(x))
        .collect();
    (SecretKey { s, s_ntt, s_shoup }, PublicKey { seed, p0, p1 })
}

/// round(q·m/t') mod q_i for m < t' = 2^(k+L) (the exact BFV scaling, as SEAL's encryptor does).
#[inline]
pub(crate) fn encode_scaled(params: &HeParams, prime: usize, m: u64) -> u64 {
    let p = &params.ntt[prime].p;
    let k = params.plain_bits;
    // r = round((q mod t')·m/t') < 2^k fits a u64.
    let r = (((params.q_mod_t * m as u128) + (1u128 << (k - 1))) >> k) as u64;
    let (d, ds) = params.delta_shoup[prime];
    p.add(p.mul_shoup(p.reduce_u64(m), d, ds), p.reduce_u64(r))
}

/// Symmetric encryption of a coefficient vector m (values mod t, zero-extended to N):
/// returns c0 in NTT form; c1 = a is the uniform polynomial expanded from `seed`.
pub(crate) fn encrypt_sym(
    params: &HeParams,
    sk: &SecretKey,
    m: &[u64],
    seed: &[u8; 32],
    rng: &mut impl RngCore,
) -> Vec<u64> {
    let n = params.n;
    let a = sample::uniform_from_seed(params, seed);
    let e = sample::cbd(rng, n);
    let mut c0 = vec![0u64; n * params.num_primes()];
    for (i, t) in params.ntt.iter().enumerate() {
        let dst = &mut c0[i * n..(i + 1) * n];
        for j in 0..n {
            let mj = m.get(j).copied().unwrap_or(0);
            let ej = if e[j] < 0 {
                t.p.q - (-(e[j] as i64)) as u64
            } else {
                e[j] as u64
            };
            dst[j] = if mj == 0 {
                ej
            } else {
                t.p.add(encode_scaled(params, i, mj), ej)
            };
        }
        t.forward(dst);
        let off = i * n;
        for j in 0..n {
            let as_ =
                t.p.mul_shoup(a[off + j], sk.s_ntt[off + j], sk.s_shoup[off + j]);
            dst[j] = t.p.sub(dst[j], as_);
        }
    }
    c0
}

/// Modulus switch of one coefficient from q (RNS residues at `idx` of each prime) to 2^bits:
/// round(x·2^bits/q) mod 2^bits with |result − x·2^bits/q| ≤ ½ + 2^−12. `fixed[i]` = ⌊2^(bits+64)/q_i⌋
/// (each prime's truncation costs < 2^−14 of a unit).
///
/// With x = Σ y_i·(q/q_i) − v·q (y_i = x_i·(q/q_i)^{-1} mod q_i), x·2^bits/q ≡ Σ y_i·2^bits/q_i
/// modulo 2^bits, so each prime contributes an integer part and a fraction.
#[inline]
pub(crate) fn switch_to_pow2(
    params: &HeParams,
    poly: &[u64],
    idx: usize,
    bits: u32,
    fixed: &[u128],
) -> u128 {
    let n = params.n;
    let mut quot = 0u128;
    let mut frac = 0f64;
    for (i, t) in params.ntt.iter().enumerate() {
        let y = t.p.mul(poly[i * n + idx], params.crt_inv[i]) as u128;
        let (f_hi, f_lo) = (fixed[i] >> 64, fixed[i] as u64 as u128);
        let lo = y * f_lo;
        quot = quot
            .wrapping_add(y.wrapping_mul(f_hi))
            .wrapping_add(lo >> 64);
        frac += (lo as u64) as f64 * (1.0 / 18446744073709551616.0);
    }
    quot.wrapping_add(frac.round() as u128) & ((1u128 << bits) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Decrypts a (c0, c1) pair in coefficient form at full q by CRT (test oracle).
    fn phase_at_q(params: &HeParams, c0: &[u64], c1_ntt: &[u64], sk: &SecretKey) -> Vec<u64> {
        let n = params.n;
        let mut out = c0.to_vec();
        for (i, t) in params.ntt.iter().enumerate() {
            let mut prod: Vec<u64> = (0..n)
                .map(|j| t.p.mul(c1_ntt[i * n + j], sk.s_ntt[i * n + j]))
                .collect();
            t.inverse(&mut prod);
            for j in 0..n {
                out[i * n + j] = t.p.add(out[i * n + j], prod[j]);
            }
        }
        out
    }

    #[test]
    fn encrypt_then_switch_decrypts() {
        let params = HeParams::for_ring(52).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (sk, _pk) = keygen(&params, &mut rng);
        let n = params.n;
        let pb = params.plain_bits;
        let m: Vec<u64> = (0..n as u64)
            .map(|i| (i * 0x9e3779b97f4a7c15) & ((1 << pb) - 1))
            .collect();
        let seed = [7u8; 32];
        let c0_ntt = encrypt_sym(&params, &sk, &m, &seed, &mut rng);
        let a = sample::uniform_from_seed(&params, &seed);
        let mut c0 = c0_ntt.clone();
        for (i, t) in params.ntt.iter().enumerate() {
            t.inverse(&mut c0[i * n..(i + 1) * n]);
        }
        let ph = phase_at_q(&params, &c0, &a, &sk);
        let b = params.c0_bits;
        for (j, &mj) in m.iter().enumerate() {
            let v = switch_to_pow2(&params, &ph, j, b, &params.switch_c0);
            let got = ((v + (1u128 << (b - pb - 1))) >> (b - pb)) as u64 & ((1 << pb) - 1);
            assert_eq!(got, mj, "coefficient {j}");
        }
    }
}
