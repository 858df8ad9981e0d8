//! Builds a `models::Model` with seeded He-normal weights from an [`Arch`].
//!
//! Node names follow `models::zoo`: `stem.conv`, `stem.relu`, `stage<s>.block<b>.{conv1, relu1, conv2,
//! shortcut, add, relu2}`, `head.{pool, flatten, fc}`. A removed ReLU (culled/thinned) is an
//! `Identity` node named `identity1`/`identity2` (`stem.identity`). A ReLU-reuse block replaces
//! `conv2` by three channel groups of `conv1`'s output (DeepReShape §4.2, Figure 9):
//!
//! ```text
//! reuse.keep    channels [0, C/4)            passed through (feature reuse)
//! reuse.linear  next C − C/4 − C/N channels  3×3 conv, no activation
//! reuse.relu    last C/N channels            3×3 conv, activated after the residual add
//! concat → reuse.mix (1×1 conv, C→C: cross-channel mixing) → add → relu2 on the last C/N channels
//! ```
//!
//! Skip-path ReLUs (CryptoNAS baselines) are `skip_relu` nodes in front of the shortcut.

use models::builder::ModelBuilder;
use models::rand::SeedableRng;
use models::rand_chacha::ChaCha8Rng;
use models::{Conv2d, Linear, Model, NodeId, Op, Relu, Stage};

use crate::arch::{Arch, ReuseGroups};
use crate::error::OptError;

/// Weight-initialization options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InitOptions {
    /// Seed of the ChaCha8 weight generator.
    pub seed: u64,
    /// Factor on the last convolution of every residual branch (`conv2` / `reuse.mix`), so that
    /// activations of an untrained, BatchNorm-free network stay bounded (fixed point assumes
    /// |x| < 2^10 at ReLU inputs); 1.0 is plain He-normal.
    pub residual_scale: f32,
}

/// Default residual-branch factor (see [`InitOptions::residual_scale`]).
pub const DEFAULT_RESIDUAL_SCALE: f32 = 0.5;

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            seed: 0,
            residual_scale: DEFAULT_RESIDUAL_SCALE,
        }
    }
}

struct Ctx {
    b: ModelBuilder,
    rng: ChaCha8Rng,
    opts: InitOptions,
    /// Zero weights (structure only, for cost estimates: no random numbers drawn).
    zeros: bool,
}

impl Ctx {
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        name: String,
        x: NodeId,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        scale: f32,
        stage: Stage,
    ) -> NodeId {
        let mut conv = if self.zeros {
            Conv2d {
                c_in,
                c_out,
                kernel: [k, k],
                stride: [stride, stride],
                padding: [k / 2, k / 2],
                groups: 1,
                weight: vec![0.0; c_out * c_in * k * k],
                bias: vec![0.0; c_out],
            }
        } else {
            Conv2d::he_normal(c_in, c_out, k, stride, k / 2, 1, &mut self.rng)
        };
        if scale != 1.0 {
            conv = conv.scaled(scale);
        }
        self.b.node(name, Op::Conv2d(conv), vec![x], stage)
    }

    fn act(
        &mut self,
        prefix: &str,
        idx: &str,
        x: NodeId,
        keep: bool,
        channels: Option<Vec<usize>>,
        stage: Stage,
    ) -> NodeId {
        if keep {
            self.b.node(
                format!("{prefix}.relu{idx}"),
                Op::Relu(Relu {
                    channels,
                    ..Relu::default()
                }),
                vec![x],
                stage,
            )
        } else {
            self.b.node(
                format!("{prefix}.identity{idx}"),
                Op::Identity,
                vec![x],
                stage,
            )
        }
    }
}

/// Builds `arch` as a model with seeded He-normal weights and zero biases.
pub fn build(arch: &Arch, opts: InitOptions) -> Result<Model, OptError> {
    build_with(arch, opts, false)
}

/// The network of `arch` with all weights zero: its structure, for counting and cost estimates.
pub fn build_structure(arch: &Arch) -> Result<Model, OptError> {
    build_with(arch, InitOptions::default(), true)
}

