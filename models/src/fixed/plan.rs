//! The fixed-point plan: per node scale, truncations and quantised weights, derived from the graph
//! alone (docs/protocol.md, "Share ring and fixed point"). The protocol runs the same plan.

use serde::{Deserialize, Serialize};

use super::ring::Ring;
use crate::graph::{Model, Op, Shape};
use crate::ModelError;

/// Fixed-point parameters (defaults per docs/protocol.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedConfig {
    /// fa: fractional bits of activations and of the model input.
    pub frac_act: u32,
    /// fw: fractional bits of weights.
    pub frac_weight: u32,
    /// M: assumed bound |real value| < 2^M at every ReLU input.
    pub magnitude_bits: u32,
    /// k: the share ring is Z_2^k.
    pub ring_bits: u32,
}

impl Default for FixedConfig {
    fn default() -> Self {
        FixedConfig {
            frac_act: 8,
            frac_weight: 8,
            magnitude_bits: 10,
            ring_bits: 52,
        }
    }
}

/// `sext_width(y) >> shift` (arithmetic, i.e. floor division by 2^shift).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// F: bits shifted out (input scale − fa).
    pub shift: u32,
    /// Bits of the input that are read (two's complement); k for a local (share-wise) truncation.
    pub width: u32,
}

/// Quantised parameters of a convolution or linear layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearPlan {
    /// The implicit truncation applied to the input first (input scale > fa + fw), width k.
    pub input_trunc: Option<Truncation>,
    /// Scale of the input as the layer consumes it (after `input_trunc`).
    pub in_scale: u32,
    /// `q(w, fw)` in the graph's weight layout.
    pub weight: Vec<i64>,
    /// `q(b, in_scale + fw)`, one per output channel / feature.
    pub bias: Vec<i64>,
}

impl LinearPlan {
    /// The bias as ring elements.
    pub fn bias_ring(&self, ring: Ring) -> Vec<u64> {
        self.bias.iter().map(|&b| ring.from_i64(b)).collect()
    }

    /// The weights as ring elements.
    pub fn weight_ring(&self, ring: Ring) -> Vec<u64> {
        self.weight.iter().map(|&w| ring.from_i64(w)).collect()
    }
}

/// What the fixed-point reference does at one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// `q(x, fa)`.
    Input,
    /// Conv2d or Linear: `Σ q(w)·x + q(b)` mod 2^k (after the optional implicit truncation).
    Linear(LinearPlan),
    /// `max(0, sext_w(y) >> F)` (then `min(·, cap)` when capped) on the ReLU's selected elements
    /// (`relu`); on the other elements of a channel- or element-subset ReLU, the Identity
    /// truncation `pass` (width k).
    Relu {
        /// Truncation of ReLU elements (width w = min(s + M + 1, k)).
        relu: Truncation,
        /// Truncation of pass-through elements (width k, same shift).
        pass: Truncation,
        /// `q(cap, fa)` of a capped ReLU (ReLU6).
        cap: Option<u64>,
    },
    /// MaxPool: per window, `m = max_i(sext_w(y_i) >> F)`, then `max(0, m)` when `relu`, then
    /// `min(m, cap)` when capped (one garbled circuit per output element).
    Max {
        /// Truncation of every window element (width w = min(s + M + 1, k), F = s − fa).
        trunc: Truncation,
        /// Whether a ReLU is fused in.
        relu: bool,
        /// `q(cap, fa)` of a fused cap.
        cap: Option<u64>,
    },
    /// A removed ReLU: `sext_k(y) >> F`.
    Identity(Truncation),
    /// Add / Concat: input i is multiplied by `2^shifts[i]` to reach the output scale.
    Align {
        /// Left shift per input, in input order.
        shifts: Vec<u32>,
    },
    /// AvgPool / GlobalAvgPool whose windows all divide by the same power of two: window sum,
    /// scale += log2(window).
    PoolSum {
        /// log2 of the window size.
        log2_window: u32,
    },
    /// Any other average: window sum times `factors[window]` = round(2^frac / divisor), scale +=
    /// frac (a public constant, so both shares are multiplied locally and exactly).
    PoolMean {
        /// Fractional bits of the reciprocals.
        frac: u32,
        /// One reciprocal per output position (the same for every channel).
        factors: Vec<u64>,
    },
    /// Shift-only Affine: the server adds `q(shift, s)` (broadcast as in the graph) to its share.
    AddConst(Vec<u64>),
    /// SliceChannels / Flatten / Pad / Slice / PermuteChannels: values moved, unchanged.
    Pass,
}

/// Plan of one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// Scale s of the node's output (value = sext_k(int) / 2^s).
    pub scale: u32,
    /// What the node computes.
    pub step: Step,
}

