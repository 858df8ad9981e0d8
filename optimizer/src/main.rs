//! `pi-opt`: design, optimize, build, count and evaluate ReLU-lean networks for private inference.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use optimizer::algorithm2;
use optimizer::arch::{base_blocks, Arch};
use optimizer::construct::{self, InitOptions, DEFAULT_RESIDUAL_SCALE};
use optimizer::cryptonas;
use optimizer::equalize::{self, Bound, Problem};
use optimizer::paper;
use optimizer::report::{self, human, NetworkReport};
use optimizer::steps;

mod cli;

use cli::CostArgs;

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
    Design(DesignArgs),
    /// Algorithm 2: the ReLU-optimized networks (Net, Net_T, Net_C, Net_R4, Net_R8, Net_R16) of one network.
    Optimize(OptimizeArgs),
    /// CryptoNAS: the widest ReLU-balanced network (pruned and shuffled) within a ReLU budget.
    Cryptonas(CryptonasArgs),
    /// Write an ONNX model (seeded He-normal weights) for a network family and ReLU-optimization steps.
    Build(BuildArgs),
    /// ReLUs, comparisons and MACs per stage of an ONNX model and its estimated PI cost from the
    /// protocol's own plan (JSON: "relus", "comparisons", "macs", "stages", "cost", "plan").
    Count(cli::count::CountArgs),
    /// List every node of an ONNX model that cannot be served privately, with what to change in
    /// the PyTorch model (exit code 1 if any).
    Check(cli::check::CheckArgs),
    /// Choose the fixed-point format (fa, fw, M, ring) from sample inputs so no ReLU input
    /// overflows and the fixed-point top-1 equals float; stores it in the model file.
    Calibrate(cli::calibrate::CalibrateArgs),
    /// Run an ONNX model on a .npy image (float or fixed point), or measure test accuracy on a data set
    /// (float, fixed point and private inference through pi-client) with --data.
    Eval(EvalArgs),
    /// Train a network (SGD, cosine schedule, optional KD/DKD from a teacher) and export it as ONNX.
    Train(pi_train::cli::TrainArgs),
    /// Stagewise ReLU criticality C_k: trains stage-only variants and prints the order for `design --order`.
    Criticality(pi_train::cli::CriticalityArgs),
    /// Plot accuracy against ReLUs and estimated PI latency for a family of trained networks (SVG).
    Plot(pi_train::cli::PlotArgs),
    /// Compare our ReLU/MAC counts with the published rows of DeepReShape's tables.
    Paper(PaperArgs),
}

/// Where the network runs: input size and classes.
#[derive(Args, Clone)]
struct DataArgs {
    /// Input size: `32` (3×32×32, CIFAR), `64` (3×64×64, TinyImageNet) or `CxHxW`.
    #[arg(long, default_value = "32", value_name = "SIZE")]
    input: String,
    /// Number of classes (100: CIFAR-100, 200: TinyImageNet).
    #[arg(long, default_value_t = 100)]
    classes: usize,
}

impl DataArgs {
    fn input(&self) -> Result<[usize; 3]> {
        parse_input(&self.input)
    }
}

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

