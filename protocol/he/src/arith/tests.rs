//! Scalar arithmetic against plain remainders, vector paths against the scalar one.

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

#[test]
fn avx2_path_matches_scalar_bit_for_bit() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    // Primes near the top of the allowed range (2^50) and smaller ones, several lengths.
    for (bits, n) in [(49u32, 8192usize), (50, 4096), (43, 8), (30, 16), (42, 64)] {
        let q = (1..)
            .map(|i| (1u64 << bits) - i * (2 * n as u64) + 1)
            .find(|&q| q < 1 << 50 && is_prime(q))
            .unwrap();
        let slow = NttTable::new(q, n).unwrap().scalar_only();
        let Some(fast) = NttTable::new(q, n).unwrap().avx2_only() else {
            eprintln!("no AVX2 + FMA on this CPU: skipped");
            return;
        };
        for round in 0..3 {
            let mut a: Vec<u64> = (0..n).map(|_| rng.next_u64() % q).collect();
            if round == 1 {
                a.iter_mut().for_each(|x| *x = q - 1);
            }
            if round == 2 {
                a.iter_mut().enumerate().for_each(|(i, x)| {
                    *x = if i % 3 == 0 {
                        0
                    } else {
                        q - 1 - (i as u64 % 7)
                    }
                });
            }
            let (mut x, mut y) = (a.clone(), a.clone());
            fast.forward(&mut x);
            slow.forward(&mut y);
            assert_eq!(x, y, "forward, q = {q}, n = {n}");
            fast.inverse(&mut x);
            slow.inverse(&mut y);
            assert_eq!(x, a, "inverse, q = {q}, n = {n}");
            assert_eq!(y, a);
        }
    }
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

/// Timing of one transform pair on each path (run with --ignored --nocapture).
#[test]
#[ignore]
fn ntt_speed() {
    let base = NttTable::new(0x1fffffff74001, 8192).unwrap();
    let mut tables = vec![base.clone().scalar_only()];
    tables.extend(base.clone().avx2_only());
    if base.path() == SimdPath::Ifma {
        tables.push(base);
    }
    for t in tables {
        let mut a: Vec<u64> = (0..8192u64).map(|i| i * 12345 % t.p.q).collect();
        let now = std::time::Instant::now();
        for _ in 0..2000 {
            t.forward(&mut a);
            t.inverse(&mut a);
        }
        eprintln!(
            "{}: fwd+inv pair {:?}",
            t.path().name(),
            now.elapsed() / 2000
        );
    }
}
