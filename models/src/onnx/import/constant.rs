//! Constants and the shape arithmetic exporters emit around them: `Constant`, `Shape`, `Cast`,
//! `ConstantOfShape`, `Range` (all folded at load time; shapes are static).

use super::super::proto::*;
use super::attrs::Attrs;
use super::core::{onnx_dims, Importer, Value};
use super::tensor::{decode, Data, Tensor};
use crate::ModelError;

/// Largest tensor a folded `ConstantOfShape` / `Range` may create.
const MAX_FOLDED: usize = 1 << 24;

impl Importer {
    /// `Constant` → constant value.
    pub(super) fn constant(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
    ) -> Result<(), ModelError> {
        a.only(&[
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
        ])?;
        let t = if let Some(t) = a.get("value").and_then(|v| v.t.as_ref()) {
            decode(t, node, &self.source)?
        } else if let Some(v) = a.get("value_float").and_then(|v| v.f) {
            Tensor {
                dims: vec![],
                data: Data::F32(vec![v]),
            }
        } else if let Some(v) = a.get("value_floats") {
            Tensor {
                dims: vec![v.floats.len()],
                data: Data::F32(v.floats.clone()),
            }
        } else if let Some(v) = a.get("value_int").and_then(|v| v.i) {
            Tensor {
                dims: vec![],
                data: Data::I64(vec![v]),
            }
        } else if let Some(v) = a.get("value_ints") {
            Tensor::ints(v.ints.clone())
        } else {
            return Err(ModelError::onnx(
                node,
                "Constant without a supported value attribute",
            ));
        };
        self.bind(n, Value::Const(t), node)
    }

    /// `Shape` of a computed tensor → its (static) dims as a constant.
    pub(super) fn shape_of(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
    ) -> Result<(), ModelError> {
        a.only(&["start", "end"])?;
        let dims: Vec<i64> = match self.input_value(n, 0, node)? {
            Some(Value::Node(x)) => onnx_dims(&self.shapes[x])
                .iter()
                .map(|&d| d as i64)
                .collect(),
            Some(Value::Const(t)) => t.dims.iter().map(|&d| d as i64).collect(),
            Some(Value::Grouped {
                id,
                groups,
                transposed,
            }) => {
                let (c, h, w) = self.shapes[id].dims();
                let (g, per) = if transposed {
                    (c / groups, groups)
                } else {
                    (groups, c / groups)
                };
                vec![1, g as i64, per as i64, h as i64, w as i64]
            }
            _ => return Err(ModelError::onnx(node, "Shape of an unsupported tensor")),
        };
        let r = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let (s, e) = (clamp(a.int("start", 0)?), clamp(a.int("end", r)?));
        let v: Vec<i64> = if s < e { dims[s..e].to_vec() } else { vec![] };
        self.bind(n, Value::Const(Tensor::ints(v)), node)
    }

    /// `Cast` of a constant.
    pub(super) fn cast(&mut self, n: &NodeProto, node: &str, a: &Attrs) -> Result<(), ModelError> {
        a.only(&["to", "saturate"])?;
        let t = match self.input_value(n, 0, node)? {
            Some(Value::Const(t)) => t,
            Some(Value::Node(x)) if a.int("to", 0)? as i32 == DT_FLOAT => {
                // A cast of a float tensor to float (exporters emit these) changes nothing.
                return self.bind(n, Value::Node(x), node);
            }
            _ => {
                return Err(super::core::unsupported_op(
                    "Cast",
                    "Cast of a computed tensor to a non-float type",
                    node,
                ))
            }
        };
        let data = match (a.int("to", 0)? as i32, t.data) {
            (DT_FLOAT | DT_DOUBLE, Data::I64(v)) => {
                Data::F32(v.iter().map(|&x| x as f32).collect())
            }
            (DT_INT64 | DT_INT32, Data::F32(v)) => Data::I64(v.iter().map(|&x| x as i64).collect()),
            (DT_BOOL, Data::F32(v)) => Data::I64(v.iter().map(|&x| (x != 0.0) as i64).collect()),
            (DT_BOOL, Data::I64(v)) => Data::I64(v.iter().map(|&x| (x != 0) as i64).collect()),
            (DT_FLOAT | DT_DOUBLE, d @ Data::F32(_)) | (DT_INT64 | DT_INT32, d @ Data::I64(_)) => d,
            (to, _) => return Err(a.unsupported("to", format!("cast to data type {to}"))),
        };
        self.bind(n, Value::Const(Tensor { dims: t.dims, data }), node)
    }

    /// `ConstantOfShape` with a constant shape → constant (what `F.pad` exports under TorchScript).
    pub(super) fn constant_of_shape(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
    ) -> Result<(), ModelError> {
        a.only(&["value"])?;
        let shape = self
            .i64_in(n, 0, node)?
            .ok_or_else(|| ModelError::onnx(node, "ConstantOfShape needs a constant shape"))?;
        let dims: Vec<usize> = shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<_>>()
            .ok_or_else(|| ModelError::onnx(node, "negative ConstantOfShape dimension"))?;
        let numel = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= MAX_FOLDED)
            .ok_or_else(|| ModelError::onnx(node, "ConstantOfShape too large"))?;
        let fill = match a.get("value").and_then(|v| v.t.as_ref()) {
            Some(t) => decode(t, node, &self.source)?,
            None => Tensor {
                dims: vec![1],
                data: Data::F32(vec![0.0]),
            },
        };
        let data = match fill.data {
            Data::F32(v) => Data::F32(vec![v.first().copied().unwrap_or(0.0); numel]),
            Data::I64(v) => Data::I64(vec![v.first().copied().unwrap_or(0); numel]),
        };
        self.bind(n, Value::Const(Tensor { dims, data }), node)
    }

    /// `Range` of constants → constant.
    pub(super) fn range(&mut self, n: &NodeProto, node: &str, a: &Attrs) -> Result<(), ModelError> {
        a.only(&[])?;
        let scalar = |i: usize| -> Result<i64, ModelError> {
            self.i64_in(n, i, node)?
                .filter(|v| v.len() == 1)
                .map(|v| v[0])
                .ok_or_else(|| ModelError::onnx(node, "Range needs integer scalar constants"))
        };
        let (start, limit, delta) = (scalar(0)?, scalar(1)?, scalar(2)?);
        if delta == 0 {
            return Err(ModelError::onnx(node, "Range with delta 0"));
        }
        let count = ((limit - start) as f64 / delta as f64).ceil().max(0.0) as usize;
        if count > MAX_FOLDED {
            return Err(ModelError::onnx(node, "Range too long"));
        }
        let v: Vec<i64> = (0..count as i64).map(|i| start + i * delta).collect();
        self.bind(n, Value::Const(Tensor::ints(v)), node)
    }
}
