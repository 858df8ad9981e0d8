//! Activations: `Relu`, `Clip(0, c)` (ReLU6), `Identity` / `Dropout`, and the per-element ReLU
//! mask `Where(mask, Relu(x), x)`.

use super::super::proto::NodeProto;
use super::attrs::Attrs;
use super::core::{onnx_dims, unsupported_op, Importer, Value};
use super::tensor::broadcast_to_tensor;
use crate::graph::{ElementMask, Op, Relu, Stage};
use crate::ModelError;

impl Importer {
    /// `Relu` → [`Relu`] on every element.
    pub(super) fn relu(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        let x = self.node_in(n, 0, node)?;
        self.emit(n, node, Op::Relu(Relu::all()), vec![x], stage)
            .map(drop)
    }

    /// `Clip(x, 0, c)` → ReLU capped at c (ReLU6 for c = 6); `Clip(x, 0)` → ReLU.
    pub(super) fn clip(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["min", "max"])?;
        let x = self.node_in(n, 0, node)?;
        let bound = |i: usize, attr: &str, default: f32| -> Result<f32, ModelError> {
            match self.const_in(n, i, node)? {
                Some(t) if t.numel() == 1 => Ok(t.as_f32()[0]),
                Some(t) => Err(ModelError::onnx(
                    node,
                    format!("Clip bound {attr} must be a scalar, got dims {:?}", t.dims),
                )),
                None => a.float(attr, default),
            }
        };
        let lo = bound(1, "min", f32::NEG_INFINITY)?;
        let hi = bound(2, "max", f32::INFINITY)?;
        if lo != 0.0 || hi.is_nan() || hi <= 0.0 {
            return Err(unsupported_op(
                "Clip",
                format!("Clip({lo}, {hi}) (only Clip(0, c) with c > 0, i.e. ReLU / ReLU6, is supported)"),
                node,
            ));
        }
        let relu = Relu {
            cap: hi.is_finite().then_some(hi),
            ..Relu::default()
        };
        self.emit(n, node, Op::Relu(relu), vec![x], stage).map(drop)
    }

    /// `Identity` on a computed tensor → a removed ReLU (truncation only); `Dropout` (inference) and
    /// `Identity` on constants pass their input through.
    pub(super) fn identity(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        let op = a.op;
        if op == "Dropout" {
            a.only(&["seed", "ratio", "is_test"])?;
            if let Some(t) = self.const_in_opt(n, 2, node) {
                if t.as_f32().iter().any(|&v| v != 0.0) {
                    return Err(ModelError::onnx(
                        node,
                        "Dropout in training mode: export after model.eval()",
                    ));
                }
            } else if n.input.get(2).is_some_and(|s| !s.is_empty()) {
                return Err(ModelError::onnx(
                    node,
                    "Dropout with a computed training_mode input is not supported",
                ));
            }
        } else {
            a.only(&[])?;
        }
        let src = n.input.first().cloned().unwrap_or_default();
        match self.value(&src, node)?.clone() {
            Value::Node(x) if op == "Identity" => {
                self.emit(n, node, Op::Identity, vec![x], stage).map(drop)
            }
            v => self.bind(n, v, node),
        }
    }

    /// `Where(mask, Relu(x), x)` (or `Where(mask, x, Relu(x))`) with a constant mask → a ReLU on
    /// the masked elements only.
    pub(super) fn where_op(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        let refuse = || {
            unsupported_op(
                "Where",
                "Where (only Where(constant mask, Relu(x), x) is supported)",
                node,
            )
        };
        let cond = self.const_in_opt(n, 0, node).ok_or_else(refuse)?;
        let (p, q) = match (self.input_value(n, 1, node)?, self.input_value(n, 2, node)?) {
            (Some(Value::Node(p)), Some(Value::Node(q))) => (p, q),
            _ => return Err(refuse()),
        };
        let is_relu_of = |r: usize, x: usize| {
            matches!(&self.nodes[r].op, Op::Relu(rl) if rl.is_plain())
                && self.nodes[r].inputs == [x]
        };
        let (x, keep_when) = if is_relu_of(p, q) {
            (q, true)
        } else if is_relu_of(q, p) {
            (p, false)
        } else {
            return Err(refuse());
        };
        let dims = onnx_dims(&self.shapes[x]);
        let numel: usize = dims.iter().product();
        let list = broadcast_to_tensor(&cond, &dims).ok_or_else(refuse)?;
        let (c, h, w) = self.shapes[x].dims();
        let bits: Vec<bool> = (0..numel)
            .map(|i| (crate::graph::Affine::at(&list, i, c, h * w, 0.0) != 0.0) == keep_when)
            .collect();
        let op = Op::Relu(Relu::elements(ElementMask::from_bools(&bits)));
        self.emit(n, node, op, vec![x], stage).map(drop)
    }

    /// Optional input `i` when it is a constant (`None` when absent or computed).
    pub(super) fn const_in_opt(
        &self,
        n: &NodeProto,
        i: usize,
        node: &str,
    ) -> Option<super::tensor::Tensor> {
        match self.input_value(n, i, node) {
            Ok(Some(Value::Const(t))) => Some(t),
            _ => None,
        }
    }
}
