//! Galois keys, NTT-domain automorphisms and the packing tree that merges product ciphertexts.
//!
//! Everything runs at the full modulus q in the NTT domain. Key switching is the RNS hybrid
//! method over the basis [q_0, …, q_(L−1), P]: digit i of c is its residue mod q_i (centred), key
//! i encrypts P·τ(s) in residue q_i only, and the sum is divided by P (mod-down). Merging at
//! shift h: (E + X^h·O) + τ_(N/h+1)(E − X^h·O) keeps E's and X^h·O's coefficients at multiples
//! of 2h and at h (mod 2h) respectively, doubled, and cancels the rest there; positions that are
//! not multiples of h are cancelled by later levels.

use rand_core::RngCore;
use zeroize::Zeroize;

use crate::arith::Acc52;
use crate::bfv::SecretKey;
use crate::params::HeParams;
use crate::sample;

/// A key switching τ_g(s) → s: per digit i (one per chain prime), (b_i, a_i) over the
/// key-switching basis in NTT form, layout digit-major then prime-major; a is expanded from `seed`.
#[derive(Clone)]
pub(crate) struct GaloisKey {
    pub g: usize,
    pub seed: [u8; 32],
    pub b: Vec<u64>,
    pub a: Vec<u64>,
}

/// A ciphertext at q in NTT form (L_q × N each).
#[derive(Clone)]
pub(crate) struct NttCt {
    pub c0: Vec<u64>,
    pub c1: Vec<u64>,
}

/// The uniform key parts a_i, expanded from a seed over the key-switching basis.
pub(crate) fn key_uniform(params: &HeParams, seed: &[u8; 32]) -> Vec<u64> {
    let digits = params.num_primes();
    sample::uniform_over(
        params
            .ks_ntt
            .iter()
            .map(|t| t.p.q)
            .cycle()
            .take(digits * params.ks_ntt.len()),
        params.n,
        seed,
    )
}

/// Signed small coefficients as residues of the key-switching basis, in NTT form.
fn small_to_ks_ntt(params: &HeParams, v: &[i64]) -> Vec<u64> {
    crate::bfv::small_to_ntt_over(&params.ks_ntt, params.n, v.iter().copied())
}

/// Generates the key for Galois element g (odd, < 2N) under the client's secret.
pub(crate) fn galois_keygen(
    params: &HeParams,
    sk: &SecretKey,
    g: usize,
    rng: &mut impl RngCore,
) -> GaloisKey {
    let n = params.n;
    let kp = params.ks_ntt.len();
    let s: Vec<i64> = sk.s.iter().map(|&x| x as i64).collect();
    let mut s_ntt = small_to_ks_ntt(params, &s);
    let mut sg = automorphism_signed(&s, g);
    let mut sg_ntt = small_to_ks_ntt(params, &sg);
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let a = key_uniform(params, &seed);
    let mut b = vec![0u64; params.num_primes() * kp * n];
    for digit in 0..params.num_primes() {
        let e: Vec<i64> = sample::cbd(rng, n).iter().map(|&x| x as i64).collect();
        let e_ntt = small_to_ks_ntt(params, &e);
        for (pi, t) in params.ks_ntt.iter().enumerate() {
            let off = (digit * kp + pi) * n;
            // P mod q_digit in the digit's own residue, 0 elsewhere (and mod P).
            let gadget = if pi == digit { params.p_mod[digit] } else { 0 };
            for j in 0..n {
                let as_ = t.p.mul(a[off + j], s_ntt[pi * n + j]);
                let v = t.p.sub(e_ntt[pi * n + j], as_);
                b[off + j] = t.p.add(v, t.p.mul(gadget, sg_ntt[pi * n + j]));
            }
        }
    }
    // The widened copy of the secret key and its images are secrets too.
    let mut s = s;
    s.zeroize();
    s_ntt.zeroize();
    sg.zeroize();
    sg_ntt.zeroize();
    GaloisKey { g, seed, b, a }
}

/// τ_g on signed integer coefficients: X^i ↦ X^(g·i mod 2N), with X^N = −1.
fn automorphism_signed(v: &[i64], g: usize) -> Vec<i64> {
    let n = v.len();
    let mut out = vec![0i64; n];
    for (i, &x) in v.iter().enumerate() {
        let k = (i * g) % (2 * n);
        if k < n {
            out[k] = x;
        } else {
            out[k - n] = -x;
        }
    }
    out
}

/// τ of packing level l on an NTT-form polynomial over the chain primes (a slot permutation).
pub(crate) fn automorphism_ntt(params: &HeParams, v: &[u64], level: usize) -> Vec<u64> {
    let n = params.n;
    let perm = &params.galois_perm[level];
    let mut out = vec![0u64; v.len()];
    for (src, dst) in v.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        for (d, &p) in dst.iter_mut().zip(perm) {
            *d = src[p as usize];
        }
    }
    out
}

