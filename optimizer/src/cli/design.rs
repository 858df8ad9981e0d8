//! `pi-opt design`: Algorithm 1 (ReLU equalization → HybReNets) and the capacity–criticality step.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use optimizer::arch::{base_blocks, Arch};
use optimizer::equalize::{self, Bound, Problem};
use optimizer::report::{self, NetworkReport};

use super::{parse_list, print_json, to_u32, CostArgs, DataArgs};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Vary {
    /// Width factors α, β, γ, ... (the paper's HybReNets); compute ratios fixed.
    Width,
    /// Stage compute ratios φ (Appendix D); width factors fixed by --factors.
    Depth,
    /// Both.
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Select {
    /// Every Pareto-minimal design, each with the smallest α for its other factors (the paper's
    /// ResNet-18 list: HRN-5x5x3x, 5x7x2x, 6x6x2x, 7x5x2x).
    Pareto,
    /// Only the designs with the globally smallest α (the paper's ResNet-34 pick: HRN-4x6x3x, 4x9x2x).
    SmallestAlpha,
}

/// Arguments of `pi-opt design`.
#[derive(Args)]
pub struct DesignArgs {
    /// Base network: resnet18 (compute ratios 2,2,2,2) or resnet34 (3,4,6,3).
    #[arg(long, default_value = "resnet18")]
    base: String,
    /// Override the base's stage compute ratios, e.g. `3,4,6,3` (any number of stages).
    #[arg(long, value_name = "LIST")]
    blocks: Option<String>,
    /// Criticality order, most → least critical, e.g. `S3,S2,S4,S1` (ResNet-18 on CIFAR-100, Table 10).
    #[arg(long, default_value = "S3,S2,S4,S1")]
    order: String,
    /// Which hyper-parameters ReLU equalization may change.
    #[arg(long, value_enum, default_value_t = Vary::Width)]
    vary: Vary,
    /// Which equalized designs to list.
    #[arg(long, value_enum, default_value_t = Select::Pareto)]
    select: Select,
    /// Smallest width factor searched (the paper: α, β, γ ≥ 2).
    #[arg(long, default_value_t = 2)]
    min_factor: u32,
    /// Largest width factor searched.
    #[arg(long, default_value_t = 16)]
    max_factor: u32,
    /// Largest last-stage factor (the paper's γ < 4 FLOPs rule; set to --max-factor to lift it).
    #[arg(long, default_value_t = 3)]
    max_last_factor: u32,
    /// Width factors when only depth varies (default: 2 for every stage, as in Appendix D).
    #[arg(long, value_name = "LIST")]
    factors: Option<String>,
    /// Largest stage compute ratio searched when depth varies.
    #[arg(long, default_value_t = 8)]
    max_depth: u32,
    /// Count the stem's ReLUs in Stage 1 when ordering (the paper does not).
    #[arg(long)]
    count_stem: bool,
    /// α of the capacity–criticality variants (the paper: 2).
    #[arg(long, default_value_t = 2)]
    cc_alpha: u32,
    /// Base channel count m used to print ReLUs and MACs.
    #[arg(long, default_value_t = 16)]
    base_channels: usize,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    cost: CostArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `pi-opt design`.
pub fn run(a: DesignArgs) -> Result<()> {
    let blocks = match &a.blocks {
        Some(b) => parse_list(b, "--blocks")?,
        None => base_blocks(&a.base)
            .with_context(|| format!("unknown base '{}' (resnet18, resnet34)", a.base))?,
    };
    let d = blocks.len();
    let order = equalize::parse_order(&a.order, d)?;
    let phi = to_u32(&blocks)?;
    let mut problem = Problem::widths(&phi, &order, a.min_factor, a.max_factor, a.max_last_factor);
    problem.count_stem = a.count_stem;
    if a.vary != Vary::Width {
        for b in &mut problem.compute_ratios {
            *b = Bound::range(1, a.max_depth);
        }
    }
    if a.vary == Vary::Depth {
        let f = match &a.factors {
            Some(f) => to_u32(&parse_list(f, "--factors")?)?,
            None => vec![a.min_factor; d - 1],
        };
        if f.len() != d - 1 {
            bail!("--factors needs {} values for {d} stages", d - 1);
        }
        problem.factors = f.into_iter().map(Bound::fixed).collect();
    }
    let mut designs = problem.solve()?;
    if a.select == Select::SmallestAlpha {
        designs = equalize::smallest_alpha(&designs);
    }
    let cc = if a.vary == Vary::Depth {
        Vec::new()
    } else {
        equalize::capacity_criticality(&designs, a.cc_alpha)
    };
    let cost = a.cost.pricing()?;
    let input = a.data.input()?;
    let with_depth = a.vary != Vary::Width;
    let to_report = |ds: &[equalize::Design]| -> Result<Vec<NetworkReport>> {
        ds.iter()
            .map(|dz| {
                let f: Vec<usize> = dz.factors.iter().map(|&x| x as usize).collect();
                let b: Vec<usize> = dz.compute_ratios.iter().map(|&x| x as usize).collect();
                let mut arch = Arch::hrn(a.base_channels, &f, &b, input, a.data.classes)?;
                arch.name = dz.name(with_depth);
                Ok(NetworkReport::with_pricing(&arch, &cost)?)
            })
            .collect()
    };
    let equalized = to_report(&designs)?;
    let capacity = to_report(&cc)?;
    let order_text = order
        .iter()
        .map(|i| format!("S{}", i + 1))
        .collect::<Vec<_>>()
        .join(" > ");
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            base: &'a str,
            compute_ratios: &'a [usize],
            order: String,
            inequality: String,
            count_stem: bool,
            equalized: Vec<NetworkReport>,
            capacity_criticality: Vec<NetworkReport>,
        }
        return print_json(&Out {
            base: &a.base,
            compute_ratios: &blocks,
            order: order_text,
            inequality: problem.inequality(),
            count_stem: a.count_stem,
            equalized,
            capacity_criticality: capacity,
        });
    }
    println!(
        "ReLU equalization (Algorithm 1): base {} (φ = {}), criticality {}",
        a.base,
        blocks
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(","),
        order_text
    );
    println!(
        "  {}   (stem {} Stage 1)",
        problem.inequality(),
        if a.count_stem {
            "counted in"
        } else {
            "not counted in"
        }
    );
    println!(
        "  counts at m={}, input {}x{}x{}, {} classes; {}\n",
        a.base_channels,
        input[0],
        input[1],
        input[2],
        a.data.classes,
        report::cost_line(&cost)
    );
    if equalized.is_empty() {
        println!(
            "no design equalizes within the bounds (try --max-factor / --max-last-factor / --vary)"
        );
        return Ok(());
    }
    println!("ReLU-equalized networks (smallest α for each (β, γ, …); Pareto-minimal):");
    print!("{}", report::network_table(&equalized));
    let smallest = equalize::smallest_alpha(&designs);
    if smallest.len() < designs.len() {
        let names: Vec<String> = smallest.iter().map(|d| d.name(with_depth)).collect();
        println!(
            "  smallest α only (--select smallest-alpha; the paper's ResNet-34 pick): {}",
            names.join(", ")
        );
    }
    if !capacity.is_empty() {
        println!(
            "\nCapacity–criticality step (α = {}: larger share of least-critical Stage-1 ReLUs):",
            a.cc_alpha
        );
        print!("{}", report::network_table(&capacity));
    }
    Ok(())
}
