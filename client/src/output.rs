//! What the client prints and writes: the latency/traffic table, the JSON report, the progress bar.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use protocol::{InferenceReport, SessionReport};
use serde_json::json;

/// A progress bar (hidden with `quiet`) styled for the protocol's phases.
pub fn progress_bar(quiet: bool) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Writes the JSON report to `path`.
pub fn write_report(path: &Path, r: &SessionReport) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(&report_json(r))?)
        .with_context(|| format!("writing {}", path.display()))
}

/// The report in the documented JSON shape (first inference at top level, all of them in "batch").
pub fn report_json(r: &SessionReport) -> serde_json::Value {
    let first: Option<&InferenceReport> = r.inferences.first();
    json!({
        "model": r.model,
        "prediction": first.map(|f| f.prediction),
        "logits": first.map(|f| &f.logits),
        "relus": r.relus,
        "comparisons": r.comparisons,
        "macs": r.macs,
        "offline": first.map(|f| &f.offline),
        "online": first.map(|f| &f.online),
        "total_seconds": first.map(|f| f.total_seconds),
        "session_seconds": r.session_seconds,
        "batch": r.inferences,
    })
}

/// Bytes as MiB with two decimals.
pub fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64)
}

/// Prints the prediction and the per-phase latency/traffic table of every inference.
pub fn print_table(r: &SessionReport) {
    let comparisons = if r.comparisons > 0 {
        format!(", {} comparisons", r.comparisons)
    } else {
        String::new()
    };
    println!(
        "model       {}  ({} ReLUs{comparisons}, {:.1}M MACs)",
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
            "{:<10} {:>9.3} {:>13} {:>13}   linear {:.3}s (server), ReLUs {:.3}s",
            "online",
            on.seconds,
            mib(on.bytes_sent),
            mib(on.bytes_received),
            on.linear_seconds,
            on.gc_seconds
        );
        let (ro, rn) = (&off.relu, &on.relu);
        println!(
            "{:<10} gc {} + ot {}: offline {:.1} B and {:.2} µs per ReLU, online {:.1} B and {:.2} µs per ReLU",
            "ReLUs",
            ro.gc_relus,
            ro.ot_relus,
            ro.bytes_per_relu(),
            ro.us_per_relu(),
            rn.bytes_per_relu(),
            rn.us_per_relu()
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
