//! Graph rewrites after import, in order:
//! 1. dead nodes (not reaching the served output) are dropped;
//! 2. the exported form of a channel-subset ReLU (`Split` → `Relu`/`Clip`/`Identity` → `Concat`,
//!    see the module docs of `onnx`) becomes one `Relu { channels }`;
//! 3. `Add(Mul(Relu(x), m), Mul(x, 1 − m))` with a constant 0/1 mask `m` (SNL / SENet style,
//!    and what `pi-opt` writes) becomes `Relu { elements: m }` on x;
//! 4. a plain or capped ReLU directly before or after a `MaxPool` is fused into it;
//! 5. affine maps (BatchNorm not after a conv, `Mul`/`Div`/`Add`/`Sub` by constants) are folded
//!    into the single-use Conv/Gemm that produces their input, else (their scale) into the
//!    Conv/Gemm layers that consume them (their shift stays as a free server-side addition);
//! 6. what remains with a per-channel or scalar scale becomes a depthwise 1×1 convolution (flat
//!    vectors: a diagonal linear layer); per-element scales stay and are refused by the plan.

use crate::graph::{Affine, Conv2d, Linear, MaxPool, Model, Node, NodeId, Op, Relu, Shape};
use crate::ModelError;

use super::conv::scale_producer;

/// Runs every rewrite (see the module docs).
pub(super) fn simplify(model: Model) -> Result<Model, ModelError> {
    let model = remove_dead(model, &[]);
    let model = fuse_subset_relus(model);
    let model = fuse_masked_relus(model)?;
    let model = fuse_relu_maxpool(model);
    let model = fold_affines(model)?;
    let model = lower_affines(model)?;
    Ok(remove_dead(model, &[]))
}

/// Consumer counts (the output counts as one more).
fn use_counts(model: &Model) -> Vec<usize> {
    let mut uses = vec![0usize; model.nodes.len()];
    for nd in &model.nodes {
        nd.inputs.iter().for_each(|&i| uses[i] += 1);
    }
    if let Some(u) = uses.get_mut(model.output) {
        *u += 1;
    }
    uses
}

/// Drops nodes listed in `dead` and every node that does not reach the output (the input stays).
fn remove_dead(model: Model, dead: &[NodeId]) -> Model {
    let n = model.nodes.len();
    let mut live = vec![false; n];
    let mut stack = vec![model.output];
    while let Some(v) = stack.pop() {
        if v < n && !live[v] && !dead.contains(&v) {
            live[v] = true;
            stack.extend(&model.nodes[v].inputs);
        }
    }
    live[0] = true;
    if live.iter().all(|&l| l) {
        return model;
    }
    let Model {
        name,
        input,
        nodes,
        output,
    } = model;
    let mut map = vec![usize::MAX; n];
    let mut kept = Vec::with_capacity(n);
    for (i, mut nd) in nodes.into_iter().enumerate() {
        if !live[i] {
            continue;
        }
        nd.inputs.iter_mut().for_each(|x| *x = map[*x]);
        map[i] = kept.len();
        kept.push(nd);
    }
    Model {
        name,
        input,
        nodes: kept,
        output: map[output],
    }
}

/// Channels of node `id`'s output (shape inference over the prefix).
fn infer_channels(nodes: &[Node], input: [usize; 3], id: NodeId) -> Option<usize> {
    crate::shape::infer_shapes(input, &nodes[..=id])
        .ok()
        .and_then(|s| s.last().map(|s| s.channels()))
}