/// X^(2^level) · v for an NTT-form polynomial over the chain primes.
pub(crate) fn shift_ntt(params: &HeParams, v: &[u64], level: usize) -> Vec<u64> {
    let n = params.n;
    let w = &params.shift_ntt[level];
    v.iter()
        .zip(w)
        .enumerate()
        .map(|(j, (&x, &(c, cs)))| params.ntt[j / n].p.mul_shoup(x, c, cs))
        .collect()
}

/// Reusable buffers for key switching (avoids page-faulting fresh allocations per switch).
pub(crate) struct KsScratch {
    coeff: Vec<u64>,
    digit: Vec<u64>,
    u0: Acc52,
    u1: Acc52,
    r: Vec<u64>,
    rj: Vec<u64>,
}

impl KsScratch {
    pub fn new(params: &HeParams) -> Self {
        let n = params.n;
        let kp = params.ks_ntt.len();
        KsScratch {
            coeff: vec![0; params.num_primes() * n],
            digit: vec![0; kp * n],
            u0: Acc52::new(kp * n),
            u1: Acc52::new(kp * n),
            r: vec![0; n],
            rj: vec![0; n],
        }
    }
}

/// (u0, u1) at q in NTT form with u0 + u1·s ≈ c·τ_g(s), for c in NTT form (noise ≤ B_ks).
pub(crate) fn key_switch(
    params: &HeParams,
    key: &GaloisKey,
    c: &[u64],
    sc: &mut KsScratch,
) -> (Vec<u64>, Vec<u64>) {
    let n = params.n;
    let lq = params.num_primes();
    let kt = &params.ks_ntt[..];
    let kp = kt.len();
    sc.coeff.copy_from_slice(c);
    for (i, t) in params.ntt.iter().enumerate() {
        t.inverse(&mut sc.coeff[i * n..(i + 1) * n]);
    }
    sc.u0.clear();
    sc.u1.clear();
    for i in 0..lq {
        let qd = kt[i].p.q;
        let src = &sc.coeff[i * n..(i + 1) * n];
        for (pi, t) in kt.iter().enumerate() {
            let buf = &mut sc.digit[pi * n..(pi + 1) * n];
            if pi == i {
                buf.copy_from_slice(&c[i * n..(i + 1) * n]);
                continue;
            }
            // Centred digit x − q_i·[x > q_i/2] as a residue of this prime.
            t.lift_centred(src, qd, buf);
            t.forward(buf);
        }
        let off = i * kp * n;
        sc.u0.mac(&sc.digit, &key.b[off..off + kp * n], kt);
        sc.u1.mac(&sc.digit, &key.a[off..off + kp * n], kt);
    }
    let (u0, u1) = (sc.u0.reduce(kt), sc.u1.reduce(kt));
    (mod_down(params, u0, sc), mod_down(params, u1, sc))
}

/// round(u/P) at q (NTT form) for an NTT-form polynomial over the key-switching basis.
fn mod_down(params: &HeParams, mut u: Vec<u64>, sc: &mut KsScratch) -> Vec<u64> {
    let n = params.n;
    let lq = params.num_primes();
    let tp = &params.ks_ntt[lq];
    sc.r.copy_from_slice(&u[lq * n..]);
    tp.inverse(&mut sc.r);
    u.truncate(lq * n);
    for (j, t) in params.ntt.iter().enumerate() {
        t.lift_centred(&sc.r, tp.p.q, &mut sc.rj);
        t.forward(&mut sc.rj);
        t.sub_mul_const(&mut u[j * n..(j + 1) * n], &sc.rj, params.p_inv[j].0);
    }
    u
}

/// a ⊕ b coefficient-wise modulo each chain prime, for `op` = add or sub on residues.
fn zip_mod(params: &HeParams, a: &[u64], b: &[u64], op: fn(u64, u64, u64) -> u64) -> Vec<u64> {
    let n = params.n;
    let mut out = a.to_vec();
    for (pi, t) in params.ntt.iter().enumerate() {
        let r = pi * n..(pi + 1) * n;
        for (o, &y) in out[r.clone()].iter_mut().zip(&b[r]) {
            *o = op(*o, y, t.p.q);
        }
    }
    out
}

fn add(params: &HeParams, a: &[u64], b: &[u64]) -> Vec<u64> {
    zip_mod(
        params,
        a,
        b,
        |x, y, q| if x + y >= q { x + y - q } else { x + y },
    )
}

