//! `pi-bench ot`: correlated-OT throughput of SoftSpoken (`pi-gc`) and Ferret (`pi-ot`), both
//! parties on loopback TCP, one thread each. COT/s is COTs over the wall time of the slower
//! party, setup (base OT, bootstrap) included; bytes are both directions.

use std::thread;
use std::time::Instant;

use anyhow::{bail, Context};
use pi_gc::ot::{CotReceiver, CotSender};
use pi_ot::{FerretPlan, FerretReceiver, FerretSender};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Which extension to measure.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Ferret silent OT (pi-ot).
    Ferret,
    /// SoftSpoken OT extension (pi-gc).
    Softspoken,
}

/// Options of the `ot` subcommand.
#[derive(clap::Args, Debug)]
pub struct OtArgs {
    /// Which extension.
    #[arg(long, value_enum, default_value_t = Kind::Ferret)]
    pub kind: Kind,
    /// Number of COTs.
    #[arg(long, default_value_t = 10_000_000)]
    pub count: usize,
    /// SoftSpoken parameter k (1 = IKNP).
    #[arg(long, default_value_t = 4)]
    pub ot_k: u32,
    /// COTs per request (Ferret take / SoftSpoken chunk).
    #[arg(long, default_value_t = 1 << 20)]
    pub chunk: usize,
}

/// Runs the benchmark and prints one JSON line.
pub fn run(args: &OtArgs) -> anyhow::Result<()> {
    if args.count == 0 || args.chunk == 0 {
        bail!("--count and --chunk must be positive");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .context("thread pool")?;
    let (mut s, mut r) = pi_net::loopback_pair()?;
    let n = args.count;
    let chunk = args.chunk;
    let t0 = Instant::now();
    let (st, rt, check) = match args.kind {
        Kind::Ferret => {
            let plan = FerretPlan::for_count(n);
            let srv = thread::spawn(move || -> anyhow::Result<_> {
                let t = Instant::now();
                let mut f = FerretSender::setup(&mut s, plan, &mut ChaCha20Rng::from_entropy())?;
                let mut first = Vec::new();
                let mut left = n;
                while left > 0 {
                    let m = left.min(chunk);
                    let v = f.take(&mut s, m)?;
                    if first.is_empty() {
                        first = v[..v.len().min(64)].to_vec();
                    }
                    left -= m;
                }
                Ok((t.elapsed().as_secs_f64(), s.counters(), f.delta(), first))
            });
            let t = Instant::now();
            let mut f = FerretReceiver::setup(&mut r, plan, &mut ChaCha20Rng::from_entropy())?;
            let mut first = Vec::new();
            let mut left = n;
            while left > 0 {
                let m = left.min(chunk);
                let v = f.take(&mut r, m)?;
                if first.is_empty() {
                    first = v[..v.len().min(64)].to_vec();
                }
                left -= m;
            }
            let rt = t.elapsed().as_secs_f64();
            let (st, c, delta, q) = srv
                .join()
                .map_err(|_| anyhow::anyhow!("sender panicked"))??;
            let ok = q
                .iter()
                .zip(&first)
                .all(|(q, t)| *t == *q ^ if t & 1 == 1 { delta } else { 0 });
            (st, rt, (c, ok, format!("ferret-{:?}", plan.main)))
        }
        Kind::Softspoken => {
            let k = args.ot_k;
            let words = chunk.div_ceil(128);
            let rounds = n.div_ceil(words * 128);
            let srv = thread::spawn(move || -> anyhow::Result<_> {
                let t = Instant::now();
                let mut snd = CotSender::setup(&mut s, k, &mut ChaCha20Rng::from_entropy())?;
                let mut first = Vec::new();
                for _ in 0..rounds {
                    let f = s.recv_frame()?;
                    let corr: Vec<u128> = f
                        .chunks_exact(16)
                        .map(|c| u128::from_le_bytes(c.try_into().unwrap_or([0; 16])))
                        .collect();
                    let q = snd.extend(&corr, words)?;
                    if first.is_empty() {
                        first = q[..64].to_vec();
                    }
                }
                Ok((t.elapsed().as_secs_f64(), s.counters(), snd.delta(), first))
            });
            let t = Instant::now();
            let mut rng = ChaCha20Rng::from_entropy();
            let mut rcv = CotReceiver::setup(&mut r, k, &mut rng)?;
            let mut first = (Vec::new(), 0u128);
            for _ in 0..rounds {
                let choices: Vec<u128> = (0..words)
                    .map(|_| ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128)
                    .collect();
                let (v, corr) = rcv.extend(&choices);
                let bytes: Vec<u8> = corr.iter().flat_map(|c| c.to_le_bytes()).collect();
                r.send_frame(&bytes)?;
                r.flush()?;
                if first.0.is_empty() {
                    first = (v[..64].to_vec(), choices[0]);
                }
            }
            let rt = t.elapsed().as_secs_f64();
            let (st, c, delta, q) = srv
                .join()
                .map_err(|_| anyhow::anyhow!("sender panicked"))??;
            let ok = (0..64).all(|j| {
                let bit = (first.1 >> j) & 1 == 1;
                first.0[j] == q[j] ^ if bit { delta } else { 0 }
            });
            (st, rt, (c, ok, format!("softspoken-k{k}")))
        }
    };
    let wall = t0.elapsed().as_secs_f64();
    let (c, ok, name) = check;
    if !ok {
        bail!("COT correlation check failed");
    }
    let produced = match args.kind {
        Kind::Ferret => n,
        Kind::Softspoken => n.div_ceil(chunk.div_ceil(128) * 128) * chunk.div_ceil(128) * 128,
    };
    let json = serde_json::json!({
        "ot": name,
        "cots": produced,
        "wall_s": wall,
        "sender_s": st,
        "receiver_s": rt,
        "m_cot_per_s": produced as f64 / wall / 1e6,
        "bytes": c.sent + c.received,
        "bytes_per_cot": (c.sent + c.received) as f64 / produced as f64,
        "correct": true,
    });
    println!("{json}");
    Ok(())
}
