//! What `pi-opt` prints: serializable reports of networks and their text rendering.

use serde::Serialize;

use crate::arch::Arch;
use crate::cost::{CostModel, PiCost, Pricing};
use crate::error::OptError;

/// ReLUs and MACs of one stage in the paper's convention (Stage 1 includes the stem).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageReport {
    /// `S1`, `S2`, ...
    pub stage: String,
    /// ReLUs of the stage.
    pub relus: u64,
    /// The stage's share of all ReLUs (0 when the network has none).
    pub relu_share: f64,
    /// MACs of the stage (Stage 1 includes the stem).
    pub macs: u64,
}

/// A network with its counts, estimated cost and the command that builds it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkReport {
    /// Family name (`HRN-2x5x3x`).
    pub name: String,
    /// Name, base width and steps (`HRN-2x5x3x(m=8) cull S1, thin S2+S3+S4`).
    pub label: String,
    /// Applied ReLU-optimization steps.
    pub steps: Vec<String>,
    /// Base channel count m (stem width).
    pub base_channels: usize,
    /// Stage widths.
    pub widths: Vec<usize>,
    /// Blocks per stage.
    pub blocks: Vec<usize>,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Number of classes.
    pub classes: usize,
    /// Total ReLUs.
    pub relus: u64,
    /// Total MACs.
    pub macs: u64,
    /// Per stage, Stage 1 with the stem.
    pub stages: Vec<StageReport>,
    /// MACs of the classifier head.
    pub head_macs: u64,
    /// Estimated PI cost.
    pub cost: PiCost,
    /// A `pi-opt build` command line that writes this network.
    pub build_command: String,
}

impl NetworkReport {
    /// Counts `arch` and prices it with flat constants `cost`.
    pub fn new(arch: &Arch, cost: &CostModel) -> Result<NetworkReport, OptError> {
        Self::with_pricing(arch, &Pricing::Flat(*cost))
    }

    /// Counts `arch` and prices it with `pricing` (planned: the network is built and compiled as
    /// the protocol would).
    pub fn with_pricing(arch: &Arch, pricing: &Pricing) -> Result<NetworkReport, OptError> {
        let c = arch.count()?;
        let relus = c.relus();
        let stage_relus = c.paper_stage_relus();
        let stages = stage_relus
            .iter()
            .enumerate()
            .map(|(i, &r)| StageReport {
                stage: format!("S{}", i + 1),
                relus: r,
                relu_share: if relus == 0 {
                    0.0
                } else {
                    r as f64 / relus as f64
                },
                macs: c.stages[i].macs + if i == 0 { c.stem.macs } else { 0 },
            })
            .collect();
        Ok(NetworkReport {
            name: arch.name.clone(),
            label: arch.label(),
            steps: arch.steps.clone(),
            base_channels: arch.stem_channels,
            widths: arch.widths(),
            blocks: arch.blocks(),
            input: arch.input,
            classes: arch.classes,
            relus,
            macs: c.macs(),
            stages,
            head_macs: c.head.macs,
            cost: match pricing {
                Pricing::Flat(f) => f.estimate(relus, c.macs()),
                Pricing::Planned(_) => {
                    let model = crate::construct::build_structure(arch)?;
                    pricing.price_model(&model, relus, c.macs())?
                }
            },
            build_command: build_command(arch),
        })
    }
}

