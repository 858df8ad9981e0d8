//! `pi-client`: runs a private inference against a `pi-server` and reports latency and traffic.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use protocol::{ClientOptions, InferenceReport, SessionReport};
use serde_json::json;

/// Private inference of an image against a pi-server: the server learns nothing about the image,
/// the client learns the prediction and nothing about the weights.
/// The embedded sample input: an MNIST 6, float32 [1,3,32,32], normalised for the default model (client/assets/README.md).
const SAMPLE_IMAGE: &[u8] = include_bytes!("../assets/sample.npy");

#[derive(Parser, Debug)]
#[command(name = "pi-client", version, about, long_about = None)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:4433", value_name = "HOST:PORT")]
    connect: String,
    /// Input image: float32 .npy of shape [3,H,W] or [1,3,H,W], already normalised.
    #[arg(long, value_name = "IMAGE.npy", required_unless_present = "sample")]
    input: Option<PathBuf>,
    /// Use the embedded sample image instead of --input.
    #[arg(long, conflicts_with = "input")]
    sample: bool,
    /// Write a JSON report (prediction, logits, per-phase seconds and bytes) here.
    #[arg(long, value_name = "report.json")]
    report: Option<PathBuf>,
    /// Run K offline preprocessings, then K online inferences of the same image, in one session.
    #[arg(long, default_value_t = 1, value_name = "K")]
    batch: u32,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Seconds a read may block before giving up on the server.
    #[arg(long, default_value_t = 300)]
    read_timeout: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (shape, image) =
        match &args.input {
            Some(path) => models::npy::load_image(path)
                .with_context(|| format!("reading {}", path.display()))?,
            None => models::npy::read_image(SAMPLE_IMAGE)
                .context("decoding the embedded sample image")?,
        };

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |phase: &str, done: usize, total: usize| {
        bar.set_message(phase.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let options = ClientOptions {
        batch: args.batch,
        read_timeout: std::time::Duration::from_secs(args.read_timeout),
    };
    let report = protocol::run_client(&args.connect, shape, &image, &options, &progress)
        .with_context(|| format!("private inference against {}", args.connect))?;
    bar.finish_and_clear();

    print_table(&report);
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report_json(&report))?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The report in the documented JSON shape (first inference at top level, all of them in "batch").
fn report_json(r: &SessionReport) -> serde_json::Value {
    let first: &InferenceReport = &r.inferences[0];
    json!({
        "model": r.model,
        "prediction": first.prediction,
        "logits": first.logits,
        "relus": r.relus,
        "macs": r.macs,
        "offline": first.offline,
        "online": first.online,
        "total_seconds": first.total_seconds,
        "session_seconds": r.session_seconds,
        "batch": r.inferences,
    })
}

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
}

fn print_table(r: &SessionReport) {
    println!(
        "model       {}  ({} ReLUs, {:.1}M MACs)",
        r.model,
        r.relus,
        r.macs as f64 / 1e6
    );
    for (i, inf) in r.inferences.iter().enumerate() {
        let (off, on) = (&inf.offline, &inf.online);
        if r.inferences.len() > 1 {
            println!("--- inference {} of {}", i + 1, r.inferences.len());
        }
        println!("prediction  {}", inf.prediction);
        println!(
            "{:<10} {:>9} {:>13} {:>13}   breakdown",
            "phase", "seconds", "sent", "received"
        );
        println!(
            "{:<10} {:>9.3} {:>13} {:>13}   HE {:.3}s, garbling {:.3}s, OT {:.3}s (server: HE {:.3}s, garble+OT {:.3}s)",
            "offline", off.seconds, mib(off.bytes_sent), mib(off.bytes_received),
            off.he_seconds, off.garble_seconds, off.ot_seconds, off.server_he_seconds, off.server_garble_seconds
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
        let bytes = off.bytes_sent + off.bytes_received + on.bytes_sent + on.bytes_received;
        println!(
            "{:<10} {:>9.3} {:>13} {:>13}   {:.0} bytes per ReLU",
            "total",
            inf.total_seconds,
            mib(off.bytes_sent + on.bytes_sent),
            mib(off.bytes_received + on.bytes_received),
            if r.relus > 0 {
                bytes as f64 / r.relus as f64
            } else {
                0.0
            }
        );
    }
}
