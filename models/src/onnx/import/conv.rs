//! Linear layers: `Conv`, `Gemm`, `MatMul`, and `BatchNormalization` (folded into the producing
//! layer, otherwise a per-channel affine map that the rewrites fold or lower).

use super::super::proto::NodeProto;
use super::attrs::Attrs;
use super::core::{Importer, Value};
use super::tensor::{Data, Tensor};
use crate::graph::{Affine, Conv2d, Linear, Op, Shape, Stage};
use crate::ModelError;

impl Importer {
    /// `Conv` → [`Conv2d`]. Dilated kernels are expanded with zero taps; padding that is not the
    /// same on all four sides becomes a separate zero `Pad` node (free on shares).
    pub(super) fn conv(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ])?;
        let x = self.node_in(n, 0, node)?;
        let (wd, weight) = self.f32_in(n, 1, node)?;
        if wd.len() != 4 {
            return Err(ModelError::onnx(
                node,
                format!("only 2-D convolutions are supported (weight dims {wd:?})"),
            ));
        }
        let groups = a.int("group", 1)?;
        if groups < 1 {
            return Err(a.unsupported("group", format!("invalid group {groups}")));
        }
        let groups = groups as usize;
        let (c_out, kpg, kh, kw) = (wd[0], wd[1], wd[2], wd[3]);
        if let Some(ks) = a.ints("kernel_shape") {
            if ks != [kh as i64, kw as i64] {
                return Err(a.unsupported(
                    "kernel_shape",
                    format!("{ks:?} disagrees with weight dims {wd:?}"),
                ));
            }
        }
        let dil = a.pair("dilations", [1, 1])?;
        let (weight, kh, kw) = dilate(weight, c_out * kpg, [kh, kw], dil);
        let stride = a.pair("strides", [1, 1])?;
        let (_, h, w) = self.shapes[x].dims();
        let [t, l, b, r] = a.auto_pads((h, w), [kh, kw], stride)?;
        let bias = match self.const_in(n, 2, node)? {
            None => vec![0.0; c_out],
            Some(Tensor {
                data: Data::F32(v), ..
            }) => v,
            Some(_) => return Err(ModelError::onnx(node, "conv bias must be float32")),
        };
        let (src, padding) = if t == b && l == r && t == l {
            (x, [t, l])
        } else {
            let p = self.push(
                &format!("{node}::pad"),
                Op::Pad([0, t, l, 0, b, r]),
                vec![x],
                stage,
            )?;
            (p, [0, 0])
        };
        let conv = Conv2d {
            c_in: kpg * groups,
            c_out,
            kernel: [kh, kw],
            stride,
            padding,
            groups,
            weight,
            bias,
        };
        self.emit(n, node, Op::Conv2d(conv), vec![src], stage)
            .map(drop)
    }

    /// `BatchNormalization`: folded into the producing conv / linear when it is that node's only
    /// consumer, otherwise a per-channel [`Affine`] (folded into a neighbouring layer or lowered to
    /// a depthwise 1×1 conv by the rewrites).
    pub(super) fn batch_norm(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["epsilon", "momentum", "training_mode", "spatial"])?;
        if a.int("training_mode", 0)? != 0 {
            return Err(a.unsupported(
                "training_mode",
                "only inference-mode BatchNormalization is supported (export after model.eval())",
            ));
        }
        if a.int("spatial", 1)? != 1 {
            return Err(a.unsupported("spatial", "only spatial BatchNormalization is supported"));
        }
        let eps = a.float("epsilon", 1e-5)? as f64;
        let x = self.node_in(n, 0, node)?;
        let c = self.shapes[x].channels();
        let mut params = Vec::with_capacity(4);
        for i in 1..=4 {
            let (_, v) = self.f32_in(n, i, node)?;
            if v.len() != c {
                return Err(ModelError::onnx(
                    node,
                    format!(
                        "BatchNormalization parameter {i} has {} values for {c} channels",
                        v.len()
                    ),
                ));
            }
            params.push(v);
        }
        let (gamma, beta, mean, var) = (&params[0], &params[1], &params[2], &params[3]);
        let mut scale = vec![0f64; c];
        let mut shift = vec![0f64; c];
        for ch in 0..c {
            let v = var[ch] as f64 + eps;
            if v <= 0.0 {
                return Err(ModelError::onnx(
                    node,
                    format!("variance + epsilon is not positive in channel {ch}"),
                ));
            }
            scale[ch] = gamma[ch] as f64 / v.sqrt();
            shift[ch] = beta[ch] as f64 - mean[ch] as f64 * scale[ch];
        }
        if self.uses_of(n, 0) == 1 && scale_producer(&mut self.nodes[x].op, &scale, &shift) {
            return self.bind(n, Value::Node(x), node);
        }
        let op = Op::Affine(Affine {
            scale: scale.iter().map(|&v| v as f32).collect(),
            shift: shift.iter().map(|&v| v as f32).collect(),
        });
        self.emit(n, node, op, vec![x], stage).map(drop)
    }

    /// `Gemm` (transA = 0, constant B and C) → [`Linear`].
    pub(super) fn gemm(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["alpha", "beta", "transA", "transB"])?;
        if a.int("transA", 0)? != 0 {
            return Err(a.unsupported("transA", "transposed activations are not supported"));
        }
        let alpha = a.float("alpha", 1.0)?;
        let beta = a.float("beta", 1.0)?;
        let trans_b = a.int("transB", 0)? != 0;
        let x = self.flat_in(n, node, stage)?;
        let (dims, b) = self.f32_in(n, 1, node)?;
        if dims.len() != 2 {
            return Err(ModelError::onnx(
                node,
                format!("Gemm weight must be 2-D, got {dims:?}"),
            ));
        }
        let (i, o) = if trans_b {
            (dims[1], dims[0])
        } else {
            (dims[0], dims[1])
        };
        let mut w = vec![0f32; i * o];
        for r in 0..o {
            for c in 0..i {
                let v = if trans_b { b[r * i + c] } else { b[c * o + r] };
                w[r * i + c] = alpha * v;
            }
        }
        let bias = match self.const_in(n, 2, node)? {
            None => vec![0.0; o],
            Some(t) if t.numel() == o || t.numel() == 1 => {
                let v = t.as_f32();
                (0..o).map(|j| beta * v[j % v.len()]).collect()
            }
            Some(t) => {
                return Err(ModelError::onnx(
                    node,
                    format!("Gemm bias dims {:?} do not broadcast to [{o}]", t.dims),
                ))
            }
        };
        let lin = Linear {
            in_features: i,
            out_features: o,
            weight: w,
            bias,
        };
        self.emit(n, node, Op::Linear(lin), vec![x], stage)
            .map(drop)
    }

    /// `MatMul` with a constant right operand → [`Linear`] (a following constant `Add` becomes its
    /// bias).
    pub(super) fn matmul(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        if matches!(self.input_value(n, 1, node)?, Some(Value::Node(_))) {
            return Err(super::core::unsupported_op(
                "Einsum",
                "MatMul of two computed tensors",
                node,
            ));
        }
        let x = self.flat_in(n, node, stage)?;
        let (dims, b) = self.f32_in(n, 1, node)?;
        if dims.len() != 2 {
            return Err(ModelError::onnx(
                node,
                format!("MatMul weight must be 2-D, got {dims:?}"),
            ));
        }
        let (i, o) = (dims[0], dims[1]);
        let mut w = vec![0f32; i * o];
        for r in 0..i {
            for c in 0..o {
                w[c * i + r] = b[r * o + c];
            }
        }
        let lin = Linear {
            in_features: i,
            out_features: o,
            weight: w,
            bias: vec![0.0; o],
        };
        self.emit(n, node, Op::Linear(lin), vec![x], stage)
            .map(drop)
    }

    /// Input 0 as a flat vector: a `[c, 1, 1]` tensor is flattened implicitly (a 2-D view of a
    /// pooled map); other spatial tensors are refused.
    fn flat_in(
        &mut self,
        n: &NodeProto,
        node: &str,
        stage: Option<Stage>,
    ) -> Result<usize, ModelError> {
        let x = self.node_in(n, 0, node)?;
        match self.shapes[x] {
            Shape::Flat(_) => Ok(x),
            Shape::Chw { h: 1, w: 1, .. } => {
                self.push(&format!("{node}::flatten"), Op::Flatten, vec![x], stage)
            }
            ref s => Err(ModelError::shape(
                node,
                format!("a fully connected layer needs a flat input, got {s} (add torch.flatten)"),
            )),
        }
    }
}

