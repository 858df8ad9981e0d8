//! Known networks with seeded He-normal weights, for tests, counts and benchmarks.
//!
//! CIFAR-style ResNet (He et al. 2016, as used by DeepReShape): 3×3 stride-1 stem conv + ReLU, no
//! max-pool; stages of basic blocks (conv3×3 → ReLU → conv3×3, + shortcut, → ReLU); the first block
//! of every stage after the first has stride 2; the shortcut is a 1×1 projection (stride = block
//! stride) whenever the shape changes; head = global average pool → flatten → linear. BatchNorm is
//! taken as already folded (convolutions carry a bias).
//!
//! Node names: `stem.conv`, `stem.relu`, `stage<s>.block<b>.{conv1,relu1,conv2,shortcut,add,relu2}`,
//! `head.{pool,flatten,fc}`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::builder::ModelBuilder;
use crate::graph::{Conv2d, Linear, Model, NodeId, Op, Pool, Relu, Stage};
use crate::ModelError;

/// Hyper-parameters of a CIFAR-style ResNet.
#[derive(Clone, Debug, PartialEq)]
pub struct ResNetSpec {
    /// Input `[c, h, w]`.
    pub input: [usize; 3],
    /// Output channels of the stem convolution (the base channel count m).
    pub stem: usize,
    /// Basic blocks per stage (the stage compute ratios φ).
    pub blocks: Vec<usize>,
    /// Channels per stage.
    pub widths: Vec<usize>,
    /// Number of classes (linear outputs).
    pub classes: usize,
    /// Seed of the weight generator (ChaCha8).
    pub seed: u64,
    /// Standard deviation of the random biases (0 gives zero biases).
    pub bias_std: f32,
    /// Factor applied to the second convolution of every block (1 = plain He-normal); values below 1
    /// keep activations bounded in deep un-normalised random nets.
    pub residual_scale: f32,
}

impl ResNetSpec {
    /// A spec with stem width `widths[0]`, seed 0, zero biases and residual scale 1.
    pub fn new(blocks: Vec<usize>, widths: Vec<usize>, classes: usize, input: [usize; 3]) -> Self {
        let stem = widths.first().copied().unwrap_or(16);
        ResNetSpec {
            input,
            stem,
            blocks,
            widths,
            classes,
            seed: 0,
            bias_std: 0.0,
            residual_scale: 1.0,
        }
    }

