//! `pi-client infer`: one private inference on a banked set; only the online phase runs.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pi_bank::DirBank;
use protocol::{BankedInference, ClientOptions};
use serde_json::json;

use crate::connect::ConnectArgs;
use crate::input::InputArgs;
use crate::output::{mib, progress_bar};

/// Options of `infer`.
#[derive(Args, Debug)]
pub struct InferArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Bank directory filled by `pi-client preprocess`.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    #[command(flatten)]
    pub input: InputArgs,
    /// Write a JSON report (prediction, logits, the set's offline figures, online figures).
    #[arg(long, value_name = "report.json")]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Consumes one banked set and prints the prediction.
pub fn exec(args: &InferArgs) -> anyhow::Result<()> {
    let (shape, image) = args.input.load()?;
    let mut bank = DirBank::open(&args.store)
        .with_context(|| format!("opening the bank {}", args.store.display()))?;
    let bar = progress_bar(args.quiet);
    let progress = |phase: &str, done: usize, total: usize| {
        bar.set_message(phase.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let options = ClientOptions {
        batch: 1,
        connect: args.connect.options()?,
        session_timeout: args.connect.session_timeout(),
        ..ClientOptions::default()
    };
    let result = protocol::infer(
        &args.connect.connect,
        shape,
        &image,
        &mut bank,
        &options,
        &progress,
    );
    bar.finish_and_clear();
    let r = result.with_context(|| format!("banked inference against {}", args.connect.connect))?;
    for (set, reason) in &r.discarded {
        eprintln!("warning: banked set {set} was refused and discarded: {reason}");
    }
    print_table(&r);
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report_json(&r))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn print_table(r: &BankedInference) {
    let (off, on) = (&r.report.offline, &r.report.online);
    println!(
        "model       {}  ({} ReLUs, {:.1}M MACs)",
        r.model,
        r.relus,
        r.macs as f64 / 1e6
    );
    println!("prediction  {}", r.report.prediction);
    println!(
        "{:<10} {:>9} {:>13} {:>13}   breakdown",
        "phase", "seconds", "sent", "received"
    );
    println!(
        "{:<10} {:>9.3} {:>13} {:>13}   banked set {} (preprocessed earlier)",
        "offline",
        off.seconds,
        mib(off.bytes_sent),
        mib(off.bytes_received),
        r.set
    );
    println!(
        "{:<10} {:>9.3} {:>13} {:>13}   linear {:.3}s (server), GC {:.3}s",
        "online",
        on.seconds,
        mib(on.bytes_sent),
        mib(on.bytes_received),
        on.linear_seconds,
        on.gc_seconds
    );
    println!(
        "{:<10} {:>9.3}   connect, ticket and online phase: what the user waited for",
        "wait", r.report.total_seconds
    );
}

/// The documented report shape, plus what banking adds.
fn report_json(r: &BankedInference) -> serde_json::Value {
    json!({
        "model": r.model,
        "prediction": r.report.prediction,
        "logits": r.report.logits,
        "relus": r.relus,
        "macs": r.macs,
        "offline": r.report.offline,
        "online": r.report.online,
        "total_seconds": r.report.total_seconds,
        "banked": {"set": r.set, "discarded": r.discarded},
    })
}
