//! `pi-opt count`: ReLUs, comparisons and MACs per stage and the estimated PI cost.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use optimizer::cost::Pricing;
use serde::Serialize;

use super::{load_model, stored_config, CostArgs};

/// Arguments of `pi-opt count`.
#[derive(Args)]
pub struct CountArgs {
    /// ONNX model file.
    pub model: PathBuf,
    /// The graph output to serve (default: the first).
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    #[command(flatten)]
    pub cost: CostArgs,
    /// Print JSON: {"model", "relus", "comparisons", "macs", "stages": [{"stage", "relus",
    /// "comparisons", "macs", "relu_share"}], "cost", "plan" (the planned estimate's parts and
    /// per-layer HE counts; absent with flat constants)}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Stage {
    stage: String,
    relus: u64,
    comparisons: u64,
    macs: u64,
    relu_share: f64,
}

/// Runs `pi-opt count`.
pub fn run(a: CountArgs) -> Result<()> {
    let imported = load_model(&a.model, a.output.as_deref())?;
    let (config, _) = stored_config(&imported)?;
    let model = &imported.model;
    let c = models::count::count(model)?;
    let pricing = a.cost.pricing()?;
    let (cost, plan) = match &pricing {
        Pricing::Flat(f) => (f.estimate(c.relus, c.macs), None),
        Pricing::Planned(t) => {
            let p = t.estimate_model(model, &config)?;
            (p.pi_cost(), Some(p))
        }
    };
    let stages: Vec<Stage> = c
        .stages
        .iter()
        .map(|s| Stage {
            stage: s.stage.to_string(),
            relus: s.relus,
            comparisons: s.comparisons,
            macs: s.macs,
            relu_share: if c.relus == 0 {
                0.0
            } else {
                s.relus as f64 / c.relus as f64
            },
        })
        .collect();
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            model: String,
            relus: u64,
            comparisons: u64,
            macs: u64,
            stages: Vec<Stage>,
            cost: optimizer::PiCost,
            plan: Option<&'a optimizer::PlannedCost>,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Out {
                model: model.name.clone(),
                relus: c.relus,
                comparisons: c.comparisons,
                macs: c.macs,
                stages,
                cost,
                plan: plan.as_ref(),
            })?
        );
        return Ok(());
    }
    println!("{}: {}", a.model.display(), model.name);
    println!(
        "{:<8} {:>12} {:>7} {:>12} {:>16}",
        "stage", "ReLUs", "share", "comparisons", "MACs"
    );
    for s in &stages {
        println!(
            "{:<8} {:>12} {:>6.1}% {:>12} {:>16}",
            s.stage,
            s.relus,
            s.relu_share * 100.0,
            s.comparisons,
            s.macs
        );
    }
    println!(
        "{:<8} {:>12} {:>7} {:>12} {:>16}",
        "total", c.relus, "", c.comparisons, c.macs
    );
    match &plan {
        Some(p) => println!(
            "est. PI {:.2} s = HE {:.2} s ({} layers, {:.1} MB, {} kernels transformed per session) + GC {:.2} s ({} circuits, {:.1}M AND gates) + online linear {:.2} s + spill {:.2} s; {:.1} CPU s  [{}; {}]",
            p.total_seconds,
            p.he_seconds,
            p.profile.he_layers.len(),
            p.profile.he_bytes() as f64 / 1e6,
            p.profile.uncached_kernels(),
            p.gc_seconds,
            p.profile.circuits,
            p.profile.and_gates as f64 / 1e6,
            p.online_linear_seconds,
            p.spill_seconds,
            p.cpu_seconds,
            config.to_metadata(),
            p.timing.host.source
        ),
        None => println!(
            "est. PI {:.2} s = GC {:.2} s ({} µs/ReLU) + HE {:.2} s ({} ns/MAC)",
            cost.total_seconds, cost.gc_seconds, cost.us_per_relu, cost.he_seconds, cost.ns_per_mac
        ),
    }
    if let Some(p) = plan
        .as_ref()
        .filter(|p| p.estimate.cold_memory_seconds > 0.0)
    {
        println!(
            "this host's hypervisor reclaims free memory (virtio balloon free page reporting): \
             where the client's {:.2} GB of garbled material lands on reclaimed memory, up to \
             +{:.1} s (docs/zoo.md, \"Memory the host has reclaimed\")",
            p.profile.gc_stored_bytes.min(p.timing.gc_memory_bytes) as f64 / 1e9,
            p.estimate.cold_memory_seconds
        );
    }
    Ok(())
}
