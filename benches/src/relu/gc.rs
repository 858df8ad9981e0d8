//! `pi-bench relu --protocol gc`: garbled ReLUs (or maxima with `--window`, ReLU6 with `--cap`).

use std::thread;
use std::time::Instant;

use anyhow::bail;
use pi_gc::{evaluate_offline, garble_offline_with, CircuitSpec, MaxParams, OfflineConfig};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use super::{check, mask, Inputs, ReluArgs};

/// Runs the GC benchmark; returns its JSON line.
pub(crate) fn run(args: &ReluArgs, inp: &Inputs) -> anyhow::Result<serde_json::Value> {
    let p = inp.p;
    let n = inp.a.len();
    let cfg = OfflineConfig {
        ot_k: args.ot_k,
        chunk_circuits: args.chunk,
    };
    let spec: CircuitSpec = if args.window > 1 || args.cap.is_some() {
        MaxParams::new(
            args.window.max(1),
            p.in_bits,
            p.shift,
            p.out_bits,
            true,
            args.cap,
        )?
        .into()
    } else {
        p.into()
    };
    let words = spec.server_words();
    let params = vec![spec; n];
    // Server words (one per ReLU, `window` per maximum) and client words (shares, then n = −r).
    let (a_words, inputs): (Vec<u64>, Vec<u64>) = if words == 1 {
        let cw = inp
            .b
            .iter()
            .zip(&inp.n)
            .flat_map(|(&b, &m)| [b, m])
            .collect();
        (inp.a.clone(), cw)
    } else {
        let mut rng = ChaCha20Rng::from_entropy();
        let a = (0..n * words)
            .map(|_| rng.next_u64() & mask(p.in_bits))
            .collect();
        let c = (0..n * (words + 1))
            .map(|i| {
                let v = rng.next_u64();
                if i % (words + 1) == words {
                    v & mask(p.out_bits)
                } else {
                    v & mask(p.in_bits)
                }
            })
            .collect();
        (a, c)
    };
    let (a, sizes) = (&a_words, &inp.sizes);

    let (mut sch, mut cch) = pi_net::loopback_pair()?;
    let t0 = Instant::now();
    let (server, client) = thread::scope(|sc| {
        let params = &params;
        let srv = sc.spawn(move || -> anyhow::Result<_> {
            let mut rng = ChaCha20Rng::from_entropy();
            let t = Instant::now();
            let mut s = garble_offline_with(&mut sch, params, &cfg, &mut rng)?;
            let offline = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut out = Vec::with_capacity(a.len());
            let mut at = 0;
            for &m in sizes {
                out.extend(s.online(&mut sch, &a[at * words..(at + m) * words])?);
                at += m;
            }
            Ok((s.stats(), offline, t.elapsed().as_secs_f64(), out))
        });
        let cli = (|| -> anyhow::Result<_> {
            let mut rng = ChaCha20Rng::from_entropy();
            let t = Instant::now();
            let mut c = evaluate_offline(&mut cch, params, &inputs, &mut rng)?;
            let offline = t.elapsed().as_secs_f64();
            let stored = c.stored_bytes();
            let t = Instant::now();
            for &m in sizes.iter() {
                c.online(&mut cch, m)?;
            }
            Ok((c.stats(), offline, t.elapsed().as_secs_f64(), stored))
        })();
        (srv.join(), cli)
    });
    let total = t0.elapsed().as_secs_f64();
    let (sstats, s_off, s_on, out) =
        server.map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let (cstats, c_off, c_on, stored) = client?;

    if words == 1 && matches!(spec, CircuitSpec::Relu(_)) {
        check(inp, &out)?;
    } else {
        let wrong = (0..n)
            .filter(|&i| {
                spec.reference(
                    &a_words[i * words..(i + 1) * words],
                    &inputs[i * (words + 1)..(i + 1) * (words + 1)],
                )
                .map_or(true, |w| out.get(i) != Some(&w))
            })
            .count();
        if wrong != 0 {
            bail!("{wrong} of {n} circuit outputs differ from the reference");
        }
    }

    let nf = n as f64;
    let ands = spec.and_gates();
    let ots = (spec.client_input_bits() * n) as f64;
    let us = |s: f64| s * 1e6 / nf;
    let per = |b: u64| b as f64 / nf;
    let ot_s = sstats.ot_seconds + cstats.ot_seconds;
    let total_bytes =
        sstats.table_bytes + sstats.ot_bytes + sstats.online_bytes + sstats.setup_bytes;
    let json = serde_json::json!({
        "protocol": "gc",
        "relus": n,
        "window": words, "cap": args.cap,
        "in_bits": p.in_bits, "shift": p.shift, "ring_bits": p.out_bits,
        "ot": if args.ot_k == 1 { "iknp".to_string() } else { format!("softspoken-k{}", args.ot_k) },
        "and_gates_per_relu": ands,
        "garbled_bytes_per_relu": per(sstats.table_bytes),
        "ot_bytes_per_relu": per(sstats.ot_bytes + sstats.setup_bytes),
        "online_bytes_per_relu": per(sstats.online_bytes),
        "total_bytes_per_relu": per(total_bytes),
        "client_storage_bytes_per_relu": stored as f64 / nf,
        "garble_us_per_relu": us(sstats.gc_seconds),
        "eval_us_per_relu": us(cstats.gc_seconds),
        "ot_us_per_relu": us(ot_s),
        "ot_sender_us_per_relu": us(sstats.ot_seconds),
        "ot_receiver_us_per_relu": us(cstats.ot_seconds),
        "garble_mand_per_s": ands as f64 * nf / sstats.gc_seconds / 1e6,
        "eval_mand_per_s": ands as f64 * nf / cstats.gc_seconds / 1e6,
        "ot_m_per_s": ots / ot_s / 1e6,
        "offline_wall_us_per_relu": us(s_off.max(c_off)),
        "online_wall_us_per_relu": us(s_on.max(c_on)),
        "end_to_end_mand_per_s": ands as f64 * nf / total / 1e6,
        "total_wall_s": total,
        "threads": args.threads.max(1),
        "total_wall_us_per_relu": us(total),
        "correct": true,
    });
    Ok(json)
}
