//! Data movement: `Flatten`, `Reshape` (flattening and the channel shuffle), `Transpose` (channel
//! shuffle), `Concat`, `Split`, `Slice` (channel and strided spatial slices), `Pad` (zero),
//! `Squeeze` / `Unsqueeze`, `Gather` on the channel axis. All are free on shares.

use super::super::proto::NodeProto;
use super::attrs::Attrs;
use super::core::{norm_axis, onnx_dims, unsupported_op, Importer, Value};
use super::tensor::{Data, Tensor};
use crate::graph::{Op, Shape, Slice, Stage};
use crate::ModelError;

impl Importer {
    /// `Flatten` (axis 0 or 1) → [`Op::Flatten`].
    pub(super) fn flatten(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["axis"])?;
        let x = self.node_in(n, 0, node)?;
        let axis = a.int("axis", 1)?;
        let rank = onnx_dims(&self.shapes[x]).len();
        match norm_axis(axis, rank + 1).filter(|&ax| ax <= 1) {
            Some(_) if matches!(self.shapes[x], Shape::Flat(_)) => {
                self.bind(n, Value::Node(x), node)
            }
            Some(_) => self.emit(n, node, Op::Flatten, vec![x], stage).map(drop),
            None => Err(a.unsupported(
                "axis",
                format!("only axis 0 or 1 (flatten all but batch) is supported, got {axis}"),
            )),
        }
    }

    /// `Reshape`: to `[1, -1]` → `Flatten`; to the current shape → nothing; to `[1, g, c/g, h, w]`
    /// → the first half of a channel shuffle; back to `[1, c, h, w]` after the shuffle's transpose →
    /// [`Op::PermuteChannels`]; constants are reshaped directly.
    pub(super) fn reshape(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["allowzero"])?;
        let target = self
            .i64_in(n, 1, node)?
            .ok_or_else(|| ModelError::onnx(node, "Reshape shape must be a constant"))?;
        let allow_zero = a.int("allowzero", 0)? != 0;
        let src = self
            .input_value(n, 0, node)?
            .ok_or_else(|| ModelError::onnx(node, "missing input 0"))?;
        let cur = match &src {
            Value::Node(x) => onnx_dims(&self.shapes[*x]),
            Value::Const(t) => t.dims.clone(),
            Value::Grouped {
                id,
                groups,
                transposed,
            } => {
                let (c, h, w) = self.shapes[*id].dims();
                let (g, per) = if *transposed {
                    (c / groups, *groups)
                } else {
                    (*groups, c / groups)
                };
                vec![1, g, per, h, w]
            }
            Value::Unknown | Value::Derived(_) => {
                return Err(ModelError::onnx(node, "input from an unsupported node"))
            }
        };
        let dims = resolve_reshape(&cur, &target, allow_zero, node)?;
        let numel: usize = cur.iter().product();
        match src {
            Value::Const(t) => self.bind(n, Value::Const(Tensor { dims, data: t.data }), node),
            Value::Node(x) => {
                if dims == cur {
                    return self.bind(n, Value::Node(x), node);
                }
                if dims == [1, numel] {
                    return self.emit(n, node, Op::Flatten, vec![x], stage).map(drop);
                }
                if let (Shape::Chw { c, h, w }, [1, g, per, dh, dw]) =
                    (&self.shapes[x], dims.as_slice())
                {
                    if g * per == *c && dh == h && dw == w {
                        return self.bind(
                            n,
                            Value::Grouped {
                                id: x,
                                groups: *g,
                                transposed: false,
                            },
                            node,
                        );
                    }
                }
                Err(unsupported_op(
                    "Reshape",
                    format!("Reshape of {cur:?} to {dims:?} (only flattening to [1, -1] and the channel shuffle are supported)"),
                    node,
                ))
            }
            Value::Grouped {
                id,
                groups,
                transposed,
            } => {
                if dims != onnx_dims(&self.shapes[id]) {
                    return Err(unsupported_op(
                        "Reshape",
                        format!("Reshape of a channel-grouped tensor to {dims:?}"),
                        node,
                    ));
                }
                if !transposed {
                    return self.bind(n, Value::Node(id), node);
                }
                let c = self.shapes[id].channels();
                let per = c / groups;
                // After the transpose, channel j = k·g + gi holds input channel gi·(c/g) + k.
                let order: Vec<usize> = (0..c).map(|j| (j % groups) * per + j / groups).collect();
                self.emit(n, node, Op::PermuteChannels(order), vec![id], stage)
                    .map(drop)
            }
            Value::Unknown | Value::Derived(_) => {
                Err(ModelError::onnx(node, "input from an unsupported node"))
            }
        }
    }

    /// `Transpose`: the channel shuffle's `[0, 2, 1, 3, 4]` on a grouped view; an identity
    /// permutation is dropped.
    pub(super) fn transpose(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        _stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["perm"])?;
        let perm = a.ints("perm").unwrap_or_default();
        match self.input_value(n, 0, node)? {
            Some(Value::Grouped {
                id,
                groups,
                transposed,
            }) if perm == [0, 2, 1, 3, 4] => {
                // `groups` stays the number of groups of the original layout.
                self.bind(
                    n,
                    Value::Grouped {
                        id,
                        groups,
                        transposed: !transposed,
                    },
                    node,
                )
            }
            Some(Value::Node(x)) if perm.iter().enumerate().all(|(i, &p)| p == i as i64) => {
                self.bind(n, Value::Node(x), node)
            }
            Some(Value::Const(t)) if t.dims.len() == 2 && (perm.is_empty() || perm == [1, 0]) => {
                let (r, c) = (t.dims[0], t.dims[1]);
                let idx: Vec<usize> = (0..r * c).map(|p| (p % r) * c + p / r).collect();
                let data = match t.data {
                    Data::I64(v) => Data::I64(idx.iter().map(|&i| v[i]).collect()),
                    Data::F32(v) => Data::F32(idx.iter().map(|&i| v[i]).collect()),
                };
                self.bind(
                    n,
                    Value::Const(Tensor {
                        dims: vec![c, r],
                        data,
                    }),
                    node,
                )
            }
            Some(Value::Const(t)) if t.dims.len() <= 1 => self.bind(n, Value::Const(t), node),
            _ => Err(unsupported_op(
                "Transpose",
                format!("Transpose with perm {perm:?}"),
                node,
            )),
        }
    }

    /// `Concat` on the channel axis → [`Op::Concat`]; of 1-D constants → constant.
    pub(super) fn concat(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["axis"])?;
        let axis = a.int("axis", 0)?;
        let vals: Vec<Value> = n
            .input
            .iter()
            .map(|i| self.value(i, node).cloned())
            .collect::<Result<_, _>>()?;
        if vals.iter().all(|v| matches!(v, Value::Const(_))) {
            let mut ints = Vec::new();
            let mut floats = Vec::new();
            let mut all_int = true;
            for v in &vals {
                let Value::Const(t) = v else { continue };
                if t.dims.iter().filter(|&&x| x != 1).count() > 1 {
                    return Err(unsupported_op(
                        "Concat",
                        "Concat of constants with more than one dimension",
                        node,
                    ));
                }
                match &t.data {
                    Data::I64(d) => ints.extend(d),
                    Data::F32(_) => all_int = false,
                }
                floats.extend(t.as_f32());
            }
            let t = if all_int {
                Tensor::ints(ints)
            } else {
                Tensor {
                    dims: vec![floats.len()],
                    data: Data::F32(floats),
                }
            };
            return self.bind(n, Value::Const(t), node);
        }
        let mut ids = Vec::with_capacity(vals.len());
        for v in vals {
            match v {
                Value::Node(id) => ids.push(id),
                _ => {
                    return Err(unsupported_op(
                        "Concat",
                        "Concat mixing constants and computed tensors",
                        node,
                    ))
                }
            }
        }
        self.channel_axis(axis, &self.shapes[ids[0]], a)?;
        self.emit(n, node, Op::Concat, ids, stage).map(drop)
    }

    /// `Split` on the channel axis → one `SliceChannels` per output, named after the output tensor.
    pub(super) fn split(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["axis", "split", "num_outputs"])?;
        let x = self.node_in(n, 0, node)?;
        self.channel_axis(a.int("axis", 0)?, &self.shapes[x], a)?;
        let c = self.shapes[x].channels();
        let nout = n.output.len();
        let sizes: Vec<i64> = match (a.ints("split"), self.i64_in(n, 1, node)?) {
            (Some(s), _) | (None, Some(s)) => s,
            (None, None) => {
                if nout == 0 {
                    return Err(ModelError::onnx(node, "Split without outputs"));
                }
                let part = c.div_ceil(nout);
                (0..nout)
                    .map(|i| (part.min(c.saturating_sub(i * part))) as i64)
                    .collect()
            }
        };
        if sizes.len() != nout
            || sizes.iter().any(|&s| s <= 0 || s > c as i64)
            || sizes.iter().sum::<i64>() != c as i64
        {
            return Err(ModelError::onnx(
                node,
                format!("split sizes {sizes:?} do not partition {c} channels into {nout} outputs"),
            ));
        }
        let mut start = 0usize;
        for (out, &len) in n.output.iter().zip(&sizes) {
            let len = len as usize;
            let name = if out.is_empty() {
                format!("{node}:{start}")
            } else {
                out.clone()
            };
            let id = self.push(&name, Op::SliceChannels { start, len }, vec![x], stage)?;
            if !out.is_empty() {
                self.values.insert(out.clone(), Value::Node(id));
            }
            start += len;
        }
        Ok(())
    }

    /// `Slice`: on the channel axis with step 1 → `SliceChannels`; with steps or on the spatial
    /// axes → [`Op::Slice`]; on a 1-D constant → constant.
    pub(super) fn slice(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        let get = |i: usize, what: &str| -> Result<Vec<i64>, ModelError> {
            self.i64_in(n, i, node)?
                .ok_or_else(|| ModelError::onnx(node, format!("Slice {what} must be constant")))
        };
        let starts = get(1, "starts")?;
        let ends = get(2, "ends")?;
        let axes = self
            .i64_in(n, 3, node)?
            .unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = self
            .i64_in(n, 4, node)?
            .unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(ModelError::onnx(
                node,
                "Slice starts/ends/axes/steps differ in length",
            ));
        }
        let src = self
            .input_value(n, 0, node)?
            .ok_or_else(|| ModelError::onnx(node, "missing input 0"))?;
        let dims = match &src {
            Value::Node(x) => onnx_dims(&self.shapes[*x]),
            Value::Const(t) => t.dims.clone(),
            _ => return Err(unsupported_op("Slice", "Slice of a 5-D tensor", node)),
        };
        // Per axis: (start, len, step), normalised as ONNX does.
        let mut spec: Vec<(usize, usize, i64)> = dims.iter().map(|&d| (0, d, 1)).collect();
        for k in 0..starts.len() {
            let ax = norm_axis(axes[k], dims.len()).ok_or_else(|| {
                ModelError::onnx(node, format!("Slice axis {} out of range", axes[k]))
            })?;
            let d = dims[ax] as i64;
            let step = steps[k];
            if step == 0 {
                return Err(ModelError::onnx(node, "Slice step 0"));
            }
            let wrap = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
            let (s, len) = if step > 0 {
                let (s, e) = (wrap(starts[k]).clamp(0, d), wrap(ends[k]).clamp(0, d));
                (s, if e > s { (e - s + step - 1) / step } else { 0 })
            } else {
                let (s, e) = (
                    wrap(starts[k]).clamp(0, d - 1),
                    wrap(ends[k]).clamp(-1, d - 1),
                );
                (s, if s > e { (s - e - step - 1) / -step } else { 0 })
            };
            if len == 0 {
                return Err(ModelError::onnx(node, format!("empty slice on axis {ax}")));
            }
            spec[ax] = (s as usize, len as usize, step);
        }
        if !matches!(src, Value::Const(_)) && spec.iter().any(|&(_, _, st)| st < 1) {
            return Err(unsupported_op(
                "Slice",
                "Slice of a computed tensor with a negative step (flip)",
                node,
            ));
        }
        match src {
            Value::Const(t) => {
                let out_dims: Vec<usize> = spec.iter().map(|&(_, len, _)| len).collect();
                let total: usize = out_dims.iter().product();
                let mut pick = Vec::with_capacity(total);
                for mut p in 0..total {
                    let mut idx = 0usize;
                    let mut stride = 1usize;
                    for ax in (0..dims.len()).rev() {
                        let (st, len, step) = spec[ax];
                        let coord = p % len;
                        p /= len;
                        idx += (st as i64 + coord as i64 * step) as usize * stride;
                        stride *= dims[ax];
                    }
                    pick.push(idx);
                }
                let data = match t.data {
                    Data::I64(v) => Data::I64(pick.iter().map(|&i| v[i]).collect()),
                    Data::F32(v) => Data::F32(pick.iter().map(|&i| v[i]).collect()),
                };
                self.bind(
                    n,
                    Value::Const(Tensor {
                        dims: out_dims,
                        data,
                    }),
                    node,
                )
            }
            Value::Node(x) => {
                let spec: Vec<(usize, usize, usize)> =
                    spec.iter().map(|&(a, b, c)| (a, b, c as usize)).collect();
                if spec[0] != (0, 1, 1) {
                    return Err(unsupported_op("Slice", "Slice of the batch axis", node));
                }
                let untouched = |ax: usize| spec[ax] == (0, dims[ax], 1);
                let op = if (2..dims.len()).all(untouched) && spec[1].2 == 1 {
                    if untouched(1) {
                        return self.bind(n, Value::Node(x), node);
                    }
                    Op::SliceChannels {
                        start: spec[1].0,
                        len: spec[1].1,
                    }
                } else if dims.len() == 4 {
                    Op::Slice(Slice {
                        start: [spec[1].0, spec[2].0, spec[3].0],
                        len: [spec[1].1, spec[2].1, spec[3].1],
                        step: [spec[1].2, spec[2].2, spec[3].2],
                    })
                } else {
                    return Err(unsupported_op(
                        "Slice",
                        "strided Slice of a flat vector",
                        node,
                    ));
                };
                self.emit(n, node, op, vec![x], stage).map(drop)
            }
            _ => Err(ModelError::onnx(node, "input from an unsupported node")),
        }
    }

    /// `Pad` (constant mode, value 0, non-negative pads on C, H, W) → [`Op::Pad`].
    pub(super) fn pad(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["mode", "pads", "value"])?;
        let x = self.node_in(n, 0, node)?;
        let mode = a.string("mode", "constant");
        if mode != "constant" {
            return Err(a.unsupported("mode", format!("only zero (constant) padding, got {mode}")));
        }
        let value = match self.const_in(n, 2, node)? {
            Some(t) if t.numel() == 1 => t.as_f32()[0],
            Some(_) => return Err(ModelError::onnx(node, "Pad value must be a scalar")),
            None => a.float("value", 0.0)?,
        };
        if value != 0.0 {
            return Err(unsupported_op(
                "Pad",
                format!("Pad with value {value} (only zero padding is supported)"),
                node,
            ));
        }
        let pads = match (a.ints("pads"), self.i64_in(n, 1, node)?) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => return Err(ModelError::onnx(node, "Pad without pads")),
        };
        let rank = onnx_dims(&self.shapes[x]).len();
        let axes: Vec<usize> = match self.i64_in(n, 3, node)? {
            Some(ax) => ax
                .iter()
                .map(|&v| norm_axis(v, rank))
                .collect::<Option<_>>()
                .ok_or_else(|| ModelError::onnx(node, "Pad axis out of range"))?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(ModelError::onnx(
                node,
                format!("Pad has {} pads for {} axes", pads.len(), axes.len()),
            ));
        }
        let mut full = vec![0i64; 2 * rank];
        for (k, &ax) in axes.iter().enumerate() {
            full[ax] = pads[k];
            full[rank + ax] = pads[axes.len() + k];
        }
        if full.iter().any(|&p| !(0..=attrs_max()).contains(&p)) || full[0] != 0 || full[rank] != 0
        {
            return Err(unsupported_op(
                "Pad",
                format!("Pad with pads {pads:?} (only non-negative padding of C, H, W)"),
                node,
            ));
        }
        if full.iter().all(|&p| p == 0) {
            return self.bind(n, Value::Node(x), node);
        }
        if rank != 4 {
            return Err(unsupported_op("Pad", "Pad of a flat vector", node));
        }
        let p = |i: usize| full[i] as usize;
        let op = Op::Pad([p(1), p(2), p(3), p(5), p(6), p(7)]);
        self.emit(n, node, op, vec![x], stage).map(drop)
    }

    /// `Squeeze` / `Unsqueeze`: on constants, reshaped; `Squeeze` of a `[1, c, 1, 1]` tensor on
    /// the spatial axes → `Flatten`.
    pub(super) fn squeeze(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["axes"])?;
        let op = a.op;
        let axes = match a.ints("axes") {
            Some(v) => Some(v),
            None => self.i64_in(n, 1, node)?,
        };
        match self.input_value(n, 0, node)? {
            Some(Value::Const(t)) => {
                let dims =
                    reshape_dims_for_squeeze(op == "Unsqueeze", &t.dims, axes.as_deref(), node)?;
                self.bind(n, Value::Const(Tensor { dims, data: t.data }), node)
            }
            Some(Value::Node(x)) if op == "Squeeze" => {
                let dims = onnx_dims(&self.shapes[x]);
                let out = reshape_dims_for_squeeze(false, &dims, axes.as_deref(), node)?;
                if out == dims {
                    self.bind(n, Value::Node(x), node)
                } else if out.len() == 2 && out[0] == 1 && dims.len() == 4 {
                    self.emit(n, node, Op::Flatten, vec![x], stage).map(drop)
                } else {
                    Err(unsupported_op(
                        "Squeeze",
                        format!("Squeeze of {dims:?} to {out:?}"),
                        node,
                    ))
                }
            }
            _ => Err(unsupported_op(
                op,
                format!("{op} of a computed tensor"),
                node,
            )),
        }
    }

    /// `Gather`: on a 1-D constant → constant; on the channel axis of a computed tensor with a
    /// constant index list → a channel permutation or a channel slice.
    pub(super) fn gather(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["axis"])?;
        let axis = a.int("axis", 0)?;
        let idx_t = self
            .const_in(n, 1, node)?
            .ok_or_else(|| ModelError::onnx(node, "Gather indices must be constant"))?;
        let Data::I64(idx) = &idx_t.data else {
            return Err(ModelError::onnx(node, "Gather indices must be integers"));
        };
        match self.input_value(n, 0, node)? {
            Some(Value::Const(data)) => {
                if data.dims.len() != 1 || (axis != 0 && axis != -1) {
                    return Err(a.unsupported("axis", "only 1-D constant Gather is supported"));
                }
                let len = data.dims[0] as i64;
                let mut pos = Vec::with_capacity(idx.len());
                for &i in idx {
                    let j = if i < 0 { i + len } else { i };
                    if !(0..len).contains(&j) {
                        return Err(ModelError::onnx(
                            node,
                            format!("Gather index {i} out of range"),
                        ));
                    }
                    pos.push(j as usize);
                }
                let out = match data.data {
                    Data::I64(v) => Data::I64(pos.iter().map(|&p| v[p]).collect()),
                    Data::F32(v) => Data::F32(pos.iter().map(|&p| v[p]).collect()),
                };
                self.bind(
                    n,
                    Value::Const(Tensor {
                        dims: idx_t.dims.clone(),
                        data: out,
                    }),
                    node,
                )
            }
            Some(Value::Node(x)) => {
                let c = self.shapes[x].channels();
                let rank = onnx_dims(&self.shapes[x]).len();
                let list: Option<Vec<usize>> = idx
                    .iter()
                    .map(|&i| {
                        let j = if i < 0 { i + c as i64 } else { i };
                        (0..c as i64).contains(&j).then_some(j as usize)
                    })
                    .collect();
                let refuse = || {
                    unsupported_op(
                        "Gather",
                        "Gather on a computed tensor (only a channel permutation or a contiguous channel range)",
                        node,
                    )
                };
                let list = list.ok_or_else(refuse)?;
                if norm_axis(axis, rank) != Some(1) || idx_t.dims.len() != 1 || list.is_empty() {
                    return Err(refuse());
                }
                let contiguous = list.windows(2).all(|w| w[1] == w[0] + 1);
                let op = if contiguous {
                    Op::SliceChannels {
                        start: list[0],
                        len: list.len(),
                    }
                } else if list.len() == c {
                    Op::PermuteChannels(list)
                } else {
                    return Err(refuse());
                };
                self.emit(n, node, op, vec![x], stage).map(drop)
            }
            _ => Err(ModelError::onnx(node, "input from an unsupported node")),
        }
    }
}

