//! Element-wise arithmetic: `Add` of two computed tensors (residual), `Add`/`Sub`/`Mul`/`Div` of a
//! computed tensor and a constant (an [`Affine`] map, folded or lowered by the rewrites), and the
//! same operators on two constants (folded here).

use super::super::proto::NodeProto;
use super::attrs::Attrs;
use super::core::{onnx_dims, unsupported_op, Importer, Value};
use super::tensor::{binary, broadcast_to_tensor, Data, Tensor};
use crate::graph::{Affine, Op, Stage};
use crate::ModelError;

impl Importer {
    /// `Add` / `Sub` / `Mul` / `Div`.
    pub(super) fn arith(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        let op = a.op;
        if n.input.len() != 2 {
            return Err(ModelError::onnx(node, format!("{op} needs two inputs")));
        }
        let v0 = self.value(&n.input[0], node)?.clone();
        let v1 = self.value(&n.input[1], node)?.clone();
        let (x, t, const_first) = match (v0, v1) {
            (Value::Node(p), Value::Node(q)) if op == "Add" => {
                return self.emit(n, node, Op::Add, vec![p, q], stage).map(drop)
            }
            (Value::Node(_), Value::Node(_)) => {
                return Err(unsupported_op(
                    op,
                    format!("{op} of two computed tensors"),
                    node,
                ))
            }
            (Value::Const(p), Value::Const(q)) => {
                let t = binary(&p, &q, op, node)?;
                return self.bind(n, Value::Const(t), node);
            }
            (Value::Node(p), Value::Const(t)) => (p, t, false),
            (Value::Const(t), Value::Node(p)) => (p, t, true),
            _ => {
                return Err(unsupported_op(
                    op,
                    format!("{op} on a tensor that is not [N, C, H, W] or [N, C]"),
                    node,
                ))
            }
        };
        let dims = onnx_dims(&self.shapes[x]);
        let list = broadcast_to_tensor(&t, &dims).ok_or_else(|| {
            unsupported_op(
                op,
                format!(
                    "{op} with a constant of dims {:?} on a tensor of dims {dims:?}",
                    t.dims
                ),
                node,
            )
        })?;
        let affine = match (op, const_first) {
            ("Add", _) => Affine {
                scale: vec![],
                shift: list,
            },
            ("Sub", false) => Affine {
                scale: vec![],
                shift: list.iter().map(|v| -v).collect(),
            },
            ("Sub", true) => Affine {
                scale: vec![-1.0],
                shift: list,
            },
            ("Mul", _) => Affine {
                scale: list,
                shift: vec![],
            },
            ("Div", false) => {
                if list.contains(&0.0) {
                    return Err(ModelError::onnx(node, "division by a zero constant"));
                }
                Affine {
                    scale: list.iter().map(|v| 1.0 / v).collect(),
                    shift: vec![],
                }
            }
            _ => {
                return Err(unsupported_op(
                    op,
                    "Div of a constant by a computed tensor",
                    node,
                ))
            }
        };
        self.emit(n, node, Op::Affine(affine), vec![x], stage)
            .map(drop)
    }

    /// `Neg` of a constant (folded).
    pub(super) fn neg(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        _stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        match self.input_value(n, 0, node)? {
            Some(Value::Const(t)) => {
                let data = match t.data {
                    Data::F32(v) => Data::F32(v.iter().map(|x| -x).collect()),
                    Data::I64(v) => Data::I64(v.iter().map(|x| x.wrapping_neg()).collect()),
                };
                self.bind(n, Value::Const(Tensor { dims: t.dims, data }), node)
            }
            _ => Err(unsupported_op("Neg", "Neg of a computed tensor", node)),
        }
    }

    /// A binary operator on two constants (`Equal`, ...), folded.
    pub(super) fn const_binary(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        match (self.input_value(n, 0, node)?, self.input_value(n, 1, node)?) {
            (Some(Value::Const(p)), Some(Value::Const(q))) => {
                let t = binary(&p, &q, a.op, node)?;
                self.bind(n, Value::Const(t), node)
            }
            _ => Err(unsupported_op(
                a.op,
                format!("{} of computed tensors", a.op),
                node,
            )),
        }
    }
}
