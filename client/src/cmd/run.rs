//! The one-shot form: `pi-client --connect HOST:PORT --input X.npy` runs the offline phase inline,
//! then the online phase, in one session.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use protocol::{ClientOptions, SpillPolicy};

use crate::connect::ConnectArgs;
use crate::input::InputArgs;
use crate::output::{print_table, progress_bar, write_report};

/// Options of a one-shot private inference (offline inline, then online).
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub input: InputArgs,
    /// Write a JSON report (prediction, logits, per-phase seconds and bytes) here.
    #[arg(long, value_name = "report.json")]
    pub report: Option<PathBuf>,
    /// Run K offline preprocessings, then K online inferences of the same image, in one session.
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub batch: u32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// MiB of garbled circuits (tables and input labels, ~4–7 KB per ReLU) kept in memory
    /// between the offline and the online phase; the rest waits in a temporary file. Default: an
    /// eighth of this host's memory.
    #[arg(long, value_name = "MIB")]
    pub gc_memory_mib: Option<u64>,
    /// Directory of that temporary file (default: $TMPDIR or /tmp); it has no name on disk and
    /// is gone when the session ends. Written and read with direct I/O where the filesystem
    /// allows it (not through the page cache), so the online phase reads it at the disk's speed:
    /// put it on a fast local disk.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
}

/// Runs the session and prints (and optionally writes) its report.
pub fn exec(args: &RunArgs) -> anyhow::Result<()> {
    let connect = args.connect.options()?;
    let (shape, image) = args.input.load()?;
    let bar = progress_bar(args.quiet);
    let progress = |phase: &str, done: usize, total: usize| {
        bar.set_message(phase.to_string());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let options = ClientOptions {
        batch: args.batch,
        connect,
        session_timeout: args.connect.session_timeout(),
        gc_spill: SpillPolicy {
            memory_bytes: args
                .gc_memory_mib
                .map_or(protocol::default_gc_spill().memory_bytes, |m| {
                    m.saturating_mul(1 << 20)
                }),
            dir: args.spill_dir.clone(),
        },
    };
    let report = protocol::run_client(&args.connect.connect, shape, &image, &options, &progress)
        .with_context(|| format!("private inference against {}", args.connect.connect))?;
    bar.finish_and_clear();
    print_table(&report);
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    Ok(())
}
