//! Ring evaluation of the nodes that are linear over additive shares (Conv2d/Linear without their
//! input truncation, Add, Concat, SliceChannels, Slice, Pad, PermuteChannels, pooling sums and
//! means by public reciprocals, Flatten). The reference and the
//! protocol both call [`eval_shared`], so they cannot disagree on these nodes.

use std::num::Wrapping;

use super::plan::{FixedPlan, Step};
use crate::graph::{Model, NodeId, Op, Shape};
use crate::kernel::{channel_sums, conv2d, linear, pad, permute_channels, pool_sum, strided_slice};
use crate::ModelError;

/// A Conv2d/Linear node's quantised weights (and optionally bias) as ring elements, prepared once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingWeights {
    /// `q(w, fw)` mod 2^64 (reduced mod 2^k after accumulation).
    pub(crate) weight: Vec<Wrapping<u64>>,
    /// `q(b, s_in + fw)` mod 2^64, or zeros when built without bias.
    pub(crate) bias: Vec<Wrapping<u64>>,
    /// Whether the bias is included.
    pub(crate) with_bias: bool,
}

impl RingWeights {
    /// Weights of linear node `id` from `plan`; `with_bias = false` gives zero bias (the share that
    /// must not add it).
    pub fn new(plan: &FixedPlan, id: NodeId, with_bias: bool) -> Result<RingWeights, ModelError> {
        let lp = plan.nodes.get(id).and_then(|n| n.linear()).ok_or_else(|| {
            ModelError::InvalidModel(format!("node {id} is not a Conv2d/Linear in the plan"))
        })?;
        let bias = if with_bias {
            lp.bias.iter().map(|&b| Wrapping(b as u64)).collect()
        } else {
            vec![Wrapping(0); lp.bias.len()]
        };
        Ok(RingWeights {
            weight: lp.weight.iter().map(|&w| Wrapping(w as u64)).collect(),
            bias,
            with_bias,
        })
    }

    /// Whether the bias is included.
    pub fn has_bias(&self) -> bool {
        self.with_bias
    }
}

