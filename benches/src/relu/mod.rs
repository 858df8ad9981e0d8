//! `pi-bench relu`: N ReLUs over a real loopback socket, server and client threads, with either
//! protocol: garbled circuits (`--protocol gc`) or OT-based comparisons on silent OT (`ot`).
//! Prints one JSON line with bytes and µs per ReLU by phase.

mod gc;
mod ot;

use anyhow::{bail, Context};
use pi_gc::ReluParams;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Which ReLU protocol to benchmark.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Garbled circuits (pi-gc).
    Gc,
    /// OT-based comparisons on Ferret silent OT (pi-ot).
    Ot,
}

/// Options of the `relu` subcommand.
#[derive(clap::Args, Debug)]
pub struct ReluArgs {
    /// ReLU protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Gc)]
    pub protocol: Protocol,
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
    /// SoftSpoken parameter of the GC protocol's OT (1 = IKNP, 16 B/OT; 4 = 4 B/OT).
    #[arg(long, default_value_t = 4)]
    pub ot_k: u32,
    /// Circuits per streamed offline chunk (GC).
    #[arg(long, default_value_t = 2048)]
    pub chunk: usize,
    /// Number of online calls the ReLUs are split into (one per "layer").
    #[arg(long, default_value_t = 1)]
    pub online_calls: usize,
    /// GC only: max circuits over windows of this many elements, with a fused ReLU (1 = ReLU).
    #[arg(long, default_value_t = 1)]
    pub window: u32,
    /// GC only: a cap on the output (ReLU6), as an integer at the output scale (6·2^fa).
    #[arg(long)]
    pub cap: Option<u64>,
}

/// Inputs of one benchmark run: server shares a, client shares b, client masks r (n = −r).
pub(crate) struct Inputs {
    pub p: ReluParams,
    pub a: Vec<u64>,
    pub b: Vec<u64>,
    pub n: Vec<u64>,
    pub sizes: Vec<usize>,
}

pub(crate) fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Runs the benchmark and prints one JSON line.
pub fn run(args: &ReluArgs) -> anyhow::Result<()> {
    let p = ReluParams::new(args.in_bits, args.shift, args.ring_bits)?;
    let n = args.count;
    if n == 0 {
        bail!("--count must be positive");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build_global()
        .context("thread pool")?;
    let mut rng = ChaCha20Rng::from_entropy();
    let a = (0..n).map(|_| rng.next_u64() & mask(p.in_bits)).collect();
    let b = (0..n).map(|_| rng.next_u64() & mask(p.in_bits)).collect();
    let n_mask = (0..n)
        .map(|_| rng.next_u64().wrapping_neg() & mask(p.out_bits))
        .collect();
    let calls = args.online_calls.clamp(1, n);
    let sizes = (0..calls)
        .map(|i| n * (i + 1) / calls - n * i / calls)
        .collect();
    let inputs = Inputs {
        p,
        a,
        b,
        n: n_mask,
        sizes,
    };
    let json = match args.protocol {
        Protocol::Gc => gc::run(args, &inputs)?,
        Protocol::Ot => ot::run(args, &inputs)?,
    };
    println!("{json}");
    Ok(())
}

/// Checks every output against the reference.
pub(crate) fn check(inp: &Inputs, out: &[u64]) -> anyhow::Result<()> {
    let n = inp.a.len();
    if out.len() != n {
        bail!("{} outputs for {n} ReLUs", out.len());
    }
    let wrong = (0..n)
        .filter(|&i| out[i] != pi_gc::relu_reference(&inp.p, inp.a[i], inp.b[i], inp.n[i]))
        .count();
    if wrong != 0 {
        bail!("{wrong} of {n} ReLU outputs differ from the reference");
    }
    Ok(())
}
