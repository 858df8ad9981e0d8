//! Shape inference and structural validation of a [`Model`]; every error names the node.

use std::collections::HashSet;

use crate::graph::{Model, Node, NodeId, Op, Shape};
use crate::ModelError;

impl Model {
    /// The output shape of every node (index = [`NodeId`]), checking structure, parameters and
    /// shapes on the way; the first problem found is returned, naming its node.
    pub fn shapes(&self) -> Result<Vec<Shape>, ModelError> {
        if self.nodes.is_empty() {
            return Err(ModelError::InvalidModel("the model has no nodes".into()));
        }
        if self.output >= self.nodes.len() {
            return Err(ModelError::InvalidModel(format!(
                "output node {} out of range ({} nodes)",
                self.output,
                self.nodes.len()
            )));
        }
        let mut names = HashSet::with_capacity(self.nodes.len());
        for node in &self.nodes {
            if !names.insert(node.name.as_str()) {
                return Err(ModelError::node(&node.name, "duplicate node name"));
            }
        }
        infer_shapes(self.input, &self.nodes)
    }

    /// Checks the whole model (see [`Model::shapes`]).
    pub fn validate(&self) -> Result<(), ModelError> {
        self.shapes().map(|_| ())
    }

    /// Ids of the nodes that read node `id`'s output.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&id))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Shapes of `nodes` (a prefix of a model is fine) for the given input `[c, h, w]`.
pub(crate) fn infer_shapes(input: [usize; 3], nodes: &[Node]) -> Result<Vec<Shape>, ModelError> {
    let mut shapes = Vec::with_capacity(nodes.len());
    for (id, node) in nodes.iter().enumerate() {
        let s = node_shape(input, id, node, &shapes)?;
        shapes.push(s);
    }
    Ok(shapes)
}

/// Output shape of `node` (with id `id`), given the shapes of all earlier nodes.
pub(crate) fn node_shape(
    input: [usize; 3],
    id: NodeId,
    node: &Node,
    shapes: &[Shape],
) -> Result<Shape, ModelError> {
    let name = node.name.as_str();
    if name.is_empty() {
        return Err(ModelError::node(&format!("#{id}"), "empty node name"));
    }
    if id == 0 && node.op != Op::Input {
        return Err(ModelError::node(name, "node 0 must be the Input node"));
    }
    if let Some(&bad) = node.inputs.iter().find(|&&i| i >= id) {
        return Err(ModelError::node(
            name,
            format!("input {bad} is not an earlier node"),
        ));
    }
    let arity = |n: usize| -> Result<(), ModelError> {
        if node.inputs.len() == n {
            Ok(())
        } else {
            Err(ModelError::node(
                name,
                format!(
                    "{} takes {n} input(s), got {}",
                    node.op.kind(),
                    node.inputs.len()
                ),
            ))
        }
    };
    let first = || &shapes[node.inputs[0]];
    let chw = |s: &Shape| -> Result<(usize, usize, usize), ModelError> {
        match *s {
            Shape::Chw { c, h, w } => Ok((c, h, w)),
            Shape::Flat(_) => Err(ModelError::shape(
                name,
                format!("{} needs a [c, h, w] input, got {s}", node.op.kind()),
            )),
        }
    };
    match &node.op {
        Op::Input => {
            if id != 0 {
                return Err(ModelError::node(name, "only node 0 may be an Input"));
            }
            arity(0)?;
            let [c, h, w] = input;
            if c == 0 || h == 0 || w == 0 {
                return Err(ModelError::shape(
                    name,
                    format!("empty input shape {input:?}"),
                ));
            }
            Ok(Shape::Chw { c, h, w })
        }
        Op::Conv2d(conv) => {
            arity(1)?;
            let (c, h, w) = chw(first())?;
            let [kh, kw] = conv.kernel;
            let [sh, sw] = conv.stride;
            let [ph, pw] = conv.padding;
            if conv.groups == 0 || kh == 0 || kw == 0 || sh == 0 || sw == 0 || conv.c_out == 0 {
                return Err(ModelError::node(
                    name,
                    "zero groups, kernel, stride or output channels",
                ));
            }
            if conv.c_in % conv.groups != 0 || conv.c_out % conv.groups != 0 {
                return Err(ModelError::node(
                    name,
                    format!(
                        "groups {} must divide c_in {} and c_out {}",
                        conv.groups, conv.c_in, conv.c_out
                    ),
                ));
            }
            if c != conv.c_in {
                return Err(ModelError::shape(
                    name,
                    format!("conv expects {} input channels, got {c}", conv.c_in),
                ));
            }
            let expect = conv.c_out * (conv.c_in / conv.groups) * kh * kw;
            if conv.weight.len() != expect {
                return Err(ModelError::node(
                    name,
                    format!("weight has {} values, expected {expect}", conv.weight.len()),
                ));
            }
            if conv.bias.len() != conv.c_out {
                return Err(ModelError::node(
                    name,
                    format!(
                        "bias has {} values, expected {}",
                        conv.bias.len(),
                        conv.c_out
                    ),
                ));
            }
            if h + 2 * ph < kh || w + 2 * pw < kw {
                return Err(ModelError::shape(
                    name,
                    format!(
                        "kernel {kh}x{kw} larger than padded input {}x{}",
                        h + 2 * ph,
                        w + 2 * pw
                    ),
                ));
            }
            Ok(Shape::Chw {
                c: conv.c_out,
                h: (h + 2 * ph - kh) / sh + 1,
                w: (w + 2 * pw - kw) / sw + 1,
            })
        }
        Op::Relu(relu) => {
            arity(1)?;
            let s = first().clone();
            if let Some(chans) = &relu.channels {
                let c = s.channels();
                if chans.windows(2).any(|p| p[0] >= p[1]) {
                    return Err(ModelError::node(
                        name,
                        "ReLU channel list must be strictly increasing",
                    ));
                }
                if let Some(&bad) = chans.iter().find(|&&ch| ch >= c) {
                    return Err(ModelError::shape(
                        name,
                        format!("ReLU channel {bad} out of range (input has {c})"),
                    ));
                }
            }
            if let Some(mask) = &relu.elements {
                if relu.channels.is_some() {
                    return Err(ModelError::node(
                        name,
                        "a ReLU has a channel list or an element mask, not both",
                    ));
                }
                if mask.len() != s.numel() || !mask.is_consistent() {
                    return Err(ModelError::shape(
                        name,
                        format!(
                            "ReLU element mask covers {} elements, the input has {}",
                            mask.len(),
                            s.numel()
                        ),
                    ));
                }
            }
            check_cap(name, relu.cap)?;
            Ok(s)
        }
        Op::Identity => {
            arity(1)?;
            Ok(first().clone())
        }
        Op::Add => {
            arity(2)?;
            let (a, b) = (&shapes[node.inputs[0]], &shapes[node.inputs[1]]);
            if a != b {
                return Err(ModelError::shape(name, format!("Add of {a} and {b}")));
            }
            Ok(a.clone())
        }
        Op::SliceChannels { start, len } => {
            arity(1)?;
            let s = first();
            let c = s.channels();
            if *len == 0 || start + len > c {
                return Err(ModelError::shape(
                    name,
                    format!(
                        "channel slice {start}..{} of an input with {c} channels",
                        start + len
                    ),
                ));
            }
            Ok(match *s {
                Shape::Chw { h, w, .. } => Shape::Chw { c: *len, h, w },
                Shape::Flat(_) => Shape::Flat(*len),
            })
        }
        Op::Concat => {
            if node.inputs.is_empty() {
                return Err(ModelError::node(name, "concat needs at least one input"));
            }
            let s0 = &shapes[node.inputs[0]];
            let mut total = 0;
            for &i in &node.inputs {
                let s = &shapes[i];
                let same_kind = match (s0, s) {
                    (Shape::Chw { h: h0, w: w0, .. }, Shape::Chw { h, w, .. }) => {
                        h0 == h && w0 == w
                    }
                    (Shape::Flat(_), Shape::Flat(_)) => true,
                    _ => false,
                };
                if !same_kind {
                    return Err(ModelError::shape(name, format!("concat of {s0} and {s}")));
                }
                total += s.channels();
            }
            Ok(match *s0 {
                Shape::Chw { h, w, .. } => Shape::Chw { c: total, h, w },
                Shape::Flat(_) => Shape::Flat(total),
            })
        }
        Op::AvgPool(pool) => {
            arity(1)?;
            let (c, h, w) = chw(first())?;
            let (oh, ow) = pool_output(name, pool, h, w)?;
            Ok(Shape::Chw { c, h: oh, w: ow })
        }
        Op::MaxPool(mp) => {
            arity(1)?;
            let (c, h, w) = chw(first())?;
            check_cap(name, mp.cap)?;
            let (oh, ow) = pool_output(name, &mp.pool, h, w)?;
            Ok(Shape::Chw { c, h: oh, w: ow })
        }
        Op::Affine(a) => {
            arity(1)?;
            let s = first().clone();
            let (c, h, w) = s.dims();
            for (what, list) in [("scale", &a.scale), ("shift", &a.shift)] {
                if !crate::ops::Affine::fits(list.len(), c, h * w) {
                    return Err(ModelError::shape(
                        name,
                        format!(
                            "{what} has {} values; {s} needs 1, {c} or {}",
                            list.len(),
                            s.numel()
                        ),
                    ));
                }
                if list.iter().any(|v| !v.is_finite()) {
                    return Err(ModelError::node(name, format!("non-finite {what}")));
                }
            }
            Ok(s)
        }
        Op::Pad(p) => {
            arity(1)?;
            let (c, h, w) = chw(first())?;
            if p.iter().any(|&v| v > 1 << 20) {
                return Err(ModelError::shape(name, format!("padding {p:?} too large")));
            }
            let out = [c + p[0] + p[3], h + p[1] + p[4], w + p[2] + p[5]];
            Ok(Shape::Chw {
                c: out[0],
                h: out[1],
                w: out[2],
            })
        }
        Op::Slice(sl) => {
            arity(1)?;
            let (c, h, w) = chw(first())?;
            for (ax, n) in [c, h, w].into_iter().enumerate() {
                let (st, len, step) = (sl.start[ax], sl.len[ax], sl.step[ax]);
                if len == 0
                    || step == 0
                    || st >= n
                    || (len - 1)
                        .checked_mul(step)
                        .is_none_or(|span| span >= n - st)
                {
                    return Err(ModelError::shape(
                        name,
                        format!("slice start {st}, length {len}, step {step} on an axis of {n}"),
                    ));
                }
            }
            Ok(Shape::Chw {
                c: sl.len[0],
                h: sl.len[1],
                w: sl.len[2],
            })
        }
        Op::GatherMean(g) => {
            arity(1)?;
            let n = first().numel();
            let (oc, oh, ow) = g.out.dims();
            let m = oc
                .checked_mul(oh)
                .and_then(|v| v.checked_mul(ow))
                .filter(|&v| v <= 1 << 28)
                .ok_or_else(|| ModelError::node(name, "gather-mean output too large"))?;
            if g.sets.len() != m
                || g.divisors.len() != m
                || g.divisors.iter().any(|&d| d == 0 || d > 1 << 16)
                || g.sets
                    .iter()
                    .any(|s| s.len() > 1 << 16 || s.iter().any(|&i| i as usize >= n))
            {
                return Err(ModelError::node(
                    name,
                    format!("gather-mean lists do not fit an input of {n} and an output of {m}"),
                ));
            }
            Ok(g.out.clone())
        }
        Op::PermuteChannels(order) => {
            arity(1)?;
            let s = first().clone();
            let c = s.channels();
            let mut seen = vec![false; c];
            if order.len() != c
                || order
                    .iter()
                    .any(|&i| i >= c || std::mem::replace(&mut seen[i], true))
            {
                return Err(ModelError::node(
                    name,
                    format!("channel order is not a permutation of 0..{c}"),
                ));
            }
            Ok(s)
        }
        Op::GlobalAvgPool => {
            arity(1)?;
            let (c, _, _) = chw(first())?;
            Ok(Shape::Chw { c, h: 1, w: 1 })
        }
        Op::Flatten => {
            arity(1)?;
            Ok(Shape::Flat(first().numel()))
        }
        Op::Linear(lin) => {
            arity(1)?;
            let s = first();
            match *s {
                Shape::Flat(n) if n == lin.in_features => {}
                _ => {
                    return Err(ModelError::shape(
                        name,
                        format!("linear expects a flat [{}] input, got {s}", lin.in_features),
                    ))
                }
            }
            if lin.out_features == 0 {
                return Err(ModelError::node(name, "zero output features"));
            }
            if lin.weight.len() != lin.in_features * lin.out_features {
                return Err(ModelError::node(
                    name,
                    format!(
                        "weight has {} values, expected {}",
                        lin.weight.len(),
                        lin.in_features * lin.out_features
                    ),
                ));
            }
            if lin.bias.len() != lin.out_features {
                return Err(ModelError::node(
                    name,
                    format!(
                        "bias has {} values, expected {}",
                        lin.bias.len(),
                        lin.out_features
                    ),
                ));
            }
            Ok(Shape::Flat(lin.out_features))
        }
    }
}

/// Output size of a pooling window, or a shape error naming the node.
fn pool_output(
    name: &str,
    pool: &crate::ops::Pool,
    h: usize,
    w: usize,
) -> Result<(usize, usize), ModelError> {
    pool.output_size(h, w).ok_or_else(|| {
        ModelError::shape(
            name,
            format!(
                "pool window {:?} stride {:?} pads {:?} does not fit input {h}x{w}",
                pool.kernel, pool.stride, pool.pads
            ),
        )
    })
}

/// A ReLU cap must be finite and positive.
fn check_cap(name: &str, cap: Option<f32>) -> Result<(), ModelError> {
    match cap {
        Some(c) if !(c.is_finite() && c > 0.0) => Err(ModelError::node(
            name,
            format!("ReLU cap {c} must be finite and positive"),
        )),
        _ => Ok(()),
    }
}
