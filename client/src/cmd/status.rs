//! `pi-client status`: what the bank holds.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pi_bank::DirBank;

use crate::output::mib;

/// Options of `status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Bank directory.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists banked sets: count, model, bytes on disk, expiry.
pub fn exec(args: &StatusArgs) -> anyhow::Result<()> {
    if !args.store.is_dir() {
        anyhow::bail!(
            "{} is not a bank directory (create one with `pi-client preprocess --store {}`)",
            args.store.display(),
            args.store.display()
        );
    }
    let bank = DirBank::open(&args.store)
        .with_context(|| format!("opening the bank {}", args.store.display()))?;
    let st = bank.status()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    let bytes: u64 = st.sets.iter().map(|s| s.bytes).sum();
    println!(
        "bank {}: {} set(s), {} on disk",
        st.directory,
        st.sets.len(),
        mib(bytes)
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for s in &st.sets {
        let left = if s.expired {
            "EXPIRED".to_string()
        } else {
            format!("expires in {:.1} h", (s.expires - now) as f64 / 3600.0)
        };
        println!(
            "  {}  {} [{}]  {} ReLUs  {}  ticket {} B  {}  server {}",
            s.name,
            s.model_name,
            s.model,
            s.relus,
            mib(s.bytes),
            s.ticket_bytes,
            left,
            s.server
        );
    }
    for (name, reason) in &st.damaged {
        println!("  {name}  unusable: {reason}");
    }
    if st.in_progress > 0 {
        println!("  {} set(s) being preprocessed now", st.in_progress);
    }
    if st.in_use > 0 {
        println!("  {} set(s) in use by a running infer", st.in_use);
    }
    if st.cleaned > 0 {
        println!(
            "  removed {} leftover(s) of runs that were killed (never reused)",
            st.cleaned
        );
    }
    Ok(())
}