/// Rewrite 2: `<n>::part<i>` slices → `<n>::relu<i>` / `<n>::id<i>` → Concat `<n>` becomes one
/// `Relu { channels }` node named `<n>` (the parts' ReLUs may share one cap).
fn fuse_subset_relus(mut model: Model) -> Model {
    let uses = use_counts(&model);
    let count = model.nodes.len();
    let mut dead = Vec::new();
    for id in 0..count {
        if model.nodes[id].op != Op::Concat {
            continue;
        }
        let nodes = &model.nodes;
        let cname = nodes[id].name.clone();
        let mut src = None;
        let mut next = 0usize;
        let mut selected = Vec::new();
        let mut parts = Vec::new();
        let mut cap: Option<Option<f32>> = None;
        let mut ok = true;
        for (j, &p) in nodes[id].inputs.iter().enumerate() {
            let pn = &nodes[p];
            let relu_cap = match &pn.op {
                Op::Relu(r) if r.channels.is_none() && r.elements.is_none() => Some(r.cap),
                _ => None,
            };
            let is_relu = relu_cap.is_some() && pn.name == format!("{cname}::relu{j}");
            let is_id = pn.op == Op::Identity && pn.name == format!("{cname}::id{j}");
            if !(is_relu || is_id) || uses[p] != 1 || pn.inputs.len() != 1 {
                ok = false;
                break;
            }
            if let Some(c) = relu_cap.filter(|_| is_relu) {
                if *cap.get_or_insert(c) != c {
                    ok = false;
                    break;
                }
            }
            let s = pn.inputs[0];
            let sn = &nodes[s];
            let Op::SliceChannels { start, len } = sn.op else {
                ok = false;
                break;
            };
            if sn.name != format!("{cname}::part{j}")
                || uses[s] != 1
                || start != next
                || *src.get_or_insert(sn.inputs[0]) != sn.inputs[0]
            {
                ok = false;
                break;
            }
            if is_relu {
                selected.extend(start..start + len);
            }
            next = start + len;
            parts.push(p);
            parts.push(s);
        }
        let Some(src) = src else { continue };
        // The slices must cover every channel of the source.
        if !ok || infer_channels(nodes, model.input, src) != Some(next) {
            continue;
        }
        dead.extend(parts);
        model.nodes[id].op = Op::Relu(Relu {
            channels: Some(selected),
            elements: None,
            cap: cap.flatten(),
        });
        model.nodes[id].inputs = vec![src];
    }
    remove_dead(model, &dead)
}

/// The scale list of a scale-only affine node.
fn scale_only(op: &Op) -> Option<&[f32]> {
    match op {
        Op::Affine(a) if a.shift.iter().all(|&v| v == 0.0) && !a.scale.is_empty() => Some(&a.scale),
        _ => None,
    }
}

/// Rewrite 3: `Add(Mul(Relu(x), m), Mul(x, 1 − m))` → `Relu { elements: m }` on x.
fn fuse_masked_relus(mut model: Model) -> Result<Model, ModelError> {
    let shapes = model.shapes()?;
    let uses = use_counts(&model);
    let mut dead = Vec::new();
    for id in 0..model.nodes.len() {
        if model.nodes[id].op != Op::Add {
            continue;
        }
        let nodes = &model.nodes;
        let (p, q) = (nodes[id].inputs[0], nodes[id].inputs[1]);
        // Find which operand is the masked ReLU.
        let pattern = |kept: NodeId, lin: NodeId| -> Option<(NodeId, NodeId, Vec<bool>)> {
            let (m_keep, m_lin) = (scale_only(&nodes[kept].op)?, scale_only(&nodes[lin].op)?);
            let r = nodes[kept].inputs[0];
            let x = nodes[lin].inputs[0];
            let plain = matches!(&nodes[r].op, Op::Relu(rl) if rl.is_plain());
            if !plain || nodes[r].inputs != [x] || uses[kept] != 1 || uses[lin] != 1 || uses[r] != 1
            {
                return None;
            }
            let (c, h, w) = shapes[x].dims();
            let n = c * h * w;
            let mut bits = Vec::with_capacity(n);
            for i in 0..n {
                let (a, b) = (
                    Affine::at(m_keep, i, c, h * w, f32::NAN),
                    Affine::at(m_lin, i, c, h * w, f32::NAN),
                );
                match (a, b) {
                    (a, b) if a == 1.0 && b == 0.0 => bits.push(true),
                    (a, b) if a == 0.0 && b == 1.0 => bits.push(false),
                    _ => return None,
                }
            }
            Some((x, r, bits))
        };
        let Some((x, r, bits)) = pattern(p, q).or_else(|| pattern(q, p)) else {
            continue;
        };
        dead.extend([p, q, r]);
        model.nodes[id].op = Op::Relu(Relu::elements(crate::graph::ElementMask::from_bools(&bits)));
        model.nodes[id].inputs = vec![x];
    }
    Ok(remove_dead(model, &dead))
}

