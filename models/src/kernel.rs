//! Direct-loop tensor kernels shared by the float (`f32`) and ring (`Wrapping<u64>`) references,
//! and the node-by-node driver that frees tensors after their last use.

use std::num::Wrapping;
use std::ops::{Add, AddAssign, Mul};

use crate::graph::{Conv2d, Model, Node, NodeId, Pool, Slice};
use crate::ModelError;

/// Element type of a reference computation: `f32`, or `Wrapping<u64>` for ring arithmetic mod 2^64.
pub(crate) trait Scalar:
    Copy + Default + Add<Output = Self> + Mul<Output = Self> + AddAssign + Send + Sync
{
}
impl Scalar for f32 {}
impl Scalar for Wrapping<u64> {}

/// Convolution with zero padding; `weight` is `[c_out, c_in/groups, kh, kw]`, tensors are CHW.
pub(crate) fn conv2d<T: Scalar>(
    conv: &Conv2d,
    weight: &[T],
    bias: &[T],
    input: &[T],
    (h, w): (usize, usize),
    out: &mut [T],
    (oh, ow): (usize, usize),
) {
    let [kh, kw] = conv.kernel;
    let [sh, sw] = conv.stride;
    let [ph, pw] = conv.padding;
    let cin_g = conv.c_in / conv.groups;
    let cout_g = conv.c_out / conv.groups;
    for oc in 0..conv.c_out {
        let g = oc / cout_g;
        let o = &mut out[oc * oh * ow..(oc + 1) * oh * ow];
        o.iter_mut().for_each(|v| *v = bias[oc]);
        for icl in 0..cin_g {
            let ic = g * cin_g + icl;
            let inp = &input[ic * h * w..(ic + 1) * h * w];
            for ky in 0..kh {
                for kx in 0..kw {
                    let wv = weight[((oc * cin_g + icl) * kh + ky) * kw + kx];
                    // Output columns whose input column ox·sw + kx − pw lies in [0, w).
                    let ox_lo = if pw > kx { (pw - kx).div_ceil(sw) } else { 0 };
                    let ox_hi = if w + pw > kx {
                        ((w + pw - kx - 1) / sw + 1).min(ow)
                    } else {
                        0
                    };
                    if ox_lo >= ox_hi {
                        continue;
                    }
                    for oy in 0..oh {
                        let iy = oy * sh + ky;
                        if iy < ph || iy - ph >= h {
                            continue;
                        }
                        let row = &inp[(iy - ph) * w..(iy - ph + 1) * w];
                        let orow = &mut o[oy * ow..(oy + 1) * ow];
                        if sw == 1 {
                            let off = ox_lo + kx - pw;
                            let src = &row[off..off + (ox_hi - ox_lo)];
                            for (d, &s) in orow[ox_lo..ox_hi].iter_mut().zip(src) {
                                *d += wv * s;
                            }
                        } else {
                            for ox in ox_lo..ox_hi {
                                orow[ox] += wv * row[ox * sw + kx - pw];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `out[o] = bias[o] + Σ_i weight[o, i] · x[i]`.
pub(crate) fn linear<T: Scalar>(weight: &[T], bias: &[T], x: &[T], out: &mut [T]) {
    let n = x.len();
    for (o, v) in out.iter_mut().enumerate() {
        let row = &weight[o * n..(o + 1) * n];
        let mut acc = bias[o];
        for (&wv, &xv) in row.iter().zip(x) {
            acc += wv * xv;
        }
        *v = acc;
    }
}

/// Window sums of an average pool (positions outside the input add nothing); CHW in and out.
pub(crate) fn pool_sum<T: Scalar>(
    pool: &Pool,
    input: &[T],
    (c, h, w): (usize, usize, usize),
    out: &mut [T],
) {
    let windows = pool.windows(h, w);
    let per = windows.len();
    for ch in 0..c {
        let inp = &input[ch * h * w..(ch + 1) * h * w];
        for (o, win) in windows.iter().enumerate() {
            let mut acc = T::default();
            for y in win.rows.0..win.rows.1 {
                for &v in &inp[y * w + win.cols.0..y * w + win.cols.1] {
                    acc += v;
                }
            }
            out[ch * per + o] = acc;
        }
    }
}

/// Zero padding `[c0, h0, w0, c1, h1, w1]` of a CHW tensor.
pub(crate) fn pad<T: Copy + Default>(
    p: &[usize; 6],
    input: &[T],
    (c, h, w): (usize, usize, usize),
) -> Vec<T> {
    let (oc, oh, ow) = (c + p[0] + p[3], h + p[1] + p[4], w + p[2] + p[5]);
    let mut out = vec![T::default(); oc * oh * ow];
    for ch in 0..c {
        for y in 0..h {
            let dst = ((ch + p[0]) * oh + y + p[1]) * ow + p[2];
            out[dst..dst + w].copy_from_slice(&input[(ch * h + y) * w..(ch * h + y + 1) * w]);
        }
    }
    out
}

/// A strided slice of a CHW tensor.
pub(crate) fn strided_slice<T: Copy>(
    sl: &Slice,
    input: &[T],
    (_, h, w): (usize, usize, usize),
) -> Vec<T> {
    let mut out = Vec::with_capacity(sl.len.iter().product());
    for i in 0..sl.len[0] {
        let ch = sl.start[0] + i * sl.step[0];
        for j in 0..sl.len[1] {
            let y = sl.start[1] + j * sl.step[1];
            let row = &input[(ch * h + y) * w..(ch * h + y + 1) * w];
            out.extend((0..sl.len[2]).map(|k| row[sl.start[2] + k * sl.step[2]]));
        }
    }
    out
}

/// Channel permutation: output channel j is input channel `order[j]`.
pub(crate) fn permute_channels<T: Copy>(order: &[usize], input: &[T], hw: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(input.len());
    for &ch in order {
        out.extend_from_slice(&input[ch * hw..(ch + 1) * hw]);
    }
    out
}

/// Per-channel sums over the spatial extent (global pooling).
pub(crate) fn channel_sums<T: Scalar>(input: &[T], c: usize, hw: usize) -> Vec<T> {
    (0..c)
        .map(|ch| {
            input[ch * hw..(ch + 1) * hw]
                .iter()
                .fold(T::default(), |a, &b| a + b)
        })
        .collect()
}

/// Evaluates `model` node by node: `step(id, node, inputs)` computes node `id` from its inputs'
/// tensors. Returns every node's tensor when `keep_all`, otherwise only the output's (tensors are
/// freed after their last use).
pub(crate) fn run<T: Clone>(
    model: &Model,
    input: Vec<T>,
    keep_all: bool,
    mut step: impl FnMut(NodeId, &Node, &[&[T]]) -> Result<Vec<T>, ModelError>,
) -> Result<Vec<Vec<T>>, ModelError> {
    let n = model.nodes.len();
    let mut last_use: Vec<usize> = (0..n).collect();
    for (id, node) in model.nodes.iter().enumerate() {
        for &i in &node.inputs {
            last_use[i] = last_use[i].max(id);
        }
    }
    last_use[model.output] = usize::MAX;
    let mut vals: Vec<Option<Vec<T>>> = vec![None; n];
    vals[0] = Some(input);
    for (id, node) in model.nodes.iter().enumerate().skip(1) {
        let out = {
            let ins: Vec<&[T]> = node
                .inputs
                .iter()
                .map(|&i| {
                    vals[i]
                        .as_deref()
                        .ok_or_else(|| ModelError::node(&node.name, "input tensor was freed"))
                })
                .collect::<Result<_, _>>()?;
            step(id, node, &ins)?
        };
        vals[id] = Some(out);
        if !keep_all {
            for &i in &node.inputs {
                if last_use[i] == id {
                    vals[i] = None;
                }
            }
        }
    }
    if keep_all {
        Ok(vals.into_iter().map(|v| v.unwrap_or_default()).collect())
    } else {
        let out = vals[model.output].take().unwrap_or_default();
        Ok(vec![out])
    }
}
