//! Offline phase of the OT ReLU: every correlation is generated here, before any input exists.
//!
//! Order on the wire (after the hello): Ferret bootstrap (base OT, SoftSpoken k = 8) and tree
//! batches, server → client; then the reverse SoftSpoken (k = 8) in which the server is the OT
//! receiver, with its correction; then the corrections of the precomputed bit products. Per run
//! of identical ReLUs the forward COTs are consumed in a fixed order (column-major): step 0, the
//! two ROT batches of each step 1..=j, the low-carry product, the mux OT, the lift product.

use std::io::{Read, Write};
use std::time::Instant;

use pi_gc::block::{blocks_from_bytes, blocks_to_bytes};
use pi_gc::ot::{CotReceiver, CotSender};
use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::bits::{field_bytes, mask, put_fields, take_fields, Bits};
use super::material::{
    client_keys, client_triples, server_keys, server_triples, xor_bits, ClientKeys, ClientRun, Run,
    ServerKeys, ServerRun,
};
use super::OtReluStats;
use crate::aes::{Block, Ccr};
use crate::ferret::{CotStream, FerretReceiver, FerretSender};
use crate::msg::{self, In, Out};
use crate::OtError;

/// SoftSpoken parameter of the reverse direction.
const REVERSE_K: u32 = 8;
/// Tweak domain of the reverse-direction hashes (forward tweaks count from 0).
const REVERSE_TWEAK: u128 = 1 << 127;

fn random_bits(n: usize, rng: &mut (impl CryptoRng + RngCore)) -> Bits {
    let mut w = vec![0u64; n.div_ceil(64)];
    for x in w.iter_mut() {
        *x = rng.next_u64();
    }
    Bits::from_words(w, n)
}

/// Server side of the product corrections: ρ random, y = K₀ − K₁ + ρ, share −K₀.
fn server_product(
    keys: &ServerKeys,
    bits: u32,
    rng: &mut (impl CryptoRng + RngCore),
    corr: &mut Vec<u64>,
) -> (Bits, Zeroizing<Vec<u64>>) {
    let n = keys.k0.len();
    let rho = random_bits(n, rng);
    let m = mask(bits);
    let mut pi = Zeroizing::new(Vec::with_capacity(n));
    for i in 0..n {
        let r = rho.get(i) as u64;
        corr.push(keys.k0[i].wrapping_sub(keys.k1[i]).wrapping_add(r) & m);
        pi.push(keys.k0[i].wrapping_neg() & m);
    }
    (rho, pi)
}

/// Client side: share K_c + c·y.
fn client_product(keys: &ClientKeys, corr: &[u64], bits: u32) -> Zeroizing<Vec<u64>> {
    let m = mask(bits);
    Zeroizing::new(
        keys.k
            .iter()
            .zip(corr)
            .enumerate()
            .map(|(i, (&k, &y))| k.wrapping_add(y.wrapping_mul(keys.c.get(i) as u64)) & m)
            .collect(),
    )
}

/// `n` COTs from the Ferret session, their time and bytes counted in `stats`.
fn ferret_cots<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    ferret: Option<&mut impl CotStream>,
    n: usize,
    stats: &mut OtReluStats,
) -> Result<Zeroizing<Vec<Block>>, OtError> {
    let c0 = ch.counters();
    let t = Instant::now();
    let cots = ferret
        .ok_or_else(|| OtError::Desync("no Ferret session for a non-trivial ReLU".into()))?
        .take_cots(ch, n)?;
    stats.ferret_seconds += t.elapsed().as_secs_f64();
    stats.ferret_bytes += ch.counters().since(c0).total();
    Ok(cots)
}

/// ReLUs in the runs that need material (the non-trivial ones).
fn nontrivial_relus(runs: &[Run]) -> usize {
    runs.iter()
        .filter(|r| !r.shape.trivial)
        .map(|r| r.len)
        .sum()
}