fn build_with(arch: &Arch, opts: InitOptions, zeros: bool) -> Result<Model, OptError> {
    arch.validate()?;
    let mut cx = Ctx {
        b: ModelBuilder::new(arch.label(), arch.input),
        rng: ChaCha8Rng::seed_from_u64(opts.seed),
        opts,
        zeros,
    };
    let input = cx.b.input();
    let m = arch.stem_channels;
    let x = cx.conv(
        "stem.conv".into(),
        input,
        arch.input[0],
        m,
        3,
        1,
        1.0,
        Stage::Stem,
    );
    let mut x = cx.act("stem", "", x, arch.stem_relu, None, Stage::Stem);
    let mut c_in = m;
    for (si, s) in arch.stages.iter().enumerate() {
        let stage = Stage::Stage(si + 1);
        for blk in 0..s.blocks {
            let stride = if blk == 0 { s.stride } else { 1 };
            let p = format!("stage{}.block{}", si + 1, blk + 1);
            let c = s.channels;
            let y = cx.conv(format!("{p}.conv1"), x, c_in, c, 3, stride, 1.0, stage);
            let y = cx.act(&p, "1", y, s.relu1, None, stage);
            let rs = cx.opts.residual_scale;
            let (y, relu2_channels) = match s.reuse {
                None => (
                    cx.conv(format!("{p}.conv2"), y, c, c, 3, 1, rs, stage),
                    None,
                ),
                Some(n) => {
                    let g = ReuseGroups::new(c, n)?;
                    let keep = cx.b.node(
                        format!("{p}.reuse.keep"),
                        Op::SliceChannels {
                            start: 0,
                            len: g.reused,
                        },
                        vec![y],
                        stage,
                    );
                    let lin = cx.b.node(
                        format!("{p}.reuse.split_linear"),
                        Op::SliceChannels {
                            start: g.reused,
                            len: g.linear,
                        },
                        vec![y],
                        stage,
                    );
                    let act = cx.b.node(
                        format!("{p}.reuse.split_relu"),
                        Op::SliceChannels {
                            start: g.reused + g.linear,
                            len: g.activated,
                        },
                        vec![y],
                        stage,
                    );
                    let lin = cx.conv(
                        format!("{p}.reuse.linear"),
                        lin,
                        g.linear,
                        g.linear,
                        3,
                        1,
                        1.0,
                        stage,
                    );
                    let act = cx.conv(
                        format!("{p}.reuse.relu"),
                        act,
                        g.activated,
                        g.activated,
                        3,
                        1,
                        1.0,
                        stage,
                    );
                    let cat = cx.b.node(
                        format!("{p}.reuse.concat"),
                        Op::Concat,
                        vec![keep, lin, act],
                        stage,
                    );
                    let mix = cx.conv(format!("{p}.reuse.mix"), cat, c, c, 1, 1, rs, stage);
                    (mix, Some((c - g.activated..c).collect::<Vec<_>>()))
                }
            };
            let projection = stride != 1 || c_in != c;
            let skip = if projection {
                let src = if s.projection_skip_relu {
                    cx.b.node(
                        format!("{p}.skip_relu"),
                        Op::Relu(Relu::all()),
                        vec![x],
                        stage,
                    )
                } else {
                    x
                };
                cx.conv(format!("{p}.shortcut"), src, c_in, c, 1, stride, 1.0, stage)
            } else if s.identity_skip_relu {
                cx.b.node(
                    format!("{p}.skip_relu"),
                    Op::Relu(Relu::all()),
                    vec![x],
                    stage,
                )
            } else {
                x
            };
            let sum = cx.b.node(format!("{p}.add"), Op::Add, vec![y, skip], stage);
            x = cx.act(&p, "2", sum, s.relu2, relu2_channels, stage);
            c_in = c;
        }
    }
    let x =
        cx.b.node("head.pool", Op::GlobalAvgPool, vec![x], Stage::Head);
    let x = cx.b.node("head.flatten", Op::Flatten, vec![x], Stage::Head);
    let fc = if cx.zeros {
        Linear {
            in_features: c_in,
            out_features: arch.classes,
            weight: vec![0.0; c_in * arch.classes],
            bias: vec![0.0; arch.classes],
        }
    } else {
        Linear::he_normal(c_in, arch.classes, &mut cx.rng)
    };
    let y = cx.b.node("head.fc", Op::Linear(fc), vec![x], Stage::Head);
    Ok(cx.b.finish(y)?)
}
