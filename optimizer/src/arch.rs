//! Architecture descriptions of ResNet-style networks and their analytic ReLU/MAC counts.
//!
//! An [`Arch`] is what the design algorithms manipulate: a CIFAR-style ResNet (3×3 stride-1 stem conv,
//! no max-pool; stages of basic blocks `conv3×3 → ReLU₁ → conv3×3 (+ shortcut) → ReLU₂`; the first
//! block of every stage after the first has stride 2; a 1×1 projection shortcut whenever the shape
//! changes; global average pool and a linear head). Every ReLU site can be removed (culling,
//! thinning), the post-add ReLU can be a ReLU-reuse site (DeepReShape §4.2), and shortcut paths can
//! carry their own ReLUs (the redundant ones CryptoNAS prunes and shuffles away).
//!
//! [`Arch::count`] is the analytic count; `construct` builds the same network as a `models::Model`,
//! and the two must agree with `models::count`.

use serde::Serialize;

use crate::error::OptError;

/// One residual stage: `blocks` basic blocks of `channels` channels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageArch {
    /// Output channels of every convolution in the stage.
    pub channels: usize,
    /// Number of basic blocks (the stage compute ratio φ).
    pub blocks: usize,
    /// Stride of the first block (1 for the first stage, 2 for the others).
    pub stride: usize,
    /// Whether the ReLU after each block's first convolution is kept (false: thinned or culled).
    pub relu1: bool,
    /// Whether the ReLU after each block's residual add is kept (false: culled).
    pub relu2: bool,
    /// ReLU-reuse factor N on the post-add ReLU sites (`None`: ordinary ReLU over all channels).
    pub reuse: Option<usize>,
    /// CryptoNAS baseline: a ReLU on every projection (reshape) shortcut path, before the 1×1 conv.
    pub projection_skip_relu: bool,
    /// CryptoNAS baseline: a ReLU on every identity skip path (skip based on pre-ReLU activations).
    pub identity_skip_relu: bool,
}

impl StageArch {
    /// A plain stage: all ReLUs present, no reuse, no skip ReLUs.
    pub fn plain(channels: usize, blocks: usize, stride: usize) -> Self {
        StageArch {
            channels,
            blocks,
            stride,
            relu1: true,
            relu2: true,
            reuse: None,
            projection_skip_relu: false,
            identity_skip_relu: false,
        }
    }
}

/// A whole ResNet-style network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Arch {
    /// Family name, e.g. `HRN-2x5x3x`.
    pub name: String,
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Number of classes (outputs of the linear head).
    pub classes: usize,
    /// Output channels of the stem convolution (the base channel count m).
    pub stem_channels: usize,
    /// Whether the stem ReLU is kept (it belongs to Stage 1 for culling and thinning).
    pub stem_relu: bool,
    /// The residual stages, in order.
    pub stages: Vec<StageArch>,
    /// The ReLU-optimization steps applied so far, in order (`cull S1`, `thin S2+S3+S4`, ...).
    pub steps: Vec<String>,
}

/// The three channel groups of a ReLU-reuse layer (DeepReShape §4.2, Figure 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReuseGroups {
    /// Channels passed through unchanged (feature reuse): ⌊C/4⌋.
    pub reused: usize,
    /// Channels convolved without activation: C − ⌊C/4⌋ − ⌊C/N⌋.
    pub linear: usize,
    /// Channels convolved and then activated by a ReLU: ⌊C/N⌋ (the last group).
    pub activated: usize,
}

impl ReuseGroups {
    /// Splits `channels` for reuse factor `n`; every group must be non-empty.
    pub fn new(channels: usize, n: usize) -> Result<Self, OptError> {
        if n < 2 {
            return Err(OptError::InvalidArch(format!(
                "ReLU-reuse factor must be at least 2 (got {n})"
            )));
        }
        let reused = channels / 4;
        let activated = channels / n;
        if reused == 0 || activated == 0 || reused + activated >= channels {
            return Err(OptError::InvalidArch(format!(
                "ReLU-reuse factor {n} needs at least {} channels per layer (got {channels})",
                4 * n.max(4)
            )));
        }
        Ok(ReuseGroups {
            reused,
            linear: channels - reused - activated,
            activated,
        })
    }
}

/// ReLUs and MACs of one part of the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// ReLU evaluations.
    pub relus: u64,
    /// Multiply-accumulates of convolutions and linear layers.
    pub macs: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.relus += o.relus;
        self.macs += o.macs;
    }
}

/// Analytic counts of an [`Arch`], split like `models::count` (stem, stages, head).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArchCount {
    /// The stem convolution and its ReLU.
    pub stem: Tally,
    /// Each residual stage, in order.
    pub stages: Vec<Tally>,
    /// Pooling and the linear classifier.
    pub head: Tally,
}

