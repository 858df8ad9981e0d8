//! `pi-train`: train, distil, measure ReLU criticality, evaluate and plot networks.

use clap::{Parser, Subcommand};
use pi_train::cli;

#[derive(Parser)]
#[command(
    name = "pi-train",
    version,
    about = "Train the networks pi-opt designs (burn, CPU) and evaluate them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train (optionally with KD/DKD from a teacher), checkpoint, and export ONNX with BatchNorm folded.
    Train(cli::TrainArgs),
    /// Train stage-only variants and print the stagewise ReLU criticality C_k and order.
    Criticality(cli::CriticalityArgs),
    /// Test accuracy of the float, fixed-point and private model.
    Eval(cli::EvalArgs),
    /// Plot accuracy vs ReLUs and vs estimated PI latency for a family of trained networks (SVG).
    Plot(cli::PlotArgs),
    /// Write a data set's images, prepared for a model as training feeds them, as one .npy batch
    /// (e.g. calibration samples for `pi-opt calibrate`).
    Samples(pi_train::samples::SamplesArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Train(a) => cli::run_train(a),
        Command::Criticality(a) => cli::run_criticality(a),
        Command::Eval(a) => cli::run_eval(a),
        Command::Plot(a) => cli::run_plot(a),
        Command::Samples(a) => {
            let n = pi_train::samples::run_samples(&a)?;
            println!("{n} images written to {}", a.output.display());
            Ok(())
        }
    }
}