/// Evaluates node `id` on ring tensors `ins` (one per input, in order) where the node is linear
/// over shares: Conv2d/Linear with `weights` (its `input_trunc`, if any, must already have been
/// applied to `ins[0]`), Add/Concat (alignment shifts), SliceChannels, Flatten, AvgPool and
/// GlobalAvgPool (window sums). `shapes` are `model.shapes()`. Result reduced mod 2^k.
pub fn eval_shared(
    model: &Model,
    plan: &FixedPlan,
    shapes: &[Shape],
    id: NodeId,
    ins: &[&[u64]],
    weights: Option<&RingWeights>,
) -> Result<Vec<u64>, ModelError> {
    let node = model
        .nodes
        .get(id)
        .ok_or_else(|| ModelError::InvalidModel(format!("node {id} out of range")))?;
    let np = plan
        .nodes
        .get(id)
        .ok_or_else(|| ModelError::InvalidModel(format!("plan has no node {id}")))?;
    if ins.len() != node.inputs.len() || shapes.len() != model.nodes.len() {
        return Err(ModelError::node(
            &node.name,
            format!("expected {} input tensors", node.inputs.len()),
        ));
    }
    for (k, (&i, t)) in node.inputs.iter().zip(ins).enumerate() {
        if t.len() != shapes[i].numel() {
            return Err(ModelError::node(
                &node.name,
                format!(
                    "input {k} has {} values, expected {}",
                    t.len(),
                    shapes[i].numel()
                ),
            ));
        }
    }
    let ring = plan.ring;
    let out_shape = &shapes[id];
    let wrap = |t: &[u64]| -> Vec<Wrapping<u64>> { t.iter().map(|&v| Wrapping(v)).collect() };
    let unwrap =
        |t: Vec<Wrapping<u64>>| -> Vec<u64> { t.into_iter().map(|v| ring.reduce(v.0)).collect() };
    let need_weights = || {
        weights.ok_or_else(|| ModelError::node(&node.name, "a linear layer needs its RingWeights"))
    };
    let mismatch = || ModelError::node(&node.name, "the fixed-point plan does not match this node");
    let out = match (&node.op, &np.step) {
        (Op::Conv2d(conv), Step::Linear(_)) => {
            let w = need_weights()?;
            if w.weight.len() != conv.weight.len() || w.bias.len() != conv.c_out {
                return Err(ModelError::node(&node.name, "RingWeights of another layer"));
            }
            let (_, h, wd) = shapes[node.inputs[0]].dims();
            let (_, oh, ow) = out_shape.dims();
            let mut out = vec![Wrapping(0u64); out_shape.numel()];
            conv2d(
                conv,
                &w.weight,
                &w.bias,
                &wrap(ins[0]),
                (h, wd),
                &mut out,
                (oh, ow),
            );
            unwrap(out)
        }
        (Op::Linear(lin), Step::Linear(_)) => {
            let w = need_weights()?;
            if w.weight.len() != lin.weight.len() || w.bias.len() != lin.out_features {
                return Err(ModelError::node(&node.name, "RingWeights of another layer"));
            }
            let mut out = vec![Wrapping(0u64); lin.out_features];
            linear(&w.weight, &w.bias, &wrap(ins[0]), &mut out);
            unwrap(out)
        }
        (Op::Add, Step::Align { shifts }) if shifts.len() == 2 => ins[0]
            .iter()
            .zip(ins[1])
            .map(|(&a, &b)| ring.add(ring.shl(a, shifts[0]), ring.shl(b, shifts[1])))
            .collect(),
        (Op::Concat, Step::Align { shifts }) if shifts.len() == ins.len() => {
            let mut out = Vec::with_capacity(out_shape.numel());
            for (t, &s) in ins.iter().zip(shifts) {
                out.extend(t.iter().map(|&v| ring.shl(v, s)));
            }
            out
        }
        (Op::SliceChannels { start, len }, Step::Pass) => {
            let (_, h, w) = shapes[node.inputs[0]].dims();
            ins[0][start * h * w..(start + len) * h * w].to_vec()
        }
        (Op::Flatten, Step::Pass) => ins[0].to_vec(),
        (Op::AvgPool(pool), Step::PoolSum { .. }) => {
            let dims = shapes[node.inputs[0]].dims();
            let mut out = vec![Wrapping(0u64); out_shape.numel()];
            pool_sum(pool, &wrap(ins[0]), dims, &mut out);
            unwrap(out)
        }
        (Op::AvgPool(pool), Step::PoolMean { factors, .. }) => {
            let dims = shapes[node.inputs[0]].dims();
            let mut out = vec![Wrapping(0u64); out_shape.numel()];
            pool_sum(pool, &wrap(ins[0]), dims, &mut out);
            if factors.is_empty() {
                return Err(mismatch());
            }
            out.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v *= Wrapping(factors[i % factors.len()]));
            unwrap(out)
        }
        (Op::GlobalAvgPool, Step::PoolSum { .. }) => {
            let (c, h, w) = shapes[node.inputs[0]].dims();
            unwrap(channel_sums(&wrap(ins[0]), c, h * w))
        }
        (Op::GlobalAvgPool, Step::PoolMean { factors, .. }) if factors.len() == 1 => {
            let (c, h, w) = shapes[node.inputs[0]].dims();
            let f = Wrapping(factors[0]);
            unwrap(
                channel_sums(&wrap(ins[0]), c, h * w)
                    .into_iter()
                    .map(|v| v * f)
                    .collect(),
            )
        }
        (Op::GatherMean(g), Step::PoolSum { .. } | Step::PoolMean { .. }) => {
            let factors: &[u64] = match &np.step {
                Step::PoolMean { factors, .. } => factors,
                _ => &[1],
            };
            if factors.is_empty() {
                return Err(mismatch());
            }
            let x = wrap(ins[0]);
            unwrap(
                g.sets
                    .iter()
                    .enumerate()
                    .map(|(j, set)| {
                        let sum = set.iter().fold(Wrapping(0u64), |a, &i| a + x[i as usize]);
                        sum * Wrapping(factors[j % factors.len()])
                    })
                    .collect(),
            )
        }
        (Op::Pad(p), Step::Pass) => pad(p, ins[0], shapes[node.inputs[0]].dims()),
        (Op::Slice(sl), Step::Pass) => strided_slice(sl, ins[0], shapes[node.inputs[0]].dims()),
        (Op::PermuteChannels(order), Step::Pass) => {
            let (_, h, w) = shapes[node.inputs[0]].dims();
            permute_channels(order, ins[0], h * w)
        }
        (Op::Input | Op::Relu(_) | Op::Identity | Op::MaxPool(_) | Op::Affine(_), _) => {
            return Err(ModelError::Unsupported {
                node: node.name.clone(),
                reason: format!("{} is not linear over shares", node.op.kind()),
            })
        }
        _ => return Err(mismatch()),
    };
    Ok(out)
}
