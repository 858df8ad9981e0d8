//! pi-bench: benchmark harness; each subcommand prints one JSON line.

use clap::{Parser, Subcommand};

mod door;
mod e2e;
mod linear;
mod link;
mod ot;
mod relu;

/// Benchmarks for the private-inference engine (results as one JSON line per run).
#[derive(Parser)]
#[command(name = "pi-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// One subcommand per benchmarked layer; add new ones here.
#[derive(Subcommand)]
enum Command {
    /// Real pi-server/pi-client processes, one-shot vs banked, on loopback or a shaped netns link.
    E2e(e2e::E2eArgs),
    /// ReLUs end to end over loopback TCP, garbled (`--protocol gc`) or OT-based (`--protocol ot`).
    Relu(relu::ReluArgs),
    /// Correlated-OT throughput: Ferret silent OT or SoftSpoken.
    Ot(ot::OtArgs),
    /// The server's door against a real pi-server: mutated sessions, slow-loris, replay cost, TLS cost.
    Door {
        #[command(subcommand)]
        figure: door::DoorCommand,
    },
    /// HE offline phase of every linear layer (options parsed by benches/src/linear.rs; see `linear --help`).
    #[command(disable_help_flag = true)]
    Linear {
        /// Options passed through to the linear benchmark.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::E2e(args) => e2e::run(&args),
        Command::Relu(args) => relu::run(&args),
        Command::Ot(args) => ot::run(&args),
        Command::Door { figure } => door::run(&figure),
        Command::Linear { args } => linear::main(&args),
    }
}
