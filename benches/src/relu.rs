//! `pi-bench relu`: N garbled ReLUs (or maxima with `--window`, ReLU6 with `--cap`) over a real
//! loopback socket, server and client threads.

use std::thread;
use std::time::Instant;

use anyhow::{bail, Context};
use pi_gc::{
    evaluate_offline, garble_offline_with, CircuitSpec, MaxParams, OfflineConfig, ReluParams,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Options of the `relu` subcommand.
#[derive(clap::Args, Debug)]
pub struct ReluArgs {
    /// Number of ReLUs.
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Worker threads for garbling, OT and evaluation (rayon pool shared by both parties; with 1,
    /// each party computes inline on its own thread, i.e. one core per party).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// w: input share bits read by the circuit.
    #[arg(long, default_value_t = 27)]
    pub in_bits: u32,
    /// F: truncation shift.
    #[arg(long, default_value_t = 8)]
    pub shift: u32,
    /// k: ring bits of the output.
    #[arg(long, default_value_t = 52)]
    pub ring_bits: u32,
    /// SoftSpoken parameter (1 = IKNP, 16 B/OT; 4 = 4 B/OT).
    #[arg(long, default_value_t = 4)]
    pub ot_k: u32,
    /// Circuits per streamed offline chunk.
    #[arg(long, default_value_t = 2048)]
    pub chunk: usize,
    /// Number of online calls the ReLUs are split into (one per "layer").
    #[arg(long, default_value_t = 1)]
    pub online_calls: usize,
    /// Max circuits over windows of this many elements (with a fused ReLU; 1 = plain ReLU).
    #[arg(long, default_value_t = 1)]
    pub window: u32,
    /// A cap on the output (ReLU6), as an integer at the output scale (6·2^fa).
    #[arg(long)]
    pub cap: Option<u64>,
}

fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Runs the benchmark and prints one JSON line.
pub fn run(args: &ReluArgs) -> anyhow::Result<()> {
    let p: CircuitSpec = if args.window > 1 || args.cap.is_some() {
        MaxParams::new(
            args.window.max(1),
            args.in_bits,
            args.shift,
            args.ring_bits,
            true,
            args.cap,
        )?
        .into()
    } else {
        ReluParams::new(args.in_bits, args.shift, args.ring_bits)?.into()
    };
    let words = p.server_words();
    let n = args.count;
    if n == 0 {
        bail!("--count must be positive");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build_global()
        .context("thread pool")?;
    let cfg = OfflineConfig {
        ot_k: args.ot_k,
        chunk_circuits: args.chunk,
    };
    let params = vec![p; n];

    let mut data_rng = ChaCha20Rng::from_entropy();
    let a: Vec<u64> = (0..n * words)
        .map(|_| data_rng.next_u64() & mask(p.in_bits()))
        .collect();
    // Per circuit: the client's shares, then n = −r.
    let inputs: Vec<u64> = (0..n * (words + 1))
        .map(|i| {
            let v = data_rng.next_u64();
            if i % (words + 1) == words {
                v.wrapping_neg() & mask(p.out_bits())
            } else {
                v & mask(p.in_bits())
            }
        })
        .collect();
    let calls = args.online_calls.clamp(1, n);
    let sizes: Vec<usize> = (0..calls)
        .map(|i| n * (i + 1) / calls - n * i / calls)
        .collect();

    let (mut sch, mut cch) = pi_net::loopback_pair()?;
    let t0 = Instant::now();
    let (server, client) = thread::scope(|sc| {
        let (params, a, sizes) = (&params, &a, &sizes);
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

    let wrong = (0..n)
        .filter(|&i| {
            let want = p.reference(
                &a[i * words..(i + 1) * words],
                &inputs[i * (words + 1)..(i + 1) * (words + 1)],
            );
            want.map_or(true, |w| out[i] != w)
        })
        .count();
    if wrong != 0 {
        bail!("{wrong} of {n} ReLU outputs differ from the reference");
    }

    let nf = n as f64;
    let ands = p.and_gates();
    let ots = (p.client_input_bits() * n) as f64;
    let us = |s: f64| s * 1e6 / nf;
    let per = |b: u64| b as f64 / nf;
    let ot_s = sstats.ot_seconds + cstats.ot_seconds;
    let total_bytes =
        sstats.table_bytes + sstats.ot_bytes + sstats.online_bytes + sstats.setup_bytes;
    let json = serde_json::json!({
        "relus": n,
        "window": words, "cap": args.cap,
        "in_bits": p.in_bits(), "shift": args.shift, "ring_bits": p.out_bits(),
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
        "correct": true,
    });
    println!("{json}");
    Ok(())
}
