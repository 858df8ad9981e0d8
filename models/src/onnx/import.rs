//! ONNX → [`Model`]: operator mapping, constant folding, BatchNorm folding, stage assignment.

use std::collections::{HashMap, HashSet};

use prost::Message;

use super::proto::*;
use super::STAGE_DOC_PREFIX;
use crate::graph::{Conv2d, Linear, Model, Node, NodeId, Op, Pool, Relu, Shape, Stage};
use crate::shape::node_shape;
use crate::ModelError;

/// Lowest default-domain opset accepted.
const MIN_OPSET: i64 = 11;
/// Highest default-domain opset accepted.
const MAX_OPSET: i64 = 21;
/// Largest stride, padding, pool window or input dimension accepted (keeps all size arithmetic far from overflow).
const MAX_SIZE: i64 = 1 << 16;

/// Parses an ONNX model (see the module docs for what is accepted).
pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
    let proto = ModelProto::decode(bytes)?;
    from_proto(&proto)
}

/// A constant tensor: initializer, `Constant` node or folded shape arithmetic.
#[derive(Clone, Debug)]
struct Tensor {
    dims: Vec<usize>,
    data: Data,
}

/// Element data of a [`Tensor`].
#[derive(Clone, Debug)]
enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// What an ONNX tensor name refers to.
#[derive(Clone, Debug)]
enum Value {
    /// The output of a graph node.
    Node(NodeId),
    /// A constant.
    Const(Tensor),
}

/// Import state.
struct Importer {
    nodes: Vec<Node>,
    shapes: Vec<Shape>,
    /// Stage requested explicitly (doc string or name token), per node.
    explicit: Vec<Option<Stage>>,
    input: [usize; 3],
    values: HashMap<String, Value>,
    /// ONNX consumers (node inputs and graph outputs) per tensor name.
    uses: HashMap<String, usize>,
    names: HashSet<String>,
}

/// Builds a model from a decoded `ModelProto`.
pub(crate) fn from_proto(proto: &ModelProto) -> Result<Model, ModelError> {
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::onnx("model", "no graph"))?;
    let mut opset = None;
    for o in &proto.opset_import {
        let d = o.domain.as_deref().unwrap_or("");
        if d.is_empty() || d == "ai.onnx" {
            opset = o.version;
        }
    }
    let opset = opset.ok_or_else(|| ModelError::onnx("model", "no default-domain opset import"))?;
    if !(MIN_OPSET..=MAX_OPSET).contains(&opset) {
        return Err(ModelError::onnx(
            "model",
            format!("opset {opset} not supported (need {MIN_OPSET}..={MAX_OPSET})"),
        ));
    }

    let mut values = HashMap::new();
    for t in &graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        values.insert(name.clone(), Value::Const(tensor(t, &name)?));
    }
    let real_inputs: Vec<&ValueInfoProto> = graph
        .input
        .iter()
        .filter(|v| !values.contains_key(v.name.as_deref().unwrap_or("")))
        .collect();
    if real_inputs.len() != 1 {
        return Err(ModelError::onnx(
            "graph",
            format!(
                "expected exactly one non-constant input, found {}",
                real_inputs.len()
            ),
        ));
    }
    let input_vi = real_inputs[0];
    let input_name = input_vi.name.clone().unwrap_or_default();
    let input = input_dims(input_vi, &input_name)?;

    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *uses.entry(i.clone()).or_default() += 1;
        }
    }
    if graph.output.len() != 1 {
        return Err(ModelError::onnx(
            "graph",
            format!("expected exactly one output, found {}", graph.output.len()),
        ));
    }
    let out_name = graph.output[0].name.clone().unwrap_or_default();
    *uses.entry(out_name.clone()).or_default() += 1;

    let mut im = Importer {
        nodes: Vec::new(),
        shapes: Vec::new(),
        explicit: Vec::new(),
        input,
        values,
        uses,
        names: HashSet::new(),
    };
    let in_id = im.push(&input_name, Op::Input, vec![], Some(Stage::Stem))?;
    im.values.insert(input_name, Value::Node(in_id));

    for (k, n) in graph.node.iter().enumerate() {
        im.import_node(n, k)?;
    }
    let output = match im.values.get(&out_name) {
        Some(Value::Node(id)) => *id,
        Some(Value::Const(_)) => {
            return Err(ModelError::onnx(
                &out_name,
                "the graph output is a constant",
            ))
        }
        None => {
            return Err(ModelError::onnx(
                &out_name,
                "the graph output is never produced",
            ))
        }
    };
    if output == 0 {
        return Err(ModelError::onnx(
            &out_name,
            "the graph output is the graph input",
        ));
    }
    let stages = assign_stages(&im.nodes, &im.shapes, &im.explicit);
    for (n, s) in im.nodes.iter_mut().zip(stages) {
        n.stage = s;
    }
    let name = graph
        .name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "onnx-model".into());
    let model = Model {
        name,
        input: im.input,
        nodes: im.nodes,
        output,
    };
    let model = fuse_subset_relus(model);
    model.validate()?;
    Ok(model)
}