/// Rewrite 4: `MaxPool(Relu(x))` and `Relu(MaxPool(x))` (ReLU on every element, capped or not,
/// used only there) → one `MaxPool { relu, cap }`.
fn fuse_relu_maxpool(mut model: Model) -> Model {
    let uses = use_counts(&model);
    let mut dead = Vec::new();
    let full_relu = |op: &Op| match op {
        Op::Relu(r) if r.channels.is_none() && r.elements.is_none() => Some(r.cap),
        _ => None,
    };
    for id in 0..model.nodes.len() {
        let src = match model.nodes[id].inputs.first() {
            Some(&s) => s,
            None => continue,
        };
        match (&model.nodes[id].op, &model.nodes[src].op) {
            (Op::MaxPool(mp), inner) if !mp.relu && mp.cap.is_none() && uses[src] == 1 => {
                if let Some(cap) = full_relu(inner) {
                    let x = model.nodes[src].inputs[0];
                    model.nodes[id].op = Op::MaxPool(MaxPool {
                        pool: mp.pool,
                        relu: true,
                        cap,
                    });
                    model.nodes[id].inputs = vec![x];
                    dead.push(src);
                }
            }
            (outer, Op::MaxPool(mp)) if !mp.relu && mp.cap.is_none() && uses[src] == 1 => {
                if let Some(cap) = full_relu(outer) {
                    let x = model.nodes[src].inputs[0];
                    model.nodes[id].op = Op::MaxPool(MaxPool {
                        pool: mp.pool,
                        relu: true,
                        cap,
                    });
                    model.nodes[id].inputs = vec![x];
                    dead.push(src);
                }
            }
            _ => {}
        }
    }
    remove_dead(model, &dead)
}

/// A per-channel (or scalar) list expanded to `c` values; `None` for per-element lists.
fn per_channel(list: &[f32], c: usize, hw: usize, default: f32) -> Option<Vec<f64>> {
    match list.len() {
        0 => Some(vec![default as f64; c]),
        1 => Some(vec![list[0] as f64; c]),
        n if n == c => Some(list.iter().map(|&v| v as f64).collect()),
        n if n == c * hw && hw == 1 => Some(list.iter().map(|&v| v as f64).collect()),
        _ => None,
    }
}

/// Rewrite 5: folds affine maps into neighbouring linear layers.
fn fold_affines(mut model: Model) -> Result<Model, ModelError> {
    let shapes = model.shapes()?;
    let mut dead = Vec::new();
    for id in 0..model.nodes.len() {
        let Op::Affine(a) = model.nodes[id].op.clone() else {
            continue;
        };
        let uses = use_counts(&model);
        let x = model.nodes[id].inputs[0];
        let (c, h, w) = shapes[x].dims();
        let (Some(scale), Some(shift)) = (
            per_channel(&a.scale, c, h * w, 1.0),
            per_channel(&a.shift, c, h * w, 0.0),
        ) else {
            continue;
        };
        // Backward: into the single-use Conv/Linear producing x.
        if uses[x] == 1 && scale_producer(&mut model.nodes[x].op, &scale, &shift) {
            rewire(&mut model, id, x);
            dead.push(id);
            continue;
        }
        if a.is_shift_only() || scale.contains(&0.0) || id == model.output {
            continue;
        }
        // Forward: the scale into every consumer (all Conv/Linear reading per input channel).
        let consumers = model.consumers(id);
        let foldable = !consumers.is_empty()
            && consumers.iter().all(|&k| match &model.nodes[k].op {
                Op::Conv2d(cv) => cv.c_in == c,
                Op::Linear(l) => matches!(shapes[id], Shape::Flat(n) if n == l.in_features),
                _ => false,
            });
        if !foldable {
            continue;
        }
        for &k in &consumers {
            scale_inputs(&mut model.nodes[k].op, &scale);
        }
        if shift.iter().all(|&b| b == 0.0) {
            rewire(&mut model, id, x);
            dead.push(id);
        } else {
            let shift: Vec<f32> = shift
                .iter()
                .zip(&scale)
                .map(|(&b, &s)| (b / s) as f32)
                .collect();
            model.nodes[id].op = Op::Affine(Affine {
                scale: vec![],
                shift,
            });
        }
    }
    Ok(remove_dead(model, &dead))
}