#[derive(Args)]
struct DesignArgs {
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Family {
    /// HybReNet: widths m, αm, αβm, ... (--alpha/--beta/--gamma or --factors).
    Hrn,
    /// ResNet with doubling widths m, 2m, 4m, ... (ResNet-18: --base-channels 64 --blocks 2,2,2,2).
    Resnet,
    /// CryptoNAS ReLU-balanced: widths m, 4m, 16m, ... (constant ReLUs per layer); --budget picks m.
    Cryptonas,
    /// Explicit stage widths (--widths), stem width --base-channels.
    Custom,
}

/// Which network: family, widths, depth, data.
#[derive(Args, Clone)]
struct NetArgs {
    /// Network family.
    #[arg(long, value_enum, default_value_t = Family::Hrn)]
    family: Family,
    /// HRN: Stage-2 channel multiplication factor α (widths m, αm, αβm, αβγm).
    #[arg(long)]
    alpha: Option<usize>,
    /// HRN: Stage-3 factor β.
    #[arg(long)]
    beta: Option<usize>,
    /// HRN: Stage-4 factor γ.
    #[arg(long)]
    gamma: Option<usize>,
    /// HRN with any number of stages: all factors, e.g. `2,5,3`.
    #[arg(long, value_name = "LIST", conflicts_with_all = ["alpha", "beta", "gamma"])]
    factors: Option<String>,
    /// Custom: stage widths, e.g. `128,256,512` (WRN-22x8 with --base-channels 16 --blocks 3,3,3).
    #[arg(long, value_name = "LIST")]
    widths: Option<String>,
    /// Base channel count m: the stem's output channels (and Stage 1's width, except for custom).
    #[arg(long, default_value_t = 16, value_name = "M")]
    base_channels: usize,
    /// Stage compute ratios (blocks per stage): 2,2,2,2 for ResNet-18-based, 3,4,6,3 for ResNet-34-based.
    #[arg(long, default_value = "2,2,2,2", value_name = "LIST")]
    blocks: String,
    /// CryptoNAS: pick the widest m whose ReLUs fit this budget (overrides --base-channels).
    #[arg(long, value_name = "RELUS")]
    budget: Option<u64>,
    #[command(flatten)]
    data: DataArgs,
}

/// ReLU-optimization steps applied to the network, in this order: scale, cull, thin, reuse.
#[derive(Args, Clone)]
struct StepArgs {
    /// Channel scaling factor applied to every width (DeepReDuce; Algorithm 2 uses 0.5).
    #[arg(long, value_name = "FACTOR")]
    scale: Option<f64>,
    /// Stages whose ReLUs are all removed (ReLU culling), e.g. `S1`; S1 includes the stem ReLU.
    #[arg(long, value_name = "STAGES")]
    cull: Option<String>,
    /// Stages whose alternate ReLU layers are removed (ReLU thinning), e.g. `S2,S3,S4`: the ReLU after
    /// each block's first conv goes (and the stem ReLU for S1); the post-add ReLU stays.
    #[arg(long, value_name = "STAGES")]
    thin: Option<String>,
    /// ReLU-reuse factor N (4, 8, 16; 2 also works): on every post-add ReLU site, C/4 channels are
    /// reused, C/N activated, the rest linear, with a 1×1 conv mixing them (DeepReShape §4.2).
    #[arg(long, value_name = "N")]
    reuse: Option<usize>,
    /// Restrict ReLU-reuse to these stages (default: every stage that still has ReLUs).
    #[arg(long, value_name = "STAGES", requires = "reuse")]
    reuse_stages: Option<String>,
    /// CryptoNAS baseline: put a ReLU on every skip path (what ReLU pruning and shuffling remove).
    #[arg(long)]
    skip_relus: bool,
}

#[derive(Args)]
struct BuildArgs {
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

#[derive(Args)]
struct OptimizeArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Criticality order, most → least critical.
    #[arg(long, default_value = "S3,S2,S4,S1")]
    order: String,
    #[command(flatten)]
    cost: CostArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CryptonasArgs {
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

#[derive(Args)]
struct EvalArgs {
    /// ONNX model file.
    model: PathBuf,
    /// Input image: float32 .npy of shape [C,H,W] or [1,C,H,W], already normalised.
    #[arg(
        long,
        value_name = "X.npy",
        required_unless_present = "data",
        conflicts_with = "data"
    )]
    input: Option<PathBuf>,
    /// Run the fixed-point reference (what the private protocol computes, in the format stored by
    /// `pi-opt calibrate` or the defaults) instead of float.
    #[arg(long, conflicts_with = "data")]
    fixed: bool,
    /// Print JSON: {"logits": [...], "prediction": int} (with --data: the accuracy report).
    #[arg(long)]
    json: bool,
    /// Test accuracy on a data set instead of one image: data/digits.csv.gz, data/mnist_5k.csv.gz
    /// (scripts/fetch-data.sh), or a CIFAR-10/100 or TinyImageNet folder.
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Format of --data (detected from the path when omitted).
    #[arg(long, requires = "data")]
    dataset: Option<pi_train::data::DataKind>,
    /// Held-out fraction for sets without an official test split (digits, MNIST-5k).
    #[arg(long, default_value_t = 0.2, requires = "data")]
    test_fraction: f64,
    /// Seed of that held-out split.
    #[arg(long, default_value_t = 0, requires = "data")]
    split_seed: u64,
    /// Use only the first N test images.
    #[arg(long, requires = "data")]
    max_test: Option<usize>,
    /// Images for the fixed-point reference [default: the whole test set]; 0 skips it.
    #[arg(long, requires = "data")]
    fixed_limit: Option<usize>,
    /// Images sent through private inference (needs --private-cmd).
    #[arg(long, default_value_t = 20, requires = "data")]
    private_limit: usize,
    /// Command run per image for private inference, with {input} (.npy) and {report} (JSON) substituted,
    /// e.g. 'pi-client --quiet --connect 127.0.0.1:4433 --tls-ca ca.pem --input {input} --report {report}'.
    #[arg(long, requires = "data")]
    private_cmd: Option<String>,
}

#[derive(Args)]
struct PaperArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Design(a) => design(a),
        Command::Optimize(a) => optimize(a),
        Command::Cryptonas(a) => cryptonas_cmd(a),
        Command::Build(a) => build(a),
        Command::Count(a) => cli::count::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Calibrate(a) => cli::calibrate::run(a),
        Command::Eval(a) => eval(a),
        Command::Train(a) => pi_train::cli::run_train(a),
        Command::Criticality(a) => pi_train::cli::run_criticality(a),
        Command::Plot(a) => pi_train::cli::run_plot(a),
        Command::Paper(a) => paper_cmd(a),
    }
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn parse_list(s: &str, what: &str) -> Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split([',', 'x'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<usize>()
                .with_context(|| format!("{what}: '{p}' is not a positive integer"))
        })
        .collect::<Result<_>>()?;
    if v.is_empty() || v.contains(&0) {
        bail!("{what}: expected a comma-separated list of positive integers, got '{s}'");
    }
    Ok(v)
}

