//! The network a subcommand builds or optimizes (`--family`, widths, blocks) and the
//! ReLU-optimization steps applied to it (shared by `pi-opt build` and `pi-opt optimize`).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use optimizer::arch::Arch;
use optimizer::{cryptonas, steps};

use super::{parse_list, DataArgs};

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
pub struct NetArgs {
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
pub struct StepArgs {
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

/// The network `n` names.
pub fn net_arch(n: &NetArgs) -> Result<Arch> {
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

/// `arch` with the steps `s` applied.
pub fn apply_steps(arch: Arch, s: &StepArgs) -> Result<Arch> {
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