/// Folds `y = x·scale + shift` (per output channel) into a Conv2d / Linear producing x; false when
/// the producer is another operator.
pub(super) fn scale_producer(op: &mut Op, scale: &[f64], shift: &[f64]) -> bool {
    let (weight, bias, outs) = match op {
        Op::Conv2d(conv) => (&mut conv.weight, &mut conv.bias, conv.c_out),
        Op::Linear(lin) => (&mut lin.weight, &mut lin.bias, lin.out_features),
        _ => return false,
    };
    if scale.len() != outs && scale.len() != 1 || shift.len() != outs && shift.len() > 1 {
        return false;
    }
    let per_out = weight.len() / outs.max(1);
    for o in 0..outs {
        let s = scale[o % scale.len()];
        let b = shift.get(o).or(shift.first()).copied().unwrap_or(0.0);
        for wv in &mut weight[o * per_out..(o + 1) * per_out] {
            *wv = (*wv as f64 * s) as f32;
        }
        bias[o] = (bias[o] as f64 * s + b) as f32;
    }
    true
}

/// Expands a dilated kernel (`taps` kernels of `k`) into a dense one with zero taps.
fn dilate(weight: Vec<f32>, taps: usize, k: [usize; 2], d: [usize; 2]) -> (Vec<f32>, usize, usize) {
    if d == [1, 1] {
        return (weight, k[0], k[1]);
    }
    let (kh, kw) = ((k[0] - 1) * d[0] + 1, (k[1] - 1) * d[1] + 1);
    let mut out = vec![0f32; taps * kh * kw];
    for t in 0..taps {
        for y in 0..k[0] {
            for x in 0..k[1] {
                out[(t * kh + y * d[0]) * kw + x * d[1]] = weight[(t * k[0] + y) * k[1] + x];
            }
        }
    }
    (out, kh, kw)
}