/// Server: builds the material of every non-trivial run (empty entries for trivial ones).
pub(crate) fn server<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    runs: &[Run],
    ferret: Option<&mut FerretSender>,
    rng: &mut (impl CryptoRng + RngCore),
    stats: &mut OtReluStats,
) -> Result<Vec<Option<ServerRun>>, OtError> {
    let ccr = Ccr::new();
    let mut ferret = ferret;
    let delta = ferret.as_ref().map(|f| f.delta()).unwrap_or(1);
    let mut tweak: u128 = 0;
    let mut out = Vec::with_capacity(runs.len());
    let mut corrections = Vec::new();
    for run in runs {
        let s = run.shape;
        if s.trivial {
            out.push(None);
            continue;
        }
        let n = run.len;
        let mut take = |bits: u32, stats: &mut OtReluStats| -> Result<ServerKeys, OtError> {
            let q = ferret_cots(ch, ferret.as_deref_mut(), n, stats)?;
            let t = Instant::now();
            let k = server_keys(&ccr, &q, delta, tweak, bits);
            stats.material_seconds += t.elapsed().as_secs_f64();
            tweak += n as u128;
            Ok(k)
        };
        let r0 = take(1, stats)?;
        let rho0 = xor_bits(&r0.k0, &r0.k1);
        let p0 = Bits::from_values(&r0.k0, 0);
        let mut triples = Vec::with_capacity(s.j as usize);
        for _ in 0..s.j {
            let a = take(1, stats)?;
            let b = take(1, stats)?;
            triples.push(server_triples(&a, &b));
        }
        let (cross_rho, cross_pi) = if s.has_f {
            let k = take(s.m, stats)?;
            server_product(&k, s.m, rng, &mut corrections)
        } else {
            (Bits::zeros(n), Zeroizing::new(vec![0; n]))
        };
        let mux = take(s.m, stats)?;
        let (lift_rho, lift_pi) = if s.lift {
            let k = take(s.k - s.m, stats)?;
            server_product(&k, s.k - s.m, rng, &mut corrections)
        } else {
            (Bits::zeros(n), Zeroizing::new(vec![0; n]))
        };
        out.push(Some(ServerRun {
            rho0,
            p0,
            triples,
            cross_rho,
            cross_pi,
            mux,
            rev_e: Bits::zeros(0),
            rev_k: Zeroizing::new(Vec::new()),
            lift_rho,
            lift_pi,
        }));
    }

    // Reverse direction: the server is the SoftSpoken receiver with random choices.
    let total = nontrivial_relus(runs);
    let c0 = ch.counters();
    let t = Instant::now();
    if total > 0 {
        let mut rcv = CotReceiver::setup(ch, REVERSE_K, rng)?;
        let words = total.div_ceil(128);
        let mut choices = Zeroizing::new(vec![0 as Block; words]);
        for c in choices.iter_mut() {
            *c = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
        }
        let (v, corr) = rcv.extend(&choices);
        let mut f = Out::new(msg::REVERSE, 0, words as u64, corr.len() * 16);
        blocks_to_bytes(f.payload(), &corr);
        f.send(ch)?;
        ch.flush()?;
        let mut at = 0usize;
        for (run, mat) in runs.iter().zip(out.iter_mut()) {
            let Some(mat) = mat else { continue };
            let n = run.len;
            let mut h = Zeroizing::new(vec![0 as Block; n]);
            ccr.hash_tweaked(&v[at..at + n], REVERSE_TWEAK + at as u128, &mut h);
            let m = mask(run.shape.m);
            mat.rev_k = Zeroizing::new(h.iter().map(|x| *x as u64 & m).collect());
            let e: Vec<u64> = (at..at + n)
                .map(|j| ((choices[j / 128] >> (j % 128)) & 1) as u64)
                .collect();
            mat.rev_e = Bits::from_values(&e, 0);
            at += n;
        }
    }
    stats.reverse_seconds += t.elapsed().as_secs_f64();
    stats.reverse_bytes += ch.counters().since(c0).total();

    // Corrections of the precomputed products, in run order (low carry, then lift).
    let c0 = ch.counters();
    let mut payload = Vec::new();
    let mut ci = 0usize;
    for run in runs {
        let s = run.shape;
        if s.has_f {
            put_fields(&corrections[ci..ci + run.len], s.m, &mut payload);
            ci += run.len;
        }
        if s.lift {
            put_fields(&corrections[ci..ci + run.len], s.k - s.m, &mut payload);
            ci += run.len;
        }
    }
    let mut f = Out::new(msg::PRODUCTS, 0, runs.len() as u64, payload.len());
    f.payload().copy_from_slice(&payload);
    f.send(ch)?;
    ch.flush()?;
    stats.product_bytes += ch.counters().since(c0).total();
    Ok(out)
}

/// Bytes of the product-correction frame's payload.
fn products_len(runs: &[Run]) -> usize {
    runs.iter()
        .map(|r| {
            let s = r.shape;
            (if s.has_f { field_bytes(r.len, s.m) } else { 0 })
                + (if s.lift {
                    field_bytes(r.len, s.k - s.m)
                } else {
                    0
                })
        })
        .sum()
}