/// Largest pad accepted.
fn attrs_max() -> i64 {
    super::attrs::MAX_SIZE
}

/// Resolves a `Reshape` target (`0` copies the input dim unless `allow_zero`, one `-1` is inferred).
pub(super) fn resolve_reshape(
    cur: &[usize],
    target: &[i64],
    allow_zero: bool,
    node: &str,
) -> Result<Vec<usize>, ModelError> {
    let numel: usize = cur.iter().product();
    let mut dims = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 if !allow_zero => dims.push(
                *cur.get(i)
                    .ok_or_else(|| ModelError::onnx(node, "Reshape 0 beyond input rank"))?,
            ),
            t if (0..=numel as i64).contains(&t) => dims.push(t as usize),
            _ => {
                return Err(ModelError::onnx(
                    node,
                    format!("invalid Reshape target {target:?}"),
                ))
            }
        }
    }
    if let Some(i) = infer {
        let rest = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(0);
        if rest == 0 || !numel.is_multiple_of(rest) {
            return Err(ModelError::onnx(
                node,
                format!("cannot reshape {cur:?} to {target:?}"),
            ));
        }
        dims[i] = numel / rest;
    }
    if dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(numel) {
        return Err(ModelError::onnx(
            node,
            format!("cannot reshape {cur:?} to {target:?}"),
        ));
    }
    Ok(dims)
}