fn parse_input(s: &str) -> Result<[usize; 3]> {
    let v = parse_list(s, "--input")?;
    match v.as_slice() {
        [n] => Ok([3, *n, *n]),
        [c, h, w] => Ok([*c, *h, *w]),
        _ => bail!("--input: expected SIZE or CxHxW, got '{s}'"),
    }
}

fn to_u32(v: &[usize]) -> Result<Vec<u32>> {
    v.iter()
        .map(|&x| u32::try_from(x).context("value too large"))
        .collect()
}

fn design(a: DesignArgs) -> Result<()> {
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

fn net_arch(n: &NetArgs) -> Result<Arch> {
    let blocks = parse_list(&n.blocks, "--blocks")?;
    let input = n.data.input()?;
    let classes = n.data.classes;
    let m = n.base_channels;
    let d = blocks.len();
    let arch = match n.family {
        Family::Hrn => {
            let factors = match (&n.factors, n.alpha, n.beta, n.gamma) {
                (Some(f), _, _, _) => parse_list(f, "--factors")?,
                (None, Some(a), Some(b), Some(g)) => vec![a, b, g],
                _ => bail!("--family hrn needs --alpha, --beta and --gamma (or --factors)"),
            };
            if factors.len() + 1 != d {
                bail!(
                    "{} factors need {} stages in --blocks (got {d})",
                    factors.len(),
                    factors.len() + 1
                );
            }
            Arch::hrn(m, &factors, &blocks, input, classes)?
        }
        Family::Resnet => {
            let mut a = Arch::hrn(m, &vec![2; d.saturating_sub(1)], &blocks, input, classes)?;
            a.name = format!("ResNet[{}]", n.blocks);
            a
        }
        Family::Cryptonas => match n.budget {
            Some(b) => cryptonas::widest_within_budget(b, &blocks, input, classes)?.arch,
            None => cryptonas::balanced(m, &blocks, input, classes)?,
        },
        Family::Custom => {
            let widths = parse_list(
                n.widths
                    .as_deref()
                    .context("--family custom needs --widths")?,
                "--widths",
            )?;
            Arch::resnet(
                format!("ResNet[{}]", n.blocks),
                input,
                classes,
                m,
                &widths,
                &blocks,
            )?
        }
    };
    let hrn_args =
        n.alpha.is_some() || n.beta.is_some() || n.gamma.is_some() || n.factors.is_some();
    if hrn_args && n.family != Family::Hrn {
        bail!("--alpha/--beta/--gamma/--factors apply to --family hrn");
    }
    if n.budget.is_some() && n.family != Family::Cryptonas {
        bail!("--budget applies to --family cryptonas");
    }
    if n.widths.is_some() && n.family != Family::Custom {
        bail!("--widths applies to --family custom");
    }
    Ok(arch)
}

fn apply_steps(arch: Arch, s: &StepArgs) -> Result<Arch> {
    let d = arch.stages.len();
    let mut a = arch;
    if let Some(f) = s.scale {
        a = steps::scale_channels(&a, f)?;
    }
    if s.skip_relus {
        a = cryptonas::with_skip_relus(&a);
    }
    if let Some(c) = &s.cull {
        a = steps::cull(&a, &steps::parse_stages(c, d)?)?;
    }
    if let Some(t) = &s.thin {
        a = steps::thin(&a, &steps::parse_stages(t, d)?)?;
    }
    if let Some(n) = s.reuse {
        let st = match &s.reuse_stages {
            Some(r) => steps::parse_stages(r, d)?,
            None => steps::stages_with_relus(&a),
        };
        a = steps::reuse(&a, &st, n)?;
    }
    Ok(a)
}

fn build(a: BuildArgs) -> Result<()> {
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

fn optimize(a: OptimizeArgs) -> Result<()> {
    let arch = net_arch(&a.net)?;
    let order = equalize::parse_order(&a.order, arch.stages.len())?;
    let cost = a.cost.pricing()?;
    let culls = algorithm2::least_critical_dominates(&arch, &order)?;
    let nets = algorithm2::optimize(&arch, &order)?;
    let reports: Vec<(String, NetworkReport)> = nets
        .iter()
        .map(|c| {
            Ok((
                c.label.clone(),
                NetworkReport::with_pricing(&c.arch, &cost)?,
            ))
        })
        .collect::<Result<_>>()?;
    if a.json {
        #[derive(Serialize)]
        struct Item {
            /// Algorithm 2's name for it: Net, Net_T, Net_C, Net_R4, Net_R8, Net_R16.
            net: String,
            #[serde(flatten)]
            network: NetworkReport,
        }
        #[derive(Serialize)]
        struct Out {
            input: NetworkReport,
            least_critical_dominates: bool,
            networks: Vec<Item>,
        }
        return print_json(&Out {
            input: NetworkReport::with_pricing(&arch, &cost)?,
            least_critical_dominates: culls,
            networks: reports
                .into_iter()
                .map(|(net, network)| Item { net, network })
                .collect(),
        });
    }
    let least = order[order.len() - 1];
    println!("ReLU optimization (Algorithm 2) of {}", arch.label());
    println!(
        "  least-critical stage S{} {} (ReLUs without stem vs more-critical stages) → {}",
        least + 1,
        if culls {
            "dominates"
        } else {
            "does not dominate"
        },
        if culls { "culled" } else { "kept" }
    );
    println!("  {}\n", report::cost_line(&cost));
    let labelled: Vec<NetworkReport> = reports
        .iter()
        .map(|(l, r)| {
            let mut r = r.clone();
            r.label = format!("{l:<8} {}", r.label);
            r
        })
        .collect();
    print!("{}", report::network_table(&labelled));
    println!();
    for (l, r) in &reports {
        println!("{l:<8} {}", r.build_command);
    }
    Ok(())
}

fn cryptonas_cmd(a: CryptonasArgs) -> Result<()> {
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

fn eval(a: EvalArgs) -> Result<()> {
    if let Some(data) = a.data {
        let fixed = models::fixed::FixedConfig::default();
        return pi_train::cli::run_eval(pi_train::cli::EvalArgs {
            model: a.model,
            data: pi_train::cli::DataArgs {
                data,
                dataset: a.dataset,
                test_fraction: a.test_fraction,
                split_seed: a.split_seed,
                max_train: None,
                max_test: a.max_test,
            },
            fixed_limit: a.fixed_limit,
            private_limit: a.private_limit,
            private_cmd: a.private_cmd,
            frac_act: fixed.frac_act,
            frac_weight: fixed.frac_weight,
            json: a.json,
        });
    }
    let input = a.input.context("--input or --data is required")?;
    let imported = cli::load_model(&a.model, None)?;
    let (config, _) = cli::stored_config(&imported)?;
    let model = imported.model;
    let x = load_image(&input, model.input)?;
    let logits = if a.fixed {
        // The format stored by `pi-opt calibrate`, else the defaults (what pi-server would use).
        let plan = models::fixed::plan(&model, &config)?;
        models::fixed::infer(&model, &plan, &x)?
    } else {
        models::float::infer(&model, &x)?
    };
    let prediction = models::float::argmax(&logits).context("the model has no outputs")?;
    if a.json {
        #[derive(Serialize)]
        struct Out {
            logits: Vec<f32>,
            prediction: usize,
        }
        return print_json(&Out { logits, prediction });
    }
    println!("prediction: {prediction}");
    println!(
        "logits ({}): [{}]",
        if a.fixed { "fixed point" } else { "float" },
        logits
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn load_image(path: &std::path::Path, shape: [usize; 3]) -> Result<Vec<f32>> {
    let (dims, img) =
        models::npy::load_image(path).with_context(|| format!("reading {}", path.display()))?;
    if dims != shape {
        bail!(
            "{}: image shape {dims:?} does not match the model input {shape:?}",
            path.display()
        );
    }
    Ok(img)
}

fn paper_cmd(a: PaperArgs) -> Result<()> {
    let rows = paper::compare()?;
    if a.json {
        return print_json(&rows);
    }
    println!(
        "{:<18} {:<26} {:>8} {:>10} {:>3} {:>10} {:>12} {:>7}",
        "table", "network", "paper", "ours", "ok", "paper", "ours", "diff"
    );
    for c in &rows {
        let flops = c.row.flops_m.map_or(String::new(), |f| format!("{f:.1}M"));
        let diff = c
            .flops_diff_percent
            .map_or(String::new(), |d| format!("{d:+.2}%"));
        println!(
            "{:<18} {:<26} {:>7}K {:>10} {:>3} {:>10} {:>11.2}M {:>7}",
            c.row.table,
            c.row.network,
            c.row.relus_k,
            c.relus,
            if c.relus_match { "=" } else { "≠" },
            flops,
            c.macs as f64 / 1e6,
            diff
        );
    }
    println!("\nknown deviations:");
    for c in rows.iter().filter(|c| c.row.known_deviation.is_some()) {
        println!(
            "  T{} {}: {}",
            c.row.table,
            c.row.network,
            c.row.known_deviation.unwrap_or_default()
        );
    }
    println!("  ReLU-reuse rows (Re2): {}", paper::REUSE_FLOPS_NOTE);
    Ok(())
}