/// Points every consumer of `from` (and the output) at `to`.
fn rewire(model: &mut Model, from: NodeId, to: NodeId) {
    for nd in &mut model.nodes {
        nd.inputs
            .iter_mut()
            .filter(|i| **i == from)
            .for_each(|i| *i = to);
    }
    if model.output == from {
        model.output = to;
    }
}

/// Multiplies the weights reading input channel / feature i by `scale[i]`.
fn scale_inputs(op: &mut Op, scale: &[f64]) {
    match op {
        Op::Conv2d(conv) => {
            let cin_g = conv.c_in / conv.groups;
            let cout_g = conv.c_out / conv.groups;
            let taps = conv.kernel[0] * conv.kernel[1];
            for oc in 0..conv.c_out {
                let g = oc / cout_g;
                for icl in 0..cin_g {
                    let s = scale[g * cin_g + icl];
                    let at = (oc * cin_g + icl) * taps;
                    for wv in &mut conv.weight[at..at + taps] {
                        *wv = (*wv as f64 * s) as f32;
                    }
                }
            }
        }
        Op::Linear(lin) => {
            let i = lin.in_features;
            for o in 0..lin.out_features {
                for (wv, &s) in lin.weight[o * i..(o + 1) * i].iter_mut().zip(scale) {
                    *wv = (*wv as f64 * s) as f32;
                }
            }
        }
        _ => {}
    }
}

/// Rewrite 6: a remaining affine map with a per-channel or scalar scale becomes a depthwise 1×1
/// convolution (flat vectors: a diagonal linear layer), i.e. an HE layer.
fn lower_affines(mut model: Model) -> Result<Model, ModelError> {
    let shapes = model.shapes()?;
    for id in 0..model.nodes.len() {
        let Op::Affine(a) = &model.nodes[id].op else {
            continue;
        };
        if a.is_shift_only() {
            continue;
        }
        let x = model.nodes[id].inputs[0];
        let (c, h, w) = shapes[x].dims();
        let (Some(scale), Some(shift)) = (
            per_channel(&a.scale, c, h * w, 1.0),
            per_channel(&a.shift, c, h * w, 0.0),
        ) else {
            continue;
        };
        let (s32, b32): (Vec<f32>, Vec<f32>) = (
            scale.iter().map(|&v| v as f32).collect(),
            shift.iter().map(|&v| v as f32).collect(),
        );
        model.nodes[id].op = match shapes[x] {
            Shape::Chw { .. } => Op::Conv2d(Conv2d {
                c_in: c,
                c_out: c,
                kernel: [1, 1],
                stride: [1, 1],
                padding: [0, 0],
                groups: c,
                weight: s32,
                bias: b32,
            }),
            Shape::Flat(_) => {
                let mut wt = vec![0f32; c * c];
                (0..c).for_each(|i| wt[i * c + i] = s32[i]);
                Op::Linear(Linear {
                    in_features: c,
                    out_features: c,
                    weight: wt,
                    bias: b32,
                })
            }
        };
    }
    Ok(model)
}