/// `[c, h, w]` of the graph input (`[N, c, h, w]` with N = 1 or symbolic).
fn input_dims(vi: &ValueInfoProto, name: &str) -> Result<[usize; 3], ModelError> {
    let tt = vi
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| ModelError::onnx(name, "graph input is not a tensor"))?;
    if tt.elem_type.unwrap_or(0) != DT_FLOAT {
        return Err(ModelError::onnx(
            name,
            format!(
                "graph input element type {} is not float32",
                tt.elem_type.unwrap_or(0)
            ),
        ));
    }
    let dims = &tt
        .shape
        .as_ref()
        .ok_or_else(|| ModelError::onnx(name, "graph input has no shape"))?
        .dim;
    if dims.len() != 4 {
        return Err(ModelError::onnx(
            name,
            format!("graph input must be [N, C, H, W], got rank {}", dims.len()),
        ));
    }
    match dims[0].dim_value {
        None | Some(1) => {}
        Some(n) => {
            return Err(ModelError::onnx(
                name,
                format!("batch size {n}; only 1 is supported"),
            ))
        }
    }
    let mut out = [0usize; 3];
    for (o, d) in out.iter_mut().zip(&dims[1..]) {
        match d.dim_value {
            Some(v) if (1..=MAX_SIZE).contains(&v) => *o = v as usize,
            _ => {
                return Err(ModelError::onnx(
                    name,
                    format!("graph input C, H, W must be fixed sizes in 1..={MAX_SIZE}"),
                ))
            }
        }
    }
    Ok(out)
}

/// Decodes a `TensorProto` (float32, int64, int32 or double; inline or raw data).
fn tensor(t: &TensorProto, name: &str) -> Result<Tensor, ModelError> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        return Err(ModelError::onnx(
            name,
            "tensors with external data are not supported",
        ));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            return Err(ModelError::onnx(name, format!("negative dimension {d}")));
        }
        dims.push(d as usize);
    }
    let numel = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| ModelError::onnx(name, "tensor too large"))?;
    let raw = t.raw_data.as_deref();
    let dt = t.data_type.unwrap_or(0);
    let data = match dt {
        DT_FLOAT => Data::F32(match raw {
            Some(r) => chunks::<4>(r, numel, name)?
                .map(f32::from_le_bytes)
                .collect(),
            None => t.float_data.clone(),
        }),
        DT_DOUBLE => Data::F32(match raw {
            Some(r) => chunks::<8>(r, numel, name)?
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
            None => t.double_data.iter().map(|&v| v as f32).collect(),
        }),
        DT_INT64 => Data::I64(match raw {
            Some(r) => chunks::<8>(r, numel, name)?
                .map(i64::from_le_bytes)
                .collect(),
            None => t.int64_data.clone(),
        }),
        DT_INT32 => Data::I64(match raw {
            Some(r) => chunks::<4>(r, numel, name)?
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
            None => t.int32_data.iter().map(|&v| v as i64).collect(),
        }),
        other => {
            return Err(ModelError::onnx(
                name,
                format!("tensor data type {other} not supported"),
            ))
        }
    };
    let len = match &data {
        Data::F32(v) => v.len(),
        Data::I64(v) => v.len(),
    };
    if len != numel {
        return Err(ModelError::onnx(
            name,
            format!("tensor has {len} values, dims {dims:?} need {numel}"),
        ));
    }
    Ok(Tensor { dims, data })
}

/// Splits little-endian raw data into `N`-byte elements, checking the length.
fn chunks<'a, const N: usize>(
    raw: &'a [u8],
    numel: usize,
    name: &str,
) -> Result<impl Iterator<Item = [u8; N]> + 'a, ModelError> {
    if raw.len() != numel * N {
        return Err(ModelError::onnx(
            name,
            format!("raw data has {} bytes, expected {}", raw.len(), numel * N),
        ));
    }
    Ok(raw.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }))
}

/// Attribute access for one node, refusing attributes the operator mapping does not know.
struct Attrs<'a> {
    op: &'a str,
    node: &'a str,
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// Errors on any attribute not in `known`.
    fn only(&self, known: &[&str]) -> Result<(), ModelError> {
        for a in self.list {
            let n = a.name.as_deref().unwrap_or("");
            if !known.contains(&n) {
                return Err(self.unsupported(n, "attribute not supported for this operator"));
            }
        }
        Ok(())
    }

    /// The attribute called `name`.
    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name.as_deref() == Some(name))
    }

    /// An INT attribute with a default.
    fn int(&self, name: &str, default: i64) -> Result<i64, ModelError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => {
                a.i.ok_or_else(|| self.unsupported(name, "expected an INT value"))
            }
        }
    }

    /// A FLOAT attribute with a default.
    fn float(&self, name: &str, default: f32) -> Result<f32, ModelError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => {
                a.f.ok_or_else(|| self.unsupported(name, "expected a FLOAT value"))
            }
        }
    }

    /// An INTS attribute, if present.
    fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    /// A STRING attribute with a default.
    fn string(&self, name: &str, default: &str) -> String {
        self.get(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_else(|| default.to_string())
    }

    /// An `UnsupportedAttribute` error for this node.
    fn unsupported(&self, attribute: &str, reason: impl Into<String>) -> ModelError {
        ModelError::UnsupportedAttribute {
            op: self.op.to_string(),
            node: self.node.to_string(),
            attribute: attribute.to_string(),
            reason: reason.into(),
        }
    }
}