/// Output dims of (Un)Squeeze.
pub(super) fn reshape_dims_for_squeeze(
    unsqueeze: bool,
    dims: &[usize],
    axes: Option<&[i64]>,
    node: &str,
) -> Result<Vec<usize>, ModelError> {
    if unsqueeze {
        let axes = axes.ok_or_else(|| ModelError::onnx(node, "Unsqueeze without axes"))?;
        let r = dims.len() + axes.len();
        let mut norm: Vec<usize> = Vec::new();
        for &ax in axes {
            norm.push(norm_axis(ax, r).ok_or_else(|| {
                ModelError::onnx(node, format!("Unsqueeze axis {ax} out of range"))
            })?);
        }
        let mut out = Vec::with_capacity(r);
        let mut it = dims.iter();
        for i in 0..r {
            if norm.contains(&i) {
                out.push(1);
            } else {
                out.push(
                    *it.next()
                        .ok_or_else(|| ModelError::onnx(node, "bad Unsqueeze axes"))?,
                );
            }
        }
        Ok(out)
    } else {
        let r = dims.len();
        Ok(dims
            .iter()
            .enumerate()
            .filter(|&(i, &d)| {
                let sel = axes.is_none_or(|ax| ax.iter().any(|&x| norm_axis(x, r) == Some(i)));
                !(sel && d == 1)
            })
            .map(|(_, &d)| d)
            .collect())
    }
}
