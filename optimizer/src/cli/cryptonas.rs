//! `pi-opt cryptonas`: the widest ReLU-balanced network within a ReLU budget.

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use optimizer::cryptonas;
use optimizer::report::{self, human, NetworkReport};

use super::{parse_list, print_json, CostArgs, DataArgs};

/// Arguments of `pi-opt cryptonas`.
#[derive(Args)]
pub struct CryptonasArgs {
    /// ReLU budget.
    #[arg(long, required_unless_present = "latency")]
    budget: Option<u64>,
    /// Derive the ReLU budget from a latency target in seconds (÷ --us-per-relu).
    #[arg(long, value_name = "SECONDS", conflicts_with = "budget")]
    latency: Option<f64>,
    /// Stage compute ratios (blocks per stage).
    #[arg(long, default_value = "2,2,2,2", value_name = "LIST")]
    blocks: String,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    cost: CostArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `pi-opt cryptonas`.
pub fn run(a: CryptonasArgs) -> Result<()> {
    let cost = a.cost.pricing()?;
    let budget = match (a.budget, a.latency) {
        (Some(b), _) => b,
        (None, Some(s)) => cryptonas::budget_from_latency(s, cost.us_per_relu() * 1e-6)?,
        (None, None) => bail!("give --budget or --latency"),
    };
    let blocks = parse_list(&a.blocks, "--blocks")?;
    let fit = cryptonas::widest_within_budget(budget, &blocks, a.data.input()?, a.data.classes)?;
    let r = NetworkReport::with_pricing(&fit.arch, &cost)?;
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            budget: u64,
            relus_with_skip_relus: u64,
            relus_after_pruning: u64,
            relus_after_shuffling: u64,
            network: &'a NetworkReport,
        }
        return print_json(&Out {
            budget,
            relus_with_skip_relus: fit.relus_unpruned,
            relus_after_pruning: fit.relus_pruned,
            relus_after_shuffling: fit.relus,
            network: &r,
        });
    }
    println!(
        "CryptoNAS: ReLU budget {budget} ({}), blocks {}",
        human(budget),
        a.blocks
    );
    println!(
        "  widest ReLU-balanced network: m = {} (next width would exceed the budget)",
        fit.arch.stem_channels
    );
    println!(
        "  ReLUs: {} with skip-path ReLUs → {} after pruning (reshape paths) → {} after shuffling (identity skips)",
        fit.relus_unpruned, fit.relus_pruned, fit.relus
    );
    println!("  {}\n", report::cost_line(&cost));
    print!("{}", report::network_table(std::slice::from_ref(&r)));
    let [c, h, w] = fit.arch.input;
    println!(
        "\npi-opt build --family cryptonas --budget {budget} --blocks {} --classes {} --input {c}x{h}x{w} -o model.onnx",
        a.blocks, a.data.classes
    );
    Ok(())
}