impl ArchCount {
    /// Total ReLUs.
    pub fn relus(&self) -> u64 {
        self.stem.relus + self.stages.iter().map(|s| s.relus).sum::<u64>() + self.head.relus
    }

    /// Total MACs.
    pub fn macs(&self) -> u64 {
        self.stem.macs + self.stages.iter().map(|s| s.macs).sum::<u64>() + self.head.macs
    }

    /// Stagewise ReLUs as the paper's tables give them: Stage 1 includes the stem.
    pub fn paper_stage_relus(&self) -> Vec<u64> {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == 0 {
                    s.relus + self.stem.relus
                } else {
                    s.relus
                }
            })
            .collect()
    }

    /// Stagewise MACs with the stem in Stage 1 and the head in the last stage.
    pub fn paper_stage_macs(&self) -> Vec<u64> {
        let last = self.stages.len().saturating_sub(1);
        self.stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.macs
                    + if i == 0 { self.stem.macs } else { 0 }
                    + if i == last { self.head.macs } else { 0 }
            })
            .collect()
    }
}

/// Output size of a convolution along one axis.
pub(crate) fn conv_out(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (size + 2 * pad).saturating_sub(kernel) / stride + 1
}

impl Arch {
    /// A ResNet-style network with explicit stage widths, all ReLUs present.
    pub fn resnet(
        name: impl Into<String>,
        input: [usize; 3],
        classes: usize,
        stem_channels: usize,
        widths: &[usize],
        blocks: &[usize],
    ) -> Result<Arch, OptError> {
        if widths.len() != blocks.len() || widths.is_empty() {
            return Err(OptError::InvalidArch(format!(
                "need one width per stage ({} widths, {} block counts)",
                widths.len(),
                blocks.len()
            )));
        }
        let stages = widths
            .iter()
            .zip(blocks)
            .enumerate()
            .map(|(i, (&c, &b))| StageArch::plain(c, b, if i == 0 { 1 } else { 2 }))
            .collect();
        let arch = Arch {
            name: name.into(),
            input,
            classes,
            stem_channels,
            stem_relu: true,
            stages,
            steps: Vec::new(),
        };
        arch.validate()?;
        Ok(arch)
    }

    /// A HybReNet (or any base-m ResNet): stage widths m, αm, αβm, ... from the stagewise channel
    /// multiplication factors; the stem has m channels. `HRN-αxβxγx` for four stages.
    pub fn hrn(
        m: usize,
        factors: &[usize],
        blocks: &[usize],
        input: [usize; 3],
        classes: usize,
    ) -> Result<Arch, OptError> {
        if factors.len() + 1 != blocks.len() {
            return Err(OptError::InvalidArch(format!(
                "{} stages need {} channel multiplication factors (got {})",
                blocks.len(),
                blocks.len().saturating_sub(1),
                factors.len()
            )));
        }
        let mut widths = vec![m];
        for &f in factors {
            let last = *widths.last().unwrap_or(&m);
            widths.push(last * f);
        }
        Arch::resnet(hrn_name(factors), input, classes, m, &widths, blocks)
    }

    /// Checks that every dimension is positive and every reuse site can be split.
    pub fn validate(&self) -> Result<(), OptError> {
        if self.input.contains(&0) || self.classes == 0 || self.stem_channels == 0 {
            return Err(OptError::InvalidArch(
                "input, classes and stem channels must be positive".into(),
            ));
        }
        if self.stages.is_empty() {
            return Err(OptError::InvalidArch(
                "a network needs at least one stage".into(),
            ));
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.channels == 0 || s.blocks == 0 || s.stride == 0 {
                return Err(OptError::InvalidArch(format!(
                    "stage {} needs positive channels, blocks and stride",
                    i + 1
                )));
            }
            if let Some(n) = s.reuse {
                if !s.relu2 {
                    return Err(OptError::InvalidArch(format!(
                        "stage {} has ReLU-reuse but no post-add ReLUs (culled)",
                        i + 1
                    )));
                }
                ReuseGroups::new(s.channels, n)?;
            }
        }
        let (_, h, w) = self.spatial_after_stages();
        if h == 0 || w == 0 {
            return Err(OptError::InvalidArch(
                "the input is too small for this many stride-2 stages".into(),
            ));
        }
        Ok(())
    }

    /// Channels and spatial size after the last stage.
    fn spatial_after_stages(&self) -> (usize, usize, usize) {
        let (mut h, mut w) = (self.input[1], self.input[2]);
        let mut c = self.stem_channels;
        for s in &self.stages {
            h = conv_out(h, 3, s.stride, 1);
            w = conv_out(w, 3, s.stride, 1);
            c = s.channels;
        }
        (c, h, w)
    }

