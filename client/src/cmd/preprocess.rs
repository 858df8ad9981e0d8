//! `pi-client preprocess`: banks offline material before any input exists.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use pi_bank::DirBank;
use protocol::ClientOptions;

use crate::connect::ConnectArgs;
use crate::output::{mib, progress_bar};

/// Options of `preprocess`.
#[derive(Args, Debug)]
pub struct PreprocessArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Bank directory (created if needed); each set is one file there.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Sets to bank (each serves one later inference).
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub count: u32,
    /// Write a JSON report of the banked sets here.
    #[arg(long, value_name = "report.json")]
    pub report: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `count` offline phases and banks each set in the store.
pub fn exec(args: &PreprocessArgs) -> anyhow::Result<()> {
    let mut bank = DirBank::open(&args.store)
        .with_context(|| format!("opening the bank {}", args.store.display()))?;
    let bar = progress_bar(args.quiet);
    let progress = |phase: &str, done: usize, total: usize| {
        bar.set_message(phase.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let options = ClientOptions {
        batch: args.count,
        connect: args.connect.options()?,
        session_timeout: args.connect.session_timeout(),
        ..ClientOptions::default()
    };
    let result = protocol::preprocess(
        &args.connect.connect,
        args.count,
        &mut bank,
        &options,
        &progress,
    );
    bar.finish_and_clear();
    let report = result.with_context(|| {
        let banked = bank.status().map(|s| s.sets.len()).unwrap_or(0);
        format!(
            "preprocessing against {} (the bank {} now holds {banked} complete set(s); an unfinished set is never kept)",
            args.connect.connect,
            args.store.display()
        )
    })?;
    println!(
        "model       {}  ({} ReLUs, {:.1}M MACs)",
        report.model,
        report.relus,
        report.macs as f64 / 1e6
    );
    for s in &report.sets {
        println!(
            "banked      {}  offline {:.3}s, sent {}, received {}, ticket {} B",
            s.name,
            s.offline.seconds,
            mib(s.offline.bytes_sent),
            mib(s.offline.bytes_received),
            s.ticket_bytes
        );
    }
    let st = bank.status()?;
    let bytes: u64 = st.sets.iter().map(|s| s.bytes).sum();
    println!(
        "bank        {}: {} set(s), {} on disk",
        args.store.display(),
        st.sets.len(),
        mib(bytes)
    );
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
