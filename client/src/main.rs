//! `pi-client`: runs a private inference against a `pi-server` and reports latency and traffic.

mod cmd;
mod connect;
mod input;
mod output;

use clap::{Parser, Subcommand};

/// Private inference of an image against a pi-server: the server learns nothing about the image,
/// the client learns the prediction and nothing about the weights.
///
/// Without a subcommand: one inference with its offline phase inline. With `preprocess`, the
/// offline phase is banked ahead of time; `infer` then runs only the online phase on a banked set.
#[derive(Parser, Debug)]
#[command(name = "pi-client", version, about, long_about = None,
          args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(flatten)]
    run: cmd::run::RunArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bank offline material (HE correlations, OT, garbled circuits) before the input exists.
    Preprocess(cmd::preprocess::PreprocessArgs),
    /// One inference on a banked set: only the online phase runs.
    Infer(cmd::infer::InferArgs),
    /// List the banked sets: count, model, bytes on disk, expiry.
    Status(cmd::status::StatusArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        None => cmd::run::exec(&cli.run),
        Some(Command::Preprocess(a)) => cmd::preprocess::exec(a),
        Some(Command::Infer(a)) => cmd::infer::exec(a),
        Some(Command::Status(a)) => cmd::status::exec(a),
    }
}
