//! `pi-client`: runs a private inference against a `pi-server` and reports latency and traffic.

mod cmd;
mod connect;
mod input;
mod output;

use clap::Parser;

/// Private inference of an image against a pi-server: the server learns nothing about the image,
/// the client learns the prediction and nothing about the weights.
#[derive(Parser, Debug)]
#[command(name = "pi-client", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    run: cmd::run::RunArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cmd::run::exec(&cli.run)
}
