//! Float32 reference inference (the semantics onnxruntime gives the exported model).

use crate::graph::{Affine, Model, Op, Shape};
use crate::kernel::{
    channel_sums, conv2d, linear, pad, permute_channels, pool_sum, run, strided_slice,
};
use crate::ModelError;

/// Runs `model` on a CHW `input`; returns the output tensor, flattened.
pub fn infer(model: &Model, input: &[f32]) -> Result<Vec<f32>, ModelError> {
    let mut all = eval(model, input, false)?;
    Ok(all.pop().unwrap_or_default())
}

/// Runs `model` on a CHW `input`; returns every node's output tensor (index = node id).
pub fn infer_all(model: &Model, input: &[f32]) -> Result<Vec<Vec<f32>>, ModelError> {
    eval(model, input, true)
}

/// Shared body of [`infer`] and [`infer_all`].
fn eval(model: &Model, input: &[f32], keep_all: bool) -> Result<Vec<Vec<f32>>, ModelError> {
    let shapes = model.shapes()?;
    let expect = shapes[0].numel();
    if input.len() != expect {
        return Err(ModelError::BadInput(format!(
            "input has {} values, the model takes {} ({})",
            input.len(),
            expect,
            shapes[0]
        )));
    }
    run(model, input.to_vec(), keep_all, |id, node, ins| {
        let out_shape = &shapes[id];
        let in_shape = &shapes[node.inputs[0]];
        Ok(match &node.op {
            Op::Input => ins[0].to_vec(),
            Op::Conv2d(conv) => {
                let (_, h, w) = in_shape.dims();
                let (_, oh, ow) = out_shape.dims();
                let mut out = vec![0f32; out_shape.numel()];
                conv2d(
                    conv,
                    &conv.weight,
                    &conv.bias,
                    ins[0],
                    (h, w),
                    &mut out,
                    (oh, ow),
                );
                out
            }
            Op::Linear(lin) => {
                let mut out = vec![0f32; lin.out_features];
                linear(&lin.weight, &lin.bias, ins[0], &mut out);
                out
            }
            Op::Relu(relu) => {
                let (c, h, w) = in_shape.dims();
                let sel = relu.selection(c, h * w);
                let cap = relu.cap.unwrap_or(f32::INFINITY);
                ins[0]
                    .iter()
                    .zip(sel)
                    .map(|(&v, s)| if s { v.max(0.0).min(cap) } else { v })
                    .collect()
            }
            Op::Identity | Op::Flatten => ins[0].to_vec(),
            Op::Add => ins[0].iter().zip(ins[1]).map(|(a, b)| a + b).collect(),
            Op::SliceChannels { start, len } => {
                let (_, h, w) = in_shape.dims();
                ins[0][start * h * w..(start + len) * h * w].to_vec()
            }
            Op::Concat => ins.concat(),
            Op::AvgPool(pool) => {
                let (c, h, w) = in_shape.dims();
                let mut out = vec![0f32; out_shape.numel()];
                pool_sum(pool, ins[0], (c, h, w), &mut out);
                let windows = pool.windows(h, w);
                for (i, v) in out.iter_mut().enumerate() {
                    *v /= windows[i % windows.len()].divisor as f32;
                }
                out
            }
            Op::MaxPool(mp) => {
                let (c, h, w) = in_shape.dims();
                let windows = mp.pool.windows(h, w);
                let mut out = Vec::with_capacity(out_shape.numel());
                for ch in 0..c {
                    let plane = &ins[0][ch * h * w..(ch + 1) * h * w];
                    for win in &windows {
                        let mut m = win
                            .indices(w)
                            .map(|i| plane[i])
                            .fold(f32::NEG_INFINITY, f32::max);
                        if mp.relu {
                            m = m.max(0.0);
                        }
                        if let Some(cap) = mp.cap {
                            m = m.min(cap);
                        }
                        out.push(m);
                    }
                }
                out
            }
            Op::Affine(a) => {
                let (c, h, w) = in_shape.dims();
                ins[0]
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        v * Affine::at(&a.scale, i, c, h * w, 1.0)
                            + Affine::at(&a.shift, i, c, h * w, 0.0)
                    })
                    .collect()
            }
            Op::Pad(p) => pad(p, ins[0], in_shape.dims()),
            Op::Slice(sl) => strided_slice(sl, ins[0], in_shape.dims()),
            Op::GatherMean(g) => g
                .sets
                .iter()
                .zip(&g.divisors)
                .map(|(set, &d)| set.iter().map(|&i| ins[0][i as usize]).sum::<f32>() / d as f32)
                .collect(),
            Op::PermuteChannels(order) => {
                let (_, h, w) = in_shape.dims();
                permute_channels(order, ins[0], h * w)
            }
            Op::GlobalAvgPool => {
                let (c, h, w) = in_shape.dims();
                let inv = 1.0 / (h * w) as f32;
                channel_sums(ins[0], c, h * w)
                    .into_iter()
                    .map(|s| s * inv)
                    .collect()
            }
        })
    })
}

/// Index of the largest value (first one on ties); `None` for an empty slice.
pub fn argmax(v: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i)
}

/// Shape-generic helper used in docs/tests: the number of values a model's input takes.
pub fn input_len(model: &Model) -> usize {
    let [c, h, w] = model.input;
    Shape::Chw { c, h, w }.numel()
}