    /// Stage widths, in order.
    pub fn widths(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.channels).collect()
    }

    /// Blocks per stage (stage compute ratios).
    pub fn blocks(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.blocks).collect()
    }

    /// The name with the base channel count and the applied steps, e.g.
    /// `HRN-2x5x3x(m=8) cull S1, thin S2+S3+S4`.
    pub fn label(&self) -> String {
        let mut s = format!("{}(m={})", self.name, self.stem_channels);
        if !self.steps.is_empty() {
            s.push(' ');
            s.push_str(&self.steps.join(", "));
        }
        s
    }

    /// Analytic ReLU and MAC counts (MACs: conv `c_out·h·w·c_in/groups·k²` plus linear `in·out`).
    pub fn count(&self) -> Result<ArchCount, OptError> {
        self.validate()?;
        let [c_img, mut h, mut w] = self.input;
        let m = self.stem_channels;
        let hw = (h * w) as u64;
        let stem = Tally {
            macs: 9 * (c_img * m) as u64 * hw,
            relus: if self.stem_relu { m as u64 * hw } else { 0 },
        };
        let mut c_in = m;
        let mut stages = Vec::with_capacity(self.stages.len());
        for s in &self.stages {
            let mut t = Tally::default();
            let c = s.channels as u64;
            for b in 0..s.blocks {
                let stride = if b == 0 { s.stride } else { 1 };
                let (h_in, w_in) = (h, w);
                h = conv_out(h, 3, stride, 1);
                w = conv_out(w, 3, stride, 1);
                let out = (h * w) as u64;
                let ci = c_in as u64;
                t.macs += 9 * ci * c * out; // conv1
                if s.relu1 {
                    t.relus += c * out;
                }
                match s.reuse {
                    Some(n) => {
                        let g = ReuseGroups::new(s.channels, n)?;
                        let (l, a) = (g.linear as u64, g.activated as u64);
                        t.macs += 9 * (l * l + a * a) * out + c * c * out; // group convs + 1×1 mixing
                        if s.relu2 {
                            t.relus += a * out;
                        }
                    }
                    None => {
                        t.macs += 9 * c * c * out; // conv2
                        if s.relu2 {
                            t.relus += c * out;
                        }
                    }
                }
                let projection = stride != 1 || c_in != s.channels;
                if projection {
                    t.macs += ci * c * out;
                    if s.projection_skip_relu {
                        t.relus += ci * (h_in * w_in) as u64;
                    }
                } else if s.identity_skip_relu {
                    t.relus += c * out;
                }
                c_in = s.channels;
            }
            stages.push(t);
        }
        let head = Tally {
            relus: 0,
            macs: (c_in * self.classes) as u64,
        };
        Ok(ArchCount { stem, stages, head })
    }

    /// Stagewise ReLUs of the full network (all ReLUs on) excluding the stem, the quantity
    /// Algorithm 1 orders (`φ_k · Π λ_j / 4^(k−1)` up to a common factor).
    pub fn stage_relus_without_stem(&self) -> Result<Vec<u64>, OptError> {
        Ok(self.count()?.stages.iter().map(|t| t.relus).collect())
    }
}

/// `HRN-5x5x3x` for factors [5, 5, 3].
pub fn hrn_name(factors: &[usize]) -> String {
    let mut s = String::from("HRN-");
    for f in factors {
        s.push_str(&format!("{f}x"));
    }
    s
}

/// The stage compute ratios of a named base network (`resnet18`: 2,2,2,2; `resnet34`: 3,4,6,3).
pub fn base_blocks(base: &str) -> Option<Vec<usize>> {
    match base.to_ascii_lowercase().as_str() {
        "resnet18" | "r18" => Some(vec![2, 2, 2, 2]),
        "resnet34" | "r34" => Some(vec![3, 4, 6, 3]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet18_cifar_counts() {
        let a = Arch::hrn(64, &[2, 2, 2], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        let c = a.count().unwrap();
        assert_eq!(c.relus(), 557_056);
        assert_eq!(c.macs(), 555_468_800);
        assert_eq!(
            c.paper_stage_relus(),
            vec![327_680, 131_072, 65_536, 32_768]
        );
    }

    #[test]
    fn reuse_groups_split() {
        let g = ReuseGroups::new(480, 16).unwrap();
        assert_eq!((g.reused, g.linear, g.activated), (120, 330, 30));
        assert!(ReuseGroups::new(8, 16).is_err());
        assert!(ReuseGroups::new(32, 1).is_err());
    }

    #[test]
    fn odd_sizes_use_conv_arithmetic() {
        let a = Arch::hrn(4, &[2], &[1, 1], [3, 7, 7], 10).unwrap();
        let c = a.count().unwrap();
        // 7×7 → stride 2 → 4×4
        assert_eq!(c.stages[1].relus, 2 * 8 * 16);
    }
}