impl NodePlan {
    /// The ReLU truncation (shift F and input width w) if this node is a ReLU.
    pub fn relu(&self) -> Option<Truncation> {
        match self.step {
            Step::Relu { relu, .. } => Some(relu),
            Step::Max { trunc, .. } => Some(trunc),
            _ => None,
        }
    }

    /// The truncation applied without a circuit (Identity, non-ReLU channels, implicit truncation).
    pub fn local_truncation(&self) -> Option<Truncation> {
        match &self.step {
            Step::Identity(t) => Some(*t),
            Step::Relu { pass, .. } => Some(*pass),
            Step::Linear(l) => l.input_trunc,
            _ => None,
        }
    }

    /// The quantised layer if this node is a Conv2d or Linear.
    pub fn linear(&self) -> Option<&LinearPlan> {
        match &self.step {
            Step::Linear(l) => Some(l),
            _ => None,
        }
    }
}

/// The fixed-point plan of a whole model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedPlan {
    /// The parameters it was made with.
    pub config: FixedConfig,
    /// The share ring Z_2^k.
    pub ring: Ring,
    /// One entry per node (index = node id).
    pub nodes: Vec<NodePlan>,
    /// Scale of the output node.
    pub output_scale: u32,
}

/// `round_half_away_from_zero(x · 2^s)` as i64 (exact: 2^s scaling in f64, then `round`).
pub fn quantize(x: f32, s: u32) -> i64 {
    (x as f64 * (s as f64).exp2()).round() as i64
}

/// Derives the plan of `model` under `config` (refuses non-finite weights, scaled affine maps,
/// and scales that do not fit the ring).
pub fn plan(model: &Model, config: &FixedConfig) -> Result<FixedPlan, ModelError> {
    plan_with(model, config, true)
}

/// The plan of a weightless (public) model: the same scales, truncations and steps as [`plan`],
/// with empty quantised weights in every linear layer. The client's copy of the plan never reads
/// weights, and quantising a large model's placeholder zeros would touch hundreds of megabytes.
pub fn plan_weightless(model: &Model, config: &FixedConfig) -> Result<FixedPlan, ModelError> {
    plan_with(model, config, false)
}

