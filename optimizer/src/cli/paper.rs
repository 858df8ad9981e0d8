//! `pi-opt paper`: our ReLU/MAC counts against the published rows of DeepReShape's tables.

use anyhow::Result;
use clap::Args;

use optimizer::paper;

use super::print_json;

/// Arguments of `pi-opt paper`.
#[derive(Args)]
pub struct PaperArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `pi-opt paper`.
pub fn run(a: PaperArgs) -> Result<()> {
    let rows = paper::compare()?;
    if a.json {
        return print_json(&rows);
    }
    println!(
        "{:<18} {:<26} {:>8} {:>10} {:>3} {:>10} {:>12} {:>7}",
        "table", "network", "paper", "ours", "ok", "paper", "ours", "diff"
    );
    for c in &rows {
        let flops = c.row.flops_m.map_or(String::new(), |f| format!("{f:.1}M"));
        let diff = c
            .flops_diff_percent
            .map_or(String::new(), |d| format!("{d:+.2}%"));
        println!(
            "{:<18} {:<26} {:>7}K {:>10} {:>3} {:>10} {:>11.2}M {:>7}",
            c.row.table,
            c.row.network,
            c.row.relus_k,
            c.relus,
            if c.relus_match { "=" } else { "≠" },
            flops,
            c.macs as f64 / 1e6,
            diff
        );
    }
    println!("\nknown deviations:");
    for c in rows.iter().filter(|c| c.row.known_deviation.is_some()) {
        println!(
            "  T{} {}: {}",
            c.row.table,
            c.row.network,
            c.row.known_deviation.unwrap_or_default()
        );
    }
    println!("  ReLU-reuse rows (Re2): {}", paper::REUSE_FLOPS_NOTE);
    Ok(())
}