    /// Builds the network.
    pub fn build(&self) -> Result<Model, ModelError> {
        if self.blocks.len() != self.widths.len() || self.blocks.is_empty() {
            return Err(ModelError::InvalidModel(format!(
                "ResNet spec needs one width per stage ({} block counts, {} widths)",
                self.blocks.len(),
                self.widths.len()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let name = format!(
            "resnet-{}-{}",
            self.blocks
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join("x"),
            self.widths
                .iter()
                .map(|b| b.to_string())
                .collect::<Vec<_>>()
                .join("x")
        );
        let mut b = ModelBuilder::new(name, self.input);
        let stem_conv = self.conv(self.input[0], self.stem, 3, 1, &mut rng, 1.0);
        let x = b.node(
            "stem.conv",
            Op::Conv2d(stem_conv),
            vec![b.input()],
            Stage::Stem,
        );
        let mut x = b.node("stem.relu", Op::Relu(Relu::all()), vec![x], Stage::Stem);
        let mut c = self.stem;
        for (s, (&nblocks, &width)) in self.blocks.iter().zip(&self.widths).enumerate() {
            let stage = Stage::Stage(s + 1);
            for blk in 0..nblocks {
                let stride = if s > 0 && blk == 0 { 2 } else { 1 };
                let p = format!("{stage}.block{}", blk + 1);
                x = self.basic_block(&mut b, &mut rng, x, c, width, stride, &p, stage);
                c = width;
            }
        }
        let x = b.node("head.pool", Op::GlobalAvgPool, vec![x], Stage::Head);
        let x = b.node("head.flatten", Op::Flatten, vec![x], Stage::Head);
        let fc = self.bias(Linear::he_normal(c, self.classes, &mut rng), &mut rng);
        let y = b.node("head.fc", Op::Linear(fc), vec![x], Stage::Head);
        b.finish(y)
    }

    /// One basic block reading `x` (with `c_in` channels); returns its output node.
    #[allow(clippy::too_many_arguments)]
    fn basic_block(
        &self,
        b: &mut ModelBuilder,
        rng: &mut ChaCha8Rng,
        x: NodeId,
        c_in: usize,
        c_out: usize,
        stride: usize,
        p: &str,
        stage: Stage,
    ) -> NodeId {
        let relu = || Op::Relu(Relu::all());
        let conv1 = self.conv(c_in, c_out, 3, stride, rng, 1.0);
        let y = b.node(format!("{p}.conv1"), Op::Conv2d(conv1), vec![x], stage);
        let y = b.node(format!("{p}.relu1"), relu(), vec![y], stage);
        let conv2 = self.conv(c_out, c_out, 3, 1, rng, self.residual_scale);
        let y = b.node(format!("{p}.conv2"), Op::Conv2d(conv2), vec![y], stage);
        let skip = if stride != 1 || c_in != c_out {
            let sc = self.conv(c_in, c_out, 1, stride, rng, 1.0);
            b.node(format!("{p}.shortcut"), Op::Conv2d(sc), vec![x], stage)
        } else {
            x
        };
        let y = b.node(format!("{p}.add"), Op::Add, vec![y, skip], stage);
        b.node(format!("{p}.relu2"), relu(), vec![y], stage)
    }

    /// A He-normal `k×k` conv (padding k/2) with this spec's bias and the given extra factor.
    fn conv(
        &self,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        rng: &mut ChaCha8Rng,
        f: f32,
    ) -> Conv2d {
        let conv = Conv2d::he_normal(c_in, c_out, k, stride, k / 2, 1, rng);
        let conv = if f != 1.0 { conv.scaled(f) } else { conv };
        if self.bias_std > 0.0 {
            conv.with_random_bias(self.bias_std, rng)
        } else {
            conv
        }
    }

    /// Applies this spec's bias to a linear layer.
    fn bias(&self, lin: Linear, rng: &mut ChaCha8Rng) -> Linear {
        if self.bias_std > 0.0 {
            lin.with_random_bias(self.bias_std, rng)
        } else {
            lin
        }
    }
}

/// A CIFAR-style ResNet with the given blocks and widths per stage (stem width = `widths[0]`, seed 0).
pub fn resnet(
    blocks: [usize; 4],
    widths: [usize; 4],
    classes: usize,
    input: [usize; 3],
) -> Result<Model, ModelError> {
    ResNetSpec::new(blocks.to_vec(), widths.to_vec(), classes, input).build()
}

/// ResNet-18 for CIFAR (32×32, m = 64, blocks [2, 2, 2, 2], widths [64, 128, 256, 512]); panics if `classes` is 0.
pub fn resnet18_cifar(classes: usize) -> Model {
    resnet([2, 2, 2, 2], [64, 128, 256, 512], classes, [3, 32, 32])
        .expect("the ResNet-18 spec is valid")
}

/// HybReNet HRN-5x5x3x with base width m (DeepReShape Table 16: m = 16 gives widths 16, 80, 400,
/// 1200); panics if `m` or `classes` is 0.
pub fn hrn_5x5x3x(m: usize, classes: usize) -> Model {
    resnet(
        [2, 2, 2, 2],
        [m, 5 * m, 25 * m, 75 * m],
        classes,
        [3, 32, 32],
    )
    .expect("the HRN spec is valid")
}

/// A small random ResNet-style network for tests: stem, two or three stages of one or two blocks
/// with random widths, random biases, one removed ReLU (`Identity`), one channel-subset ReLU, one
/// ReLU-reuse pattern (slice half the channels, ReLU, concatenate twice) and, for some seeds, a 2×2
/// average pool before the head. Input `[c, h, w]` with h, w ≥ 8 and powers of two keeps every pool
/// valid and a power of two; panics on an input that makes the network invalid, or `classes` = 0.
pub fn random_resnet(seed: u64, input: [usize; 3], classes: usize) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x05ee_d0f4_e5e7);
    let nstages = rng.gen_range(2..=3usize);
    let mut widths = Vec::new();
    for _ in 0..nstages {
        widths.push(2 * rng.gen_range(2..=6usize));
    }
    let blocks: Vec<usize> = (0..nstages).map(|_| rng.gen_range(1..=2usize)).collect();
    let spec = ResNetSpec {
        input,
        stem: widths[0],
        blocks,
        widths,
        classes,
        seed: rng.gen(),
        bias_std: 0.1,
        residual_scale: 0.5,
    };
    let base = spec.build().expect("random ResNet spec is valid");
    let relus: Vec<NodeId> = base
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| matches!(n.op, Op::Relu(_)) && n.stage != Stage::Stem)
        .map(|(i, _)| i)
        .collect();
    let shapes = base.shapes().expect("valid");
    // Pick three distinct ReLUs: one removed, one channel subset, one replaced by ReLU reuse.
    let pick = |rng: &mut ChaCha8Rng, taken: &[NodeId]| loop {
        let r = relus[rng.gen_range(0..relus.len())];
        if !taken.contains(&r) {
            break r;
        }
    };
    let removed = pick(&mut rng, &[]);
    let subset = pick(&mut rng, &[removed]);
    let reuse = pick(&mut rng, &[removed, subset]);
    let pool_before_head = rng.gen_bool(0.5);

    // Rebuild node by node, rewriting the three picked ReLUs.
    let mut b = ModelBuilder::new(base.name.clone(), base.input);
    let mut map = vec![0usize; base.nodes.len()];
    for (id, node) in base.nodes.iter().enumerate().skip(1) {
        let inputs: Vec<NodeId> = node.inputs.iter().map(|&i| map[i]).collect();
        let mut op = node.op.clone();
        if id == removed {
            op = Op::Identity;
        } else if id == subset {
            let c = shapes[id].channels();
            let mut chans: Vec<usize> = (0..c).filter(|_| rng.gen_bool(0.5)).collect();
            if chans.is_empty() {
                chans.push(0);
            }
            op = Op::Relu(Relu::channels(chans));
        } else if id == reuse {
            let c = shapes[id].channels();
            let half = b.node(
                format!("{}.reuse_slice", node.name),
                Op::SliceChannels {
                    start: 0,
                    len: c / 2,
                },
                inputs.clone(),
                node.stage,
            );
            let r = b.node(
                format!("{}.reuse_relu", node.name),
                Op::Relu(Relu::all()),
                vec![half],
                node.stage,
            );
            map[id] = b.node(node.name.clone(), Op::Concat, vec![r, r], node.stage);
            continue;
        }
        if node.op == Op::GlobalAvgPool && pool_before_head {
            let p = b.node(
                "head.avgpool",
                Op::AvgPool(Pool::new([2, 2], [2, 2])),
                inputs,
                Stage::Head,
            );
            map[id] = b.node(node.name.clone(), op, vec![p], node.stage);
            continue;
        }
        map[id] = b.node(node.name.clone(), op, inputs, node.stage);
    }
    b.finish(map[base.output]).expect("random ResNet is valid")
}