/// ONNX dims of a graph tensor of shape `s` (batch 1 prepended).
fn onnx_dims(s: &Shape) -> Vec<usize> {
    match *s {
        Shape::Chw { c, h, w } => vec![1, c, h, w],
        Shape::Flat(n) => vec![1, n],
    }
}

impl Importer {
    /// Appends a node under a unique name derived from `name`, checking its shape.
    fn push(
        &mut self,
        name: &str,
        op: Op,
        inputs: Vec<NodeId>,
        explicit: Option<Stage>,
    ) -> Result<NodeId, ModelError> {
        let mut unique = name.to_string();
        let mut k = 1;
        while unique.is_empty() || self.names.contains(&unique) {
            unique = format!("{name}_{k}");
            k += 1;
        }
        self.names.insert(unique.clone());
        let node = Node {
            name: unique,
            op,
            inputs,
            stage: explicit.unwrap_or(Stage::Stem),
        };
        let id = self.nodes.len();
        let shape = node_shape(self.input, id, &node, &self.shapes)?;
        self.nodes.push(node);
        self.shapes.push(shape);
        self.explicit.push(explicit);
        Ok(id)
    }

    /// The value an input name refers to.
    fn value(&self, name: &str, node: &str) -> Result<&Value, ModelError> {
        self.values.get(name).ok_or_else(|| {
            ModelError::onnx(node, format!("input `{name}` is not defined before use"))
        })
    }