fn join(v: &[usize]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// A `pi-opt build` command line reproducing `arch` (family, widths, steps), output `model.onnx`.
pub fn build_command(arch: &Arch) -> String {
    let widths = arch.widths();
    let mut cmd = String::from("pi-opt build");
    let factors: Option<Vec<usize>> = if widths.first() == Some(&arch.stem_channels) {
        widths
            .windows(2)
            .map(|p| (p[1] % p[0] == 0).then(|| p[1] / p[0]))
            .collect()
    } else {
        None
    };
    match factors {
        Some(f) if f.len() == 3 => {
            cmd += &format!(
                " --family hrn --alpha {} --beta {} --gamma {}",
                f[0], f[1], f[2]
            );
        }
        Some(f) if !f.is_empty() => cmd += &format!(" --family hrn --factors {}", join(&f)),
        _ => cmd += &format!(" --family custom --widths {}", join(&widths)),
    }
    cmd += &format!(
        " --base-channels {} --blocks {}",
        arch.stem_channels,
        join(&arch.blocks())
    );
    cmd += &format!(" --classes {}", arch.classes);
    let [c, h, w] = arch.input;
    if c == 3 && h == w {
        cmd += &format!(" --input {h}");
    } else {
        cmd += &format!(" --input {c}x{h}x{w}");
    }
    let names = |pred: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..arch.stages.len())
            .filter(|&i| pred(i))
            .map(|i| format!("S{}", i + 1))
            .collect()
    };
    let culled = names(&|i| !arch.stages[i].relu1 && !arch.stages[i].relu2);
    let thinned = names(&|i| !arch.stages[i].relu1 && arch.stages[i].relu2);
    if !culled.is_empty() {
        cmd += &format!(" --cull {}", culled.join(","));
    }
    if !thinned.is_empty() {
        cmd += &format!(" --thin {}", thinned.join(","));
    }
    let reuse: Vec<(usize, usize)> = arch
        .stages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.reuse.map(|n| (i, n)))
        .collect();
    if let Some(&(_, n)) = reuse.first() {
        cmd += &format!(" --reuse {n}");
        let with_relus = (0..arch.stages.len())
            .filter(|&i| arch.stages[i].relu2)
            .count();
        if reuse.len() != with_relus {
            let st: Vec<String> = reuse.iter().map(|(i, _)| format!("S{}", i + 1)).collect();
            cmd += &format!(" --reuse-stages {}", st.join(","));
        }
    }
    if arch
        .stages
        .iter()
        .any(|s| s.projection_skip_relu || s.identity_skip_relu)
    {
        cmd += " --skip-relus";
    }
    cmd + " -o model.onnx"
}

/// `26.1K` / `1.39M` style for counts.
pub fn human(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}K", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

/// A fixed-width text table of networks: stagewise ReLUs (with shares), ReLUs, MACs, cost.
pub fn network_table(reports: &[NetworkReport]) -> String {
    let stages = reports.iter().map(|r| r.stages.len()).max().unwrap_or(0);
    let name_w = reports
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = format!("{:<name_w$}  {:<20}", "network", "widths");
    for s in 0..stages {
        out += &format!("  {:>14}", format!("S{}", s + 1));
    }
    out += &format!("  {:>9}  {:>9}  {:>9}\n", "ReLUs", "MACs", "est. PI");
    for r in reports {
        out += &format!("{:<name_w$}  {:<20}", r.label, join(&r.widths));
        for s in 0..stages {
            let cell = r.stages.get(s).map_or(String::new(), |st| {
                format!("{} {:>4.1}%", human(st.relus), st.relu_share * 100.0)
            });
            out += &format!("  {cell:>14}");
        }
        out += &format!(
            "  {:>9}  {:>9}  {:>8.2}s\n",
            human(r.relus),
            human(r.macs),
            r.cost.total_seconds
        );
    }
    out
}

/// One line describing the cost constants in use.
pub fn cost_line(pricing: &Pricing) -> String {
    pricing.describe()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps;

    #[test]
    fn build_command_round_trips_steps() {
        let a = Arch::hrn(8, &[2, 5, 3], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        let a = steps::thin(&steps::cull(&a, &[0]).unwrap(), &[1, 2, 3]).unwrap();
        assert_eq!(
            build_command(&a),
            "pi-opt build --family hrn --alpha 2 --beta 5 --gamma 3 --base-channels 8 --blocks 2,2,2,2 \
             --classes 100 --input 32 --cull S1 --thin S2,S3,S4 -o model.onnx"
        );
        let r = NetworkReport::new(&a, &CostModel::default()).unwrap();
        assert_eq!(r.relus, 26_112);
        assert_eq!(r.stages[0].relus, 0);
        assert!((r.stages.iter().map(|s| s.relu_share).sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(
            r.stages.iter().map(|s| s.macs).sum::<u64>() + r.head_macs,
            r.macs
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(human(999), "999");
        assert_eq!(human(26_112), "26.1K");
        assert_eq!(human(44_535_232), "44.5M");
    }
}