fn sub(params: &HeParams, a: &[u64], b: &[u64]) -> Vec<u64> {
    zip_mod(
        params,
        a,
        b,
        |x, y, q| if x >= y { x - y } else { x + q - y },
    )
}

/// Merges 2^j ciphertexts (None = zero) whose data sit at multiples of their count: input i's
/// coefficient at position c·count lands at c·count + i, multiplied by count; everything else cancels.
pub(crate) fn pack(
    params: &HeParams,
    keys: &[GaloisKey],
    cts: Vec<Option<NttCt>>,
) -> Option<NttCt> {
    debug_assert!(cts.len().is_power_of_two());
    if cts.len() == 1 {
        return cts.into_iter().next().flatten();
    }
    pack_level(params, keys, cts, 0, &mut KsScratch::new(params))
}

fn pack_level(
    params: &HeParams,
    keys: &[GaloisKey],
    cts: Vec<Option<NttCt>>,
    level: usize,
    sc: &mut KsScratch,
) -> Option<NttCt> {
    if cts.len() == 1 {
        return cts.into_iter().next().flatten();
    }
    let (mut evens, mut odds) = (Vec::new(), Vec::new());
    for (i, c) in cts.into_iter().enumerate() {
        if i % 2 == 0 {
            evens.push(c);
        } else {
            odds.push(c);
        }
    }
    let e = pack_level(params, keys, evens, level + 1, sc);
    let o = pack_level(params, keys, odds, level + 1, sc);
    if e.is_none() && o.is_none() {
        return None;
    }
    let zero = || NttCt {
        c0: vec![0; params.num_primes() * params.n],
        c1: vec![0; params.num_primes() * params.n],
    };
    let e = e.unwrap_or_else(zero);
    let xo = o
        .map(|o| NttCt {
            c0: shift_ntt(params, &o.c0, level),
            c1: shift_ntt(params, &o.c1, level),
        })
        .unwrap_or_else(zero);
    let key = &keys[level];
    debug_assert_eq!(key.g, params.n / (1 << level) + 1);
    let (a0, a1) = (add(params, &e.c0, &xo.c0), add(params, &e.c1, &xo.c1));
    let (b0, b1) = (sub(params, &e.c0, &xo.c0), sub(params, &e.c1, &xo.c1));
    let (t0, t1) = (
        automorphism_ntt(params, &b0, level),
        automorphism_ntt(params, &b1, level),
    );
    let (u0, u1) = key_switch(params, key, &t1, sc);
    Some(NttCt {
        c0: add(params, &add(params, &a0, &t0), &u0),
        c1: add(params, &a1, &u1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bfv::{encrypt_sym, keygen, switch_to_pow2};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Decodes every coefficient of an NTT-form ciphertext at q (test oracle).
    fn decrypt_all(params: &HeParams, sk: &SecretKey, ct: &NttCt) -> Vec<u64> {
        let n = params.n;
        let mut ph = vec![0u64; params.num_primes() * n];
        for (i, t) in params.ntt.iter().enumerate() {
            let r = i * n..(i + 1) * n;
            for j in r.clone() {
                ph[j] = t.p.add(ct.c0[j], t.p.mul(ct.c1[j], sk.s_ntt[j]));
            }
            t.inverse(&mut ph[r]);
        }
        let (pb, b) = (params.plain_bits, params.c0_bits);
        (0..n)
            .map(|j| {
                let v = switch_to_pow2(params, &ph, j, b, &params.switch_c0);
                ((v + (1u128 << (b - pb - 1))) >> (b - pb)) as u64 & ((1 << pb) - 1)
            })
            .collect()
    }

    fn encrypt(params: &HeParams, sk: &SecretKey, m: &[u64], rng: &mut ChaCha20Rng) -> NttCt {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        NttCt {
            c0: encrypt_sym(params, sk, m, &seed, rng),
            c1: sample::uniform_from_seed(params, &seed),
        }
    }

    #[test]
    fn packing_places_each_input_on_its_residue_and_cancels_the_rest() {
        let params = HeParams::for_ring(52).unwrap();
        assert_eq!(params.pack_bits, 3);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (sk, _) = keygen(&params, &mut rng);
        let keys: Vec<GaloisKey> = params
            .galois_elements()
            .into_iter()
            .map(|g| galois_keygen(&params, &sk, g, &mut rng))
            .collect();
        let n = params.n;
        let tmask = (1u64 << params.plain_bits) - 1;
        for d in [2usize, 4, 8] {
            // Input i: arbitrary garbage everywhere, data at multiples of d; input 1 missing.
            let msgs: Vec<Vec<u64>> = (0..d)
                .map(|i| {
                    (0..n as u64)
                        .map(|j| (j * 0x9e37_79b9 + i as u64 * 77_777 + 5) & tmask)
                        .collect()
                })
                .collect();
            let cts = msgs
                .iter()
                .enumerate()
                .map(|(i, m)| (i != 1).then(|| encrypt(&params, &sk, m, &mut rng)))
                .collect();
            let packed = pack(&params, &keys[..d.trailing_zeros() as usize], cts).unwrap();
            let got = decrypt_all(&params, &sk, &packed);
            for c in 0..n / d {
                for i in 0..d {
                    let want = if i == 1 {
                        0
                    } else {
                        (msgs[i][c * d] * d as u64) & tmask
                    };
                    assert_eq!(got[c * d + i], want, "d {d} slot {c} input {i}");
                }
            }
        }
    }

    #[test]
    fn ntt_automorphism_and_shift_match_the_coefficient_definitions() {
        let params = HeParams::for_ring(52).unwrap();
        let n = params.n;
        let v: Vec<u64> = (0..params.num_primes() * n)
            .map(|j| (j as u64 * 0x9e37_79b9_7f4a_7c15) % params.ntt[j / n].p.q)
            .collect();
        let to_ntt = |x: &[u64]| {
            let mut y = x.to_vec();
            for (i, t) in params.ntt.iter().enumerate() {
                t.forward(&mut y[i * n..(i + 1) * n]);
            }
            y
        };
        for level in 0..params.pack_bits as usize {
            let (g, h) = (n / (1 << level) + 1, 1usize << level);
            let mut tau = vec![0u64; v.len()];
            let mut shifted = vec![0u64; v.len()];
            for (pi, t) in params.ntt.iter().enumerate() {
                for i in 0..n {
                    let x = v[pi * n + i];
                    let k = (i * g) % (2 * n);
                    if k < n {
                        tau[pi * n + k] = x;
                    } else {
                        tau[pi * n + k - n] = t.p.neg(x);
                    }
                    let k = i + h;
                    if k < n {
                        shifted[pi * n + k] = x;
                    } else {
                        shifted[pi * n + k - n] = t.p.neg(x);
                    }
                }
            }
            assert!(
                automorphism_ntt(&params, &to_ntt(&v), level) == to_ntt(&tau),
                "τ level {level}"
            );
            assert!(
                shift_ntt(&params, &to_ntt(&v), level) == to_ntt(&shifted),
                "X^h level {level}"
            );
        }
    }

    #[test]
    #[ignore]
    fn timing() {
        let params = HeParams::for_ring(52).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (sk, _) = keygen(&params, &mut rng);
        let key = galois_keygen(&params, &sk, params.n + 1, &mut rng);
        let n = params.n;
        let big: Vec<u64> = (0..n * params.num_primes())
            .map(|j| (j as u64 * 12345) % params.ntt[j / n].p.q)
            .collect();
        let mut sc = KsScratch::new(&params);
        let now = std::time::Instant::now();
        for _ in 0..100 {
            std::hint::black_box(key_switch(&params, &key, &big, &mut sc));
        }
        eprintln!("key switch {:?}", now.elapsed() / 100);
        let mut acc = Acc52::new(n * params.num_primes());
        acc.mac(&big, &big, &params.ntt);
        let now = std::time::Instant::now();
        for _ in 0..100 {
            std::hint::black_box(acc.reduce(&params.ntt));
        }
        eprintln!("acc reduce {:?}", now.elapsed() / 100);
        // A product as the server runs it: two MACs over 16 distinct inputs (cache-cold).
        let inputs: Vec<Vec<u64>> = (0..16)
            .map(|i| big.iter().map(|&x| (x + i) % 1000).collect())
            .collect();
        let mut acc1 = crate::arith::Acc52::new(n * params.num_primes());
        let now = std::time::Instant::now();
        for _ in 0..10 {
            for x in &inputs {
                acc.mac(x, &big, &params.ntt);
                acc1.mac(x, &big, &params.ntt);
            }
        }
        eprintln!("product (2 macs) {:?}", now.elapsed() / 160);
        let mut rng2 = ChaCha20Rng::seed_from_u64(1);
        let m = vec![5u64; n];
        let now = std::time::Instant::now();
        for _ in 0..20 {
            std::hint::black_box(crate::bfv::encrypt_sym(
                &params, &sk, &m, &[3u8; 32], &mut rng2,
            ));
        }
        eprintln!("encrypt {:?}", now.elapsed() / 20);
        let now = std::time::Instant::now();
        for _ in 0..20 {
            std::hint::black_box(sample::uniform_from_seed(&params, &[3u8; 32]));
        }
        eprintln!("expand seed {:?}", now.elapsed() / 20);
    }
}