fn plan_with(model: &Model, config: &FixedConfig, weights: bool) -> Result<FixedPlan, ModelError> {
    let shapes = model.shapes()?;
    let k = config.ring_bits;
    let (fa, fw, m) = (config.frac_act, config.frac_weight, config.magnitude_bits);
    if !(8..=64).contains(&k) || fa + fw + m + 1 > k || fa + 2 * fw >= k {
        return Err(ModelError::InvalidModel(format!(
            "fixed-point config does not fit the ring: {config:?}"
        )));
    }
    let ring = Ring::new(k);
    let mut nodes: Vec<NodePlan> = Vec::with_capacity(model.nodes.len());
    for (id, node) in model.nodes.iter().enumerate() {
        let name = &node.name;
        let s_in = node.inputs.first().map(|&i| nodes[i].scale).unwrap_or(fa);
        let to_fa = |s: u32| -> Result<u32, ModelError> {
            s.checked_sub(fa).ok_or_else(|| ModelError::Unsupported {
                node: name.clone(),
                reason: format!("input scale {s} below the activation scale {fa}"),
            })
        };
        let np = match &node.op {
            Op::Input => NodePlan {
                scale: fa,
                step: Step::Input,
            },
            Op::Conv2d(_) | Op::Linear(_) => {
                let (weight, bias) = match &node.op {
                    Op::Conv2d(c) => (&c.weight, &c.bias),
                    Op::Linear(l) => (&l.weight, &l.bias),
                    _ => unreachable!("matched above"),
                };
                if weights && weight.iter().chain(bias).any(|v| !v.is_finite()) {
                    return Err(ModelError::node(name, "non-finite weight or bias"));
                }
                let (input_trunc, in_scale) = if s_in > fa + fw {
                    (
                        Some(Truncation {
                            shift: s_in - fa,
                            width: k,
                        }),
                        fa,
                    )
                } else {
                    (None, s_in)
                };
                let out_scale = in_scale + fw;
                LinearPlan {
                    input_trunc,
                    in_scale,
                    weight: match weights {
                        true => weight.iter().map(|&w| quantize(w, fw)).collect(),
                        false => Vec::new(),
                    },
                    bias: bias.iter().map(|&b| quantize(b, out_scale)).collect(),
                }
                .into_node(out_scale)
            }
            Op::Relu(r) => {
                let shift = to_fa(s_in)?;
                NodePlan {
                    scale: fa,
                    step: Step::Relu {
                        relu: Truncation {
                            shift,
                            width: (s_in + m + 1).min(k),
                        },
                        pass: Truncation { shift, width: k },
                        cap: quantize_cap(name, r.cap, fa, m)?,
                    },
                }
            }
            Op::MaxPool(mp) => NodePlan {
                scale: fa,
                step: Step::Max {
                    trunc: Truncation {
                        shift: to_fa(s_in)?,
                        width: (s_in + m + 1).min(k),
                    },
                    relu: mp.relu,
                    cap: quantize_cap(name, mp.cap, fa, m)?,
                },
            },
            Op::Affine(a) => {
                if !a.is_shift_only() {
                    return Err(ModelError::Unsupported {
                        node: name.clone(),
                        reason: "multiplication by a per-element constant has no private \
                                 implementation (per-channel and scalar factors are folded into a \
                                 neighbouring Conv/Gemm or become a depthwise 1x1 convolution at \
                                 import)"
                            .into(),
                    });
                }
                NodePlan {
                    scale: s_in,
                    step: Step::AddConst(
                        a.shift
                            .iter()
                            .map(|&v| ring.from_i64(quantize(v, s_in)))
                            .collect(),
                    ),
                }
            }
            Op::Pad(_) | Op::Slice(_) | Op::PermuteChannels(_) => NodePlan {
                scale: s_in,
                step: Step::Pass,
            },
            Op::Identity => NodePlan {
                scale: fa,
                step: Step::Identity(Truncation {
                    shift: to_fa(s_in)?,
                    width: k,
                }),
            },
            Op::Add | Op::Concat => {
                let scales: Vec<u32> = node.inputs.iter().map(|&i| nodes[i].scale).collect();
                let out = scales.iter().copied().max().unwrap_or(fa);
                NodePlan {
                    scale: out,
                    step: Step::Align {
                        shifts: scales.iter().map(|&s| out - s).collect(),
                    },
                }
            }
            Op::SliceChannels { .. } | Op::Flatten => NodePlan {
                scale: s_in,
                step: Step::Pass,
            },
            Op::AvgPool(_) | Op::GlobalAvgPool | Op::GatherMean(_) => {
                let divisors: Vec<usize> = match (&node.op, &shapes[node.inputs[0]]) {
                    (Op::GatherMean(g), _) => g.divisors.iter().map(|&d| d as usize).collect(),
                    (Op::AvgPool(p), Shape::Chw { h, w, .. }) => {
                        p.windows(*h, *w).iter().map(|win| win.divisor).collect()
                    }
                    (_, Shape::Chw { h, w, .. }) => vec![h * w],
                    (_, s) => vec![s.numel()],
                };
                let first = divisors.first().copied().unwrap_or(1);
                if divisors.iter().all(|&d| d == first) && first.is_power_of_two() {
                    let l = first.trailing_zeros();
                    NodePlan {
                        scale: s_in + l,
                        step: Step::PoolSum { log2_window: l },
                    }
                } else {
                    let largest = divisors.iter().copied().max().unwrap_or(1).max(1);
                    let frac = fw + usize::BITS - (largest - 1).leading_zeros();
                    if s_in + frac + 2 > k {
                        return Err(ModelError::Unsupported {
                            node: name.clone(),
                            reason: format!(
                                "average over up to {largest} elements needs scale {} (reciprocal \
                                 with {frac} fractional bits), beyond the {k}-bit ring",
                                s_in + frac
                            ),
                        });
                    }
                    let factors = divisors
                        .iter()
                        .map(|&d| {
                            if d == 0 {
                                return Err(ModelError::node(name, "empty pooling window"));
                            }
                            Ok(((1u64 << frac) as f64 / d as f64).round() as u64)
                        })
                        .collect::<Result<_, _>>()?;
                    NodePlan {
                        scale: s_in + frac,
                        step: Step::PoolMean { frac, factors },
                    }
                }
            }
        };
        if np.scale + 2 > k {
            return Err(ModelError::Unsupported {
                node: name.clone(),
                reason: format!("scale {} does not fit the {k}-bit ring", np.scale),
            });
        }
        debug_assert_eq!(nodes.len(), id);
        nodes.push(np);
    }
    let output_scale = nodes[model.output].scale;
    Ok(FixedPlan {
        config: *config,
        ring,
        nodes,
        output_scale,
    })
}

/// `q(cap, fa)` of a ReLU cap; a cap at or beyond the magnitude bound 2^M is refused (it could
/// never apply and would not fit the circuit).
fn quantize_cap(name: &str, cap: Option<f32>, fa: u32, m: u32) -> Result<Option<u64>, ModelError> {
    match cap {
        None => Ok(None),
        Some(c) if c.is_finite() && c > 0.0 && (c as f64) < (m as f64).exp2() => {
            Ok(Some(quantize(c, fa) as u64))
        }
        Some(c) => Err(ModelError::Unsupported {
            node: name.to_string(),
            reason: format!("ReLU cap {c} outside (0, 2^M = {})", (m as f64).exp2()),
        }),
    }
}

impl LinearPlan {
    /// Wraps this layer plan into a node plan with output scale `scale`.
    fn into_node(self, scale: u32) -> NodePlan {
        NodePlan {
            scale,
            step: Step::Linear(self),
        }
    }
}