/// Client: mirrors [`server`]; `inputs[i] = (b mod 2^w, n mod 2^k)` in global ReLU order.
pub(crate) fn client<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    runs: &[Run],
    inputs: &[(u64, u64)],
    ferret: Option<&mut FerretReceiver>,
    rng: &mut (impl CryptoRng + RngCore),
    stats: &mut OtReluStats,
) -> Result<Vec<Option<ClientRun>>, OtError> {
    let ccr = Ccr::new();
    let mut ferret = ferret;
    let mut tweak: u128 = 0;
    let mut out = Vec::with_capacity(runs.len());
    let mut pending: Vec<(usize, bool, ClientKeys)> = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        let s = run.shape;
        if s.trivial {
            out.push(None);
            continue;
        }
        let n = run.len;
        let mut take = |bits: u32, stats: &mut OtReluStats| -> Result<ClientKeys, OtError> {
            let v = ferret_cots(ch, ferret.as_deref_mut(), n, stats)?;
            let t = Instant::now();
            let k = client_keys(&ccr, &v, tweak, bits);
            stats.material_seconds += t.elapsed().as_secs_f64();
            tweak += n as u128;
            Ok(k)
        };
        let r0 = take(1, stats)?;
        let e0 = r0.c.clone();
        let p0 = Bits::from_values(&r0.k, 0);
        let mut triples = Vec::with_capacity(s.j as usize);
        for _ in 0..s.j {
            let a = take(1, stats)?;
            let b = take(1, stats)?;
            triples.push(client_triples(&a, &b));
        }
        if s.has_f {
            pending.push((ri, false, take(s.m, stats)?));
        }
        let mux = take(s.m, stats)?;
        if s.lift {
            pending.push((ri, true, take(s.k - s.m, stats)?));
        }
        let ins = &inputs[run.start..run.start + n];
        out.push(Some(ClientRun {
            e0,
            p0,
            triples,
            cross_rho: Bits::zeros(n),
            cross_pi: Zeroizing::new(vec![0; n]),
            mux,
            rev: ServerKeys {
                k0: Zeroizing::new(Vec::new()),
                k1: Zeroizing::new(Vec::new()),
            },
            lift_rho: Bits::zeros(n),
            lift_pi: Zeroizing::new(vec![0; n]),
            b: Zeroizing::new(ins.iter().map(|x| x.0 & mask(s.w)).collect()),
        }));
    }

    let total = nontrivial_relus(runs);
    let c0 = ch.counters();
    let t = Instant::now();
    if total > 0 {
        let mut snd = CotSender::setup(ch, REVERSE_K, rng)?;
        let words = total.div_ceil(128);
        let f = In::recv(
            ch,
            msg::REVERSE,
            0,
            words as u64,
            snd.correction_bytes(words),
        )?
        .0;
        let mut corr = Vec::with_capacity(f.payload().len() / 16);
        blocks_from_bytes(f.payload(), &mut corr);
        let q = snd.extend(&corr, words)?;
        let delta = snd.delta();
        let mut at = 0usize;
        for (run, mat) in runs.iter().zip(out.iter_mut()) {
            let Some(mat) = mat else { continue };
            let n = run.len;
            mat.rev = server_keys(
                &ccr,
                &q[at..at + n],
                delta,
                REVERSE_TWEAK + at as u128,
                run.shape.m,
            );
            at += n;
        }
    }
    stats.reverse_seconds += t.elapsed().as_secs_f64();
    stats.reverse_bytes += ch.counters().since(c0).total();

    let c0 = ch.counters();
    let f = In::recv(ch, msg::PRODUCTS, 0, runs.len() as u64, products_len(runs))?.0;
    let mut rest = f.payload();
    for (ri, lift, keys) in pending {
        let run = &runs[ri];
        let s = run.shape;
        let bits = if lift { s.k - s.m } else { s.m };
        let (corr, r) = take_fields(rest, run.len, bits).ok_or(OtError::Length {
            what: "bit-product corrections",
            expected: products_len(runs),
            got: f.payload().len(),
        })?;
        rest = r;
        let pi = client_product(&keys, &corr, bits);
        if let Some(Some(mat)) = out.get_mut(ri) {
            if lift {
                mat.lift_rho = keys.c.clone();
                mat.lift_pi = pi;
            } else {
                mat.cross_rho = keys.c.clone();
                mat.cross_pi = pi;
            }
        }
    }
    stats.product_bytes += ch.counters().since(c0).total();
    Ok(out)
}
