//! `pi-opt`: design, optimize, build, count and evaluate ReLU-lean networks for private inference.

use anyhow::Result;
use clap::{Parser, Subcommand};

mod cli;

use cli::{build, calibrate, check, count, cryptonas, design, eval, optimize, paper};

#[derive(Parser)]
#[command(
    name = "pi-opt",
    version,
    about = "Design, optimize, build, count and evaluate ReLU-lean networks for private inference",
    long_about = "Design, optimize, build, count and evaluate ReLU-lean networks for private inference.\n\n\
Implements DeepReShape (Jha & Reagen, TMLR 2024): Algorithm 1 (ReLU equalization → HybReNets), the \
capacity–criticality step (α = 2), Algorithm 2 (cull / thin / channel scaling / ReLU-reuse), and \
CryptoNAS (ReLU budget, ReLU balancing, skip-ReLU pruning and shuffling). Networks are CIFAR-style \
ResNets: 3×3 stem, stages of basic blocks (stride 2 from Stage 2 on), global average pool, linear. \
Stages are named S1..SD; S1 includes the stem, as in the paper's tables.\n\n\
Every subcommand that prints numbers takes --json (one JSON document on stdout)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Algorithm 1: ReLU-equalized HybReNets for a base network and a criticality order, and their
    /// α = 2 capacity–criticality variants, with stagewise ReLUs, MACs and estimated PI cost.
    Design(design::DesignArgs),
    /// Algorithm 2: the ReLU-optimized networks (Net, Net_T, Net_C, Net_R4, Net_R8, Net_R16) of one network.
    Optimize(optimize::OptimizeArgs),
    /// CryptoNAS: the widest ReLU-balanced network (pruned and shuffled) within a ReLU budget.
    Cryptonas(cryptonas::CryptonasArgs),
    /// Write an ONNX model (seeded He-normal weights) for a network family and ReLU-optimization steps.
    Build(build::BuildArgs),
    /// ReLUs, comparisons and MACs per stage of an ONNX model and its estimated PI cost from the
    /// protocol's own plan (JSON: "relus", "comparisons", "macs", "stages", "cost", "plan").
    Count(count::CountArgs),
    /// List every node of an ONNX model that cannot be served privately, with what to change in
    /// the PyTorch model (exit code 1 if any).
    Check(check::CheckArgs),
    /// Choose the fixed-point format (fa, fw, M, ring) from sample inputs so no ReLU input
    /// overflows and the fixed-point top-1 equals float; stores it in the model file.
    Calibrate(calibrate::CalibrateArgs),
    /// Run an ONNX model on a .npy image (float or fixed point), or measure test accuracy on a data set
    /// (float, fixed point and private inference through pi-client) with --data.
    Eval(eval::EvalArgs),
    /// Train a network (SGD, cosine schedule, optional KD/DKD from a teacher) and export it as ONNX.
    Train(pi_train::cli::TrainArgs),
    /// Stagewise ReLU criticality C_k: trains stage-only variants and prints the order for `design --order`.
    Criticality(pi_train::cli::CriticalityArgs),
    /// Plot accuracy against ReLUs and estimated PI latency for a family of trained networks (SVG).
    Plot(pi_train::cli::PlotArgs),
    /// Compare our ReLU/MAC counts with the published rows of DeepReShape's tables.
    Paper(paper::PaperArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Design(a) => design::run(a),
        Command::Optimize(a) => optimize::run(a),
        Command::Cryptonas(a) => cryptonas::run(a),
        Command::Build(a) => build::run(a),
        Command::Count(a) => count::run(a),
        Command::Check(a) => check::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Train(a) => pi_train::cli::run_train(a),
        Command::Criticality(a) => pi_train::cli::run_criticality(a),
        Command::Plot(a) => pi_train::cli::run_plot(a),
        Command::Paper(a) => paper::run(a),
    }
}