    /// Input `i` as a graph node.
    fn node_in(&self, n: &NodeProto, i: usize, node: &str) -> Result<NodeId, ModelError> {
        let name = n
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ModelError::onnx(node, format!("missing input {i}")))?;
        match self.value(name, node)? {
            Value::Node(id) => Ok(*id),
            Value::Const(_) => Err(ModelError::onnx(
                node,
                format!("input `{name}` must be computed, not a constant"),
            )),
        }
    }

    /// Optional input `i` as a constant (`None` if absent or empty).
    fn const_in(&self, n: &NodeProto, i: usize, node: &str) -> Result<Option<Tensor>, ModelError> {
        let Some(name) = n.input.get(i).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        match self.value(name, node)? {
            Value::Const(t) => Ok(Some(t.clone())),
            Value::Node(_) => Err(ModelError::onnx(
                node,
                format!("input `{name}` must be a constant (initializer)"),
            )),
        }
    }

    /// Required float constant input `i`.
    fn f32_in(
        &self,
        n: &NodeProto,
        i: usize,
        node: &str,
    ) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        match self.const_in(n, i, node)? {
            Some(Tensor {
                dims,
                data: Data::F32(v),
            }) => Ok((dims, v)),
            Some(_) => Err(ModelError::onnx(node, format!("input {i} must be float32"))),
            None => Err(ModelError::onnx(
                node,
                format!("missing constant input {i}"),
            )),
        }
    }

    /// Optional int64 constant input `i`.
    fn i64_in(&self, n: &NodeProto, i: usize, node: &str) -> Result<Option<Vec<i64>>, ModelError> {
        match self.const_in(n, i, node)? {
            Some(Tensor {
                data: Data::I64(v), ..
            }) => Ok(Some(v)),
            Some(_) => Err(ModelError::onnx(
                node,
                format!("input {i} must be an integer tensor"),
            )),
            None => Ok(None),
        }
    }

    /// Binds the node's single output to `v`.
    fn bind(&mut self, n: &NodeProto, v: Value, node: &str) -> Result<(), ModelError> {
        let out = n
            .output
            .first()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ModelError::onnx(node, "node has no output"))?;
        if n.output
            .iter()
            .skip(1)
            .any(|o| !o.is_empty() && self.uses.get(o).copied().unwrap_or(0) > 0)
        {
            return Err(ModelError::onnx(
                node,
                "only the first output of this operator may be used",
            ));
        }
        self.values.insert(out.clone(), v);
        Ok(())
    }

    /// Pushes a node for `n` and binds its output.
    fn emit(
        &mut self,
        n: &NodeProto,
        node: &str,
        op: Op,
        inputs: Vec<NodeId>,
        stage: Option<Stage>,
    ) -> Result<NodeId, ModelError> {
        let id = self.push(node, op, inputs, stage)?;
        self.bind(n, Value::Node(id), node)?;
        Ok(id)
    }

    /// Number of consumers of input `i` of `n`.
    fn uses_of(&self, n: &NodeProto, i: usize) -> usize {
        n.input
            .get(i)
            .and_then(|s| self.uses.get(s))
            .copied()
            .unwrap_or(0)
    }

    /// Channel axis check: ONNX `axis` must address channels (1, or -3 on 4-D / -1 on 2-D tensors).
    fn channel_axis(&self, axis: i64, s: &Shape, a: &Attrs) -> Result<(), ModelError> {
        let rank = onnx_dims(s).len() as i64;
        let ax = if axis < 0 { axis + rank } else { axis };
        if ax != 1 {
            return Err(a.unsupported(
                "axis",
                format!("only the channel axis (1) is supported, got {axis}"),
            ));
        }
        Ok(())
    }

    /// Maps one ONNX node (index `k` in the graph) onto the model.
    fn import_node(&mut self, n: &NodeProto, k: usize) -> Result<(), ModelError> {
        let op = n.op_type.as_deref().unwrap_or("");
        let given = n.name.clone().unwrap_or_default();
        let node_name = if given.is_empty() {
            format!("{op}_{k}")
        } else {
            given
        };
        let node = node_name.as_str();
        let domain = n.domain.as_deref().unwrap_or("");
        if !(domain.is_empty() || domain == "ai.onnx") {
            return Err(ModelError::UnsupportedOp {
                op: format!("{domain}::{op}"),
                node: node.to_string(),
            });
        }
        let stage = n
            .doc_string
            .as_deref()
            .and_then(|d| d.strip_prefix(STAGE_DOC_PREFIX))
            .and_then(Stage::from_token)
            .or_else(|| Stage::from_node_name(node));
        let a = Attrs {
            op,
            node,
            list: &n.attribute,
        };
        match op {
            "Conv" => self.conv(n, node, &a, stage),
            "BatchNormalization" => self.batch_norm(n, node, &a, stage),
            "Relu" => {
                a.only(&[])?;
                let x = self.node_in(n, 0, node)?;
                self.emit(n, node, Op::Relu(Relu { channels: None }), vec![x], stage)
                    .map(drop)
            }
            "Identity" | "Dropout" => {
                if op == "Dropout" {
                    a.only(&["seed", "ratio", "is_test"])?;
                    if n.input.get(2).is_some_and(|s| !s.is_empty()) {
                        return Err(ModelError::onnx(
                            node,
                            "Dropout with a training_mode input is not supported",
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
            "Add" => self.add(n, node, &a, stage),
            "MatMul" => {
                a.only(&[])?;
                let x = self.node_in(n, 0, node)?;
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
            "Gemm" => self.gemm(n, node, &a, stage),
            "Flatten" => {
                a.only(&["axis"])?;
                let x = self.node_in(n, 0, node)?;
                let axis = a.int("axis", 1)?;
                let rank = onnx_dims(&self.shapes[x]).len() as i64;
                let ax = if axis < 0 { axis + rank } else { axis };
                if ax != 0 && ax != 1 {
                    return Err(a.unsupported(
                        "axis",
                        format!(
                            "only axis 0 or 1 (flatten all but batch) is supported, got {axis}"
                        ),
                    ));
                }
                self.emit(n, node, Op::Flatten, vec![x], stage).map(drop)
            }
            "Reshape" => self.reshape(n, node, &a, stage),
            "AveragePool" => self.avg_pool(n, node, &a, stage),
            "GlobalAveragePool" => {
                a.only(&[])?;
                let x = self.node_in(n, 0, node)?;
                self.emit(n, node, Op::GlobalAvgPool, vec![x], stage)
                    .map(drop)
            }
            "Concat" => self.concat(n, node, &a, stage),
            "Split" => self.split(n, node, &a, stage),
            "Slice" => self.slice(n, node, &a, stage),
            "Constant" => self.constant(n, node, &a),
            "Shape" => {
                a.only(&["start", "end"])?;
                let x = self.node_in(n, 0, node)?;
                let dims: Vec<i64> = onnx_dims(&self.shapes[x])
                    .iter()
                    .map(|&d| d as i64)
                    .collect();
                let r = dims.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (clamp(a.int("start", 0)?), clamp(a.int("end", r)?));
                let v: Vec<i64> = if s < e { dims[s..e].to_vec() } else { vec![] };
                self.bind(
                    n,
                    Value::Const(Tensor {
                        dims: vec![v.len()],
                        data: Data::I64(v),
                    }),
                    node,
                )
            }
            "Gather" => {
                a.only(&["axis"])?;
                let axis = a.int("axis", 0)?;
                let data = self.const_in(n, 0, node)?.ok_or_else(|| {
                    ModelError::onnx(node, "Gather is only supported on constants")
                })?;
                let idx = self
                    .i64_in(n, 1, node)?
                    .ok_or_else(|| ModelError::onnx(node, "Gather indices must be constant"))?;
                let idx_dims = match self.const_in(n, 1, node)? {
                    Some(t) => t.dims,
                    None => vec![],
                };
                if data.dims.len() != 1 || (axis != 0 && axis != -1) {
                    return Err(a.unsupported("axis", "only 1-D constant Gather is supported"));
                }
                let len = data.dims[0] as i64;
                let mut pos = Vec::with_capacity(idx.len());
                for &i in &idx {
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
                        dims: idx_dims,
                        data: out,
                    }),
                    node,
                )
            }
            "Unsqueeze" | "Squeeze" => {
                a.only(&["axes"])?;
                let t = self
                    .const_in(n, 0, node)?
                    .ok_or_else(|| ModelError::UnsupportedOp {
                        op: format!("{op} (on a computed tensor)"),
                        node: node.to_string(),
                    })?;
                let axes = match a.ints("axes") {
                    Some(v) => Some(v),
                    None => self.i64_in(n, 1, node)?,
                };
                let dims =
                    reshape_dims_for_squeeze(op == "Unsqueeze", &t.dims, axes.as_deref(), node)?;
                self.bind(n, Value::Const(Tensor { dims, data: t.data }), node)
            }
            "Cast" => {
                a.only(&["to", "saturate"])?;
                let t = self
                    .const_in(n, 0, node)?
                    .ok_or_else(|| ModelError::UnsupportedOp {
                        op: "Cast (on a computed tensor)".into(),
                        node: node.to_string(),
                    })?;
                let data = match (a.int("to", 0)? as i32, t.data) {
                    (DT_FLOAT, Data::I64(v)) => Data::F32(v.iter().map(|&x| x as f32).collect()),
                    (DT_INT64 | DT_INT32, Data::F32(v)) => {
                        Data::I64(v.iter().map(|&x| x as i64).collect())
                    }
                    (DT_FLOAT, d @ Data::F32(_)) | (DT_INT64 | DT_INT32, d @ Data::I64(_)) => d,
                    (to, _) => return Err(a.unsupported("to", format!("cast to data type {to}"))),
                };
                self.bind(n, Value::Const(Tensor { dims: t.dims, data }), node)
            }
            _ => Err(ModelError::UnsupportedOp {
                op: op.to_string(),
                node: node.to_string(),
            }),
        }
    }

    /// `Conv` → [`Conv2d`].
    fn conv(
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
        if let Some(d) = a.ints("dilations") {
            if d.iter().any(|&v| v != 1) {
                return Err(a.unsupported(
                    "dilations",
                    format!("only dilation 1 is supported, got {d:?}"),
                ));
            }
        }
        let stride = two(
            a.ints("strides").unwrap_or_else(|| vec![1, 1]),
            "strides",
            a,
        )?;
        let (_, h, w) = self.shapes[x].dims();
        let auto_pad = a.string("auto_pad", "NOTSET");
        let padding = match auto_pad.as_str() {
            "NOTSET" | "" => match a.ints("pads") {
                None => [0, 0],
                Some(p)
                    if p.len() == 4
                        && p[0] == p[2]
                        && p[1] == p[3]
                        && (0..=MAX_SIZE).contains(&p[0])
                        && (0..=MAX_SIZE).contains(&p[1]) =>
                {
                    [p[0] as usize, p[1] as usize]
                }
                Some(p) => {
                    return Err(a.unsupported(
                        "pads",
                        format!("only symmetric non-negative padding is supported, got {p:?}"),
                    ))
                }
            },
            "VALID" => [0, 0],
            "SAME_UPPER" | "SAME_LOWER" => {
                let pad = |size: usize, k: usize, s: usize| -> Option<usize> {
                    let out = size.div_ceil(s);
                    let total = ((out - 1) * s + k).saturating_sub(size);
                    total.is_multiple_of(2).then_some(total / 2)
                };
                match (pad(h, kh, stride[0]), pad(w, kw, stride[1])) {
                    (Some(ph), Some(pw)) => [ph, pw],
                    _ => return Err(a.unsupported("auto_pad", "SAME padding would be asymmetric")),
                }
            }
            other => return Err(a.unsupported("auto_pad", format!("unknown value {other}"))),
        };
        let bias = match self.const_in(n, 2, node)? {
            None => vec![0.0; c_out],
            Some(Tensor {
                data: Data::F32(v), ..
            }) => v,
            Some(_) => return Err(ModelError::onnx(node, "conv bias must be float32")),
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
        self.emit(n, node, Op::Conv2d(conv), vec![x], stage)
            .map(drop)
    }

    /// `BatchNormalization`: folded into the producing conv / linear when it is that node's only
    /// consumer, otherwise a depthwise 1×1 conv (or a diagonal linear on vectors).
    fn batch_norm(
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
                "only inference-mode BatchNormalization is supported",
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
        let single_use = self.uses_of(n, 0) == 1;
        match &mut self.nodes[x].op {
            Op::Conv2d(conv) if single_use => {
                let per_out = conv.weight.len() / conv.c_out.max(1);
                for o in 0..conv.c_out {
                    for wv in &mut conv.weight[o * per_out..(o + 1) * per_out] {
                        *wv = (*wv as f64 * scale[o]) as f32;
                    }
                    conv.bias[o] = (conv.bias[o] as f64 * scale[o] + shift[o]) as f32;
                }
                self.bind(n, Value::Node(x), node)
            }
            Op::Linear(lin) if single_use => {
                let i = lin.in_features;
                for o in 0..lin.out_features {
                    for wv in &mut lin.weight[o * i..(o + 1) * i] {
                        *wv = (*wv as f64 * scale[o]) as f32;
                    }
                    lin.bias[o] = (lin.bias[o] as f64 * scale[o] + shift[o]) as f32;
                }
                self.bind(n, Value::Node(x), node)
            }
            _ => {
                let (s32, b32): (Vec<f32>, Vec<f32>) = (
                    scale.iter().map(|&v| v as f32).collect(),
                    shift.iter().map(|&v| v as f32).collect(),
                );
                let op = match self.shapes[x] {
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
                        let mut w = vec![0f32; c * c];
                        (0..c).for_each(|i| w[i * c + i] = s32[i]);
                        Op::Linear(Linear {
                            in_features: c,
                            out_features: c,
                            weight: w,
                            bias: b32,
                        })
                    }
                };
                self.emit(n, node, op, vec![x], stage).map(drop)
            }
        }
    }

    /// `Add`: residual add of two computed tensors, or a constant bias folded into the producing
    /// conv (per-channel constant) / linear layer (per-feature constant) when it is the only consumer.
    fn add(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        if n.input.len() != 2 {
            return Err(ModelError::onnx(node, "Add needs two inputs"));
        }
        let v0 = self.value(&n.input[0], node)?.clone();
        let v1 = self.value(&n.input[1], node)?.clone();
        let (x, k, t) = match (v0, v1) {
            (Value::Node(p), Value::Node(q)) => {
                return self.emit(n, node, Op::Add, vec![p, q], stage).map(drop)
            }
            (Value::Node(p), Value::Const(t)) => (p, 0, t),
            (Value::Const(t), Value::Node(p)) => (p, 1, t),
            (Value::Const(_), Value::Const(_)) => {
                return Err(ModelError::UnsupportedOp {
                    op: "Add (of two constants)".into(),
                    node: node.to_string(),
                })
            }
        };
        let Data::F32(vals) = &t.data else {
            return Err(ModelError::onnx(node, "Add constant must be float32"));
        };
        let single_use = self.uses_of(n, k) == 1;
        let c = self.shapes[x].channels();
        // Right-aligned broadcasting: every dim is 1 except (possibly) the channel axis, which is
        // third from the end on [1, C, H, W] and last on [1, C].
        let chan_from_end = if matches!(self.shapes[x], Shape::Chw { .. }) {
            3
        } else {
            1
        };
        let r = t.dims.len();
        let per_channel = vals.len() == c
            && r <= onnx_dims(&self.shapes[x]).len()
            && t.dims
                .iter()
                .enumerate()
                .all(|(i, &d)| d == 1 || (r >= chan_from_end && i == r - chan_from_end));
        let ok = match &mut self.nodes[x].op {
            Op::Conv2d(conv) if single_use && per_channel => {
                conv.bias.iter_mut().zip(vals).for_each(|(b, v)| *b += v);
                true
            }
            Op::Linear(lin) if single_use && per_channel => {
                lin.bias.iter_mut().zip(vals).for_each(|(b, v)| *b += v);
                true
            }
            _ => false,
        };
        if !ok {
            return Err(ModelError::UnsupportedOp {
                op: "Add (constant operand not foldable into a single-use Conv/MatMul/Gemm)".into(),
                node: node.to_string(),
            });
        }
        self.bind(n, Value::Node(x), node)
    }

    /// `Gemm` (transA = 0, constant B and C) → [`Linear`].
    fn gemm(
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
        let x = self.node_in(n, 0, node)?;
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
            Some(Tensor {
                data: Data::F32(v), ..
            }) if v.len() == o => v.iter().map(|&x| beta * x).collect(),
            Some(Tensor {
                data: Data::F32(v), ..
            }) if v.len() == 1 => vec![beta * v[0]; o],
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

    /// `Reshape` to `[1, -1]` (or `[1, numel]`) → `Flatten`; a reshape to the current shape is dropped.
    fn reshape(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["allowzero"])?;
        let x = self.node_in(n, 0, node)?;
        let target = self
            .i64_in(n, 1, node)?
            .ok_or_else(|| ModelError::onnx(node, "Reshape shape must be a constant"))?;
        let allow_zero = a.int("allowzero", 0)? != 0;
        let cur = onnx_dims(&self.shapes[x]);
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
        if dims == cur {
            return self.bind(n, Value::Node(x), node);
        }
        if dims == [1, numel] {
            return self.emit(n, node, Op::Flatten, vec![x], stage).map(drop);
        }
        Err(ModelError::UnsupportedOp {
            op: format!("Reshape to {dims:?} (only flattening to [1, -1] is supported)"),
            node: node.to_string(),
        })
    }

    /// `AveragePool` without padding → [`Pool`].
    fn avg_pool(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "kernel_shape",
            "pads",
            "strides",
            "dilations",
        ])?;
        let x = self.node_in(n, 0, node)?;
        let kernel = two(
            a.ints("kernel_shape")
                .ok_or_else(|| a.unsupported("kernel_shape", "missing"))?,
            "kernel_shape",
            a,
        )?;
        let stride = two(
            a.ints("strides").unwrap_or_else(|| vec![1, 1]),
            "strides",
            a,
        )?;
        if a.ints("pads").is_some_and(|p| p.iter().any(|&v| v != 0)) {
            return Err(a.unsupported("pads", "padded average pooling is not supported"));
        }
        if a.ints("dilations")
            .is_some_and(|p| p.iter().any(|&v| v != 1))
        {
            return Err(a.unsupported("dilations", "dilated pooling is not supported"));
        }
        let ap = a.string("auto_pad", "NOTSET");
        if !(ap == "NOTSET" || ap == "VALID" || ap.is_empty()) {
            return Err(a.unsupported("auto_pad", format!("{ap} is not supported")));
        }
        if a.int("ceil_mode", 0)? != 0 {
            let (_, h, w) = self.shapes[x].dims();
            let exact = |s: usize, k: usize, st: usize| s >= k && (s - k).is_multiple_of(st);
            if !(exact(h, kernel[0], stride[0]) && exact(w, kernel[1], stride[1])) {
                return Err(
                    a.unsupported("ceil_mode", "ceil_mode = 1 changes the output size here")
                );
            }
        }
        self.emit(
            n,
            node,
            Op::AvgPool(Pool { kernel, stride }),
            vec![x],
            stage,
        )
        .map(drop)
    }

    /// `Concat` on the channel axis → `Concat`; on constants (shape arithmetic) → constant.
    fn concat(
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
            let mut out = Vec::new();
            for v in vals {
                match v {
                    Value::Const(Tensor {
                        dims,
                        data: Data::I64(d),
                    }) if dims.iter().filter(|&&x| x != 1).count() <= 1 => out.extend(d),
                    _ => {
                        return Err(ModelError::UnsupportedOp {
                            op: "Concat (of non-1-D or float constants)".into(),
                            node: node.to_string(),
                        })
                    }
                }
            }
            return self.bind(
                n,
                Value::Const(Tensor {
                    dims: vec![out.len()],
                    data: Data::I64(out),
                }),
                node,
            );
        }
        let mut ids = Vec::with_capacity(vals.len());
        for v in vals {
            match v {
                Value::Node(id) => ids.push(id),
                Value::Const(_) => {
                    return Err(ModelError::UnsupportedOp {
                        op: "Concat (mixing constants and tensors)".into(),
                        node: node.to_string(),
                    })
                }
            }
        }
        self.channel_axis(axis, &self.shapes[ids[0]], a)?;
        self.emit(n, node, Op::Concat, ids, stage).map(drop)
    }

    /// `Split` on the channel axis → one `SliceChannels` per output, named after the output tensor.
    fn split(
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

    /// `Slice` of the channel axis with step 1 → `SliceChannels`.
    fn slice(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        let x = self.node_in(n, 0, node)?;
        let get = |i: usize, what: &str| -> Result<Vec<i64>, ModelError> {
            self.i64_in(n, i, node)?
                .ok_or_else(|| ModelError::onnx(node, format!("Slice {what} must be constant")))
        };
        let starts = get(1, "starts")?;
        let ends = get(2, "ends")?;
        let rank = onnx_dims(&self.shapes[x]).len() as i64;
        let axes = self
            .i64_in(n, 3, node)?
            .unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = self
            .i64_in(n, 4, node)?
            .unwrap_or_else(|| vec![1; starts.len()]);
        let norm: Vec<i64> = axes
            .iter()
            .map(|&ax| if ax < 0 { ax + rank } else { ax })
            .collect();
        if starts.len() != 1 || ends.len() != 1 || norm != [1] || steps != [1] {
            return Err(ModelError::UnsupportedOp {
                op: format!(
                    "Slice (only the channel axis with step 1; axes {axes:?}, steps {steps:?})"
                ),
                node: node.to_string(),
            });
        }
        let c = self.shapes[x].channels() as i64;
        let fix = |v: i64| (if v < 0 { v + c } else { v }).clamp(0, c);
        let (s, e) = (fix(starts[0]), fix(ends[0]));
        if e <= s {
            return Err(ModelError::onnx(
                node,
                format!("empty channel slice {s}..{e}"),
            ));
        }
        let op = Op::SliceChannels {
            start: s as usize,
            len: (e - s) as usize,
        };
        self.emit(n, node, op, vec![x], stage).map(drop)
    }

    /// `Constant` → constant value.
    fn constant(&mut self, n: &NodeProto, node: &str, a: &Attrs) -> Result<(), ModelError> {
        a.only(&[
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
        ])?;
        let t = if let Some(t) = a.get("value").and_then(|v| v.t.as_ref()) {
            tensor(t, node)?
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
            Tensor {
                dims: vec![v.ints.len()],
                data: Data::I64(v.ints.clone()),
            }
        } else {
            return Err(ModelError::onnx(
                node,
                "Constant without a supported value attribute",
            ));
        };
        self.bind(n, Value::Const(t), node)
    }
}

/// A two-element INTS attribute as positive sizes.
fn two(v: Vec<i64>, name: &str, a: &Attrs) -> Result<[usize; 2], ModelError> {
    match v.as_slice() {
        [p, q] if (1..=MAX_SIZE).contains(p) && (1..=MAX_SIZE).contains(q) => {
            Ok([*p as usize, *q as usize])
        }
        _ => Err(a.unsupported(
            name,
            format!("expected two values in 1..={MAX_SIZE}, got {v:?}"),
        )),
    }
}

/// Output dims of (Un)Squeeze on a constant.
fn reshape_dims_for_squeeze(
    unsqueeze: bool,
    dims: &[usize],
    axes: Option<&[i64]>,
    node: &str,
) -> Result<Vec<usize>, ModelError> {
    if unsqueeze {
        let axes = axes.ok_or_else(|| ModelError::onnx(node, "Unsqueeze without axes"))?;
        let r = (dims.len() + axes.len()) as i64;
        let mut norm: Vec<usize> = Vec::new();
        for &ax in axes {
            let v = if ax < 0 { ax + r } else { ax };
            if !(0..r).contains(&v) {
                return Err(ModelError::onnx(
                    node,
                    format!("Unsqueeze axis {ax} out of range"),
                ));
            }
            norm.push(v as usize);
        }
        let mut out = Vec::with_capacity(r as usize);
        let mut it = dims.iter();
        for i in 0..r as usize {
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
        let r = dims.len() as i64;
        Ok(dims
            .iter()
            .enumerate()
            .filter(|&(i, &d)| {
                let sel = axes.is_none_or(|ax| {
                    ax.iter()
                        .any(|&x| (if x < 0 { x + r } else { x }) == i as i64)
                });
                !(sel && d == 1)
            })
            .map(|(_, &d)| d)
            .collect())
    }
}

/// Stages for every node: the explicit stage where known, otherwise the structural rule (module docs).
fn assign_stages(nodes: &[Node], shapes: &[Shape], explicit: &[Option<Stage>]) -> Vec<Stage> {
    let n = nodes.len();
    let head_start = nodes
        .iter()
        .position(|nd| matches!(nd.op, Op::GlobalAvgPool | Op::Flatten | Op::Linear(_)))
        .unwrap_or(n);
    // Stem: up to the point where the first residual block branches off.
    let stem_end = match nodes[..head_start].iter().position(|nd| nd.op == Op::Add) {
        Some(add) => {
            let anc = |start: NodeId| -> Vec<bool> {
                let mut seen = vec![false; n];
                let mut stack = vec![start];
                while let Some(v) = stack.pop() {
                    if !seen[v] {
                        seen[v] = true;
                        stack.extend(&nodes[v].inputs);
                    }
                }
                seen
            };
            let (a, b) = (anc(nodes[add].inputs[0]), anc(nodes[add].inputs[1]));
            (0..n).rev().find(|&i| a[i] && b[i]).unwrap_or(0)
        }
        None => {
            let convs: Vec<usize> = (0..head_start)
                .filter(|&i| matches!(nodes[i].op, Op::Conv2d(_)))
                .collect();
            match convs.get(1) {
                Some(&second) => second - 1,
                None => head_start.saturating_sub(1),
            }
        }
    };
    let mut resolutions: Vec<(usize, usize)> = Vec::new();
    let mut out = Vec::with_capacity(n);
    let mut last = Stage::Stem;
    for i in 0..n {
        let structural = if i >= head_start {
            Stage::Head
        } else if i <= stem_end {
            Stage::Stem
        } else {
            match shapes[i] {
                Shape::Chw { h, w, .. } => {
                    let k = match resolutions.iter().position(|&r| r == (h, w)) {
                        Some(k) => k,
                        None => {
                            resolutions.push((h, w));
                            resolutions.len() - 1
                        }
                    };
                    Stage::Stage(k + 1)
                }
                Shape::Flat(_) => last,
            }
        };
        let s = explicit[i].unwrap_or(structural);
        last = s;
        out.push(s);
    }
    out
}

/// Turns the exported form of a channel-subset ReLU (`<n>::part<i>` slices → `<n>::relu<i>` /
/// `<n>::id<i>` → Concat `<n>`) back into one `Relu { channels }` node named `<n>`.
fn fuse_subset_relus(model: Model) -> Model {
    let Model {
        name,
        input,
        mut nodes,
        output,
    } = model;
    let count = nodes.len();
    let mut uses = vec![0usize; count];
    nodes
        .iter()
        .for_each(|nd| nd.inputs.iter().for_each(|&i| uses[i] += 1));
    uses[output] += 1;
    let mut dead = vec![false; count];
    for id in 0..count {
        if nodes[id].op != Op::Concat {
            continue;
        }
        let cname = nodes[id].name.clone();
        let mut src = None;
        let mut next = 0usize;
        let mut selected = Vec::new();
        let mut parts = Vec::new();
        let mut ok = true;
        for (j, &p) in nodes[id].inputs.iter().enumerate() {
            let pn = &nodes[p];
            let is_relu = pn.op == Op::Relu(Relu { channels: None })
                && pn.name == format!("{cname}::relu{j}");
            let is_id = pn.op == Op::Identity && pn.name == format!("{cname}::id{j}");
            if !(is_relu || is_id) || uses[p] != 1 || pn.inputs.len() != 1 {
                ok = false;
                break;
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
        if !ok || infer_channels(&nodes, input, src) != Some(next) {
            continue;
        }
        parts.iter().for_each(|&p| dead[p] = true);
        nodes[id].op = Op::Relu(Relu {
            channels: Some(selected),
        });
        nodes[id].inputs = vec![src];
    }
    if !dead.iter().any(|&d| d) {
        return Model {
            name,
            input,
            nodes,
            output,
        };
    }
    let mut map = vec![usize::MAX; count];
    let mut kept = Vec::with_capacity(count);
    for (i, mut nd) in nodes.into_iter().enumerate() {
        if dead[i] {
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
