//! `pi-opt build`: write an ONNX model for a network family and ReLU-optimization steps.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use optimizer::construct::{self, InitOptions, DEFAULT_RESIDUAL_SCALE};
use optimizer::report::{self, NetworkReport};

use super::net::{apply_steps, net_arch, NetArgs, StepArgs};
use super::{print_json, CostArgs};

/// Arguments of `pi-opt build`.
#[derive(Args)]
pub struct BuildArgs {
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    steps: StepArgs,
    /// Seed of the He-normal weight initialization (ChaCha8).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Factor on the last conv of every residual branch, keeping untrained activations in the
    /// fixed-point range (1 = plain He-normal).
    #[arg(long, default_value_t = DEFAULT_RESIDUAL_SCALE)]
    residual_scale: f32,
    /// Output ONNX file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    cost: CostArgs,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `pi-opt build`.
pub fn run(a: BuildArgs) -> Result<()> {
    let arch = apply_steps(net_arch(&a.net)?, &a.steps)?;
    let model = construct::build(
        &arch,
        InitOptions {
            seed: a.seed,
            residual_scale: a.residual_scale,
        },
    )?;
    let counted = models::count::count(&model)?;
    let analytic = arch.count()?;
    if counted.relus != analytic.relus() || counted.macs != analytic.macs() {
        bail!(
            "internal error: built graph counts ({} ReLUs, {} MACs) differ from the analytic counts ({}, {})",
            counted.relus,
            counted.macs,
            analytic.relus(),
            analytic.macs()
        );
    }
    models::onnx::save(&model, &a.output)?;
    let r = NetworkReport::with_pricing(&arch, &a.cost.pricing()?)?;
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            output: String,
            nodes: usize,
            seed: u64,
            #[serde(flatten)]
            network: &'a NetworkReport,
        }
        return print_json(&Out {
            output: a.output.display().to_string(),
            nodes: model.nodes.len(),
            seed: a.seed,
            network: &r,
        });
    }
    println!(
        "wrote {} ({} nodes, seed {})",
        a.output.display(),
        model.nodes.len(),
        a.seed
    );
    print!("{}", report::network_table(std::slice::from_ref(&r)));
    Ok(())
}
