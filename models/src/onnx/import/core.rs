//! Import state: ONNX tensor names bound to graph nodes or constants, node creation with shape
//! checking, and the per-node dispatch onto the operator families.

use std::collections::{HashMap, HashSet};

use super::super::proto::*;
use super::super::STAGE_DOC_PREFIX;
use super::attrs::Attrs;
use super::hints;
use super::tensor::{Data, DataSource, Tensor};
use crate::graph::{Node, NodeId, Op, Shape, Stage};
use crate::shape::node_shape;
use crate::ModelError;

/// What an ONNX tensor name refers to.
#[derive(Clone, Debug)]
pub(super) enum Value {
    /// The output of a graph node.
    Node(NodeId),
    /// A constant.
    Const(Tensor),
    /// A channel-grouped view `[1, g, c/g, h, w]` of a node (`[1, c/g, g, h, w]` once
    /// transposed): the first half of a channel shuffle.
    Grouped {
        id: NodeId,
        groups: usize,
        transposed: bool,
    },
    /// Derived from a computed tensor by public data movement and averaging (any rank).
    Derived(super::derived::Derived),
    /// Produced by a node that could not be imported (only while checking).
    Unknown,
}

/// ONNX operators the importer maps (used to judge nodes downstream of a problem while checking).
pub(super) const KNOWN_OPS: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Div",
    "Dropout",
    "Equal",
    "Flatten",
    "Gather",
    "Gemm",
    "GatherND",
    "GlobalAveragePool",
    "Identity",
    "MatMul",
    "MaxPool",
    "Mul",
    "Neg",
    "Pad",
    "Range",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Shape",
    "Slice",
    "Split",
    "Squeeze",
    "Sub",
    "Transpose",
    "Unsqueeze",
    "Where",
];

/// Import state.
pub(super) struct Importer {
    pub nodes: Vec<Node>,
    pub shapes: Vec<Shape>,
    /// Stage requested explicitly (doc string or name token), per node.
    pub explicit: Vec<Option<Stage>>,
    pub input: [usize; 3],
    pub values: HashMap<String, Value>,
    /// ONNX consumers (node inputs and the chosen graph output) per tensor name.
    pub uses: HashMap<String, usize>,
    pub names: HashSet<String>,
    pub source: DataSource,
    /// Record per-node problems and carry on (checking) instead of failing at the first.
    pub lenient: bool,
    pub problems: Vec<ModelError>,
}

/// An `UnsupportedOp` error with the advice for `op_type`.
pub(super) fn unsupported_op(op_type: &str, form: impl Into<String>, node: &str) -> ModelError {
    ModelError::UnsupportedOp {
        op: form.into(),
        node: node.to_string(),
        hint: hints::advice(op_type).to_string(),
    }
}

/// ONNX dims of a graph tensor of shape `s` (batch 1 prepended).
pub(super) fn onnx_dims(s: &Shape) -> Vec<usize> {
    match *s {
        Shape::Chw { c, h, w } => vec![1, c, h, w],
        Shape::Flat(n) => vec![1, n],
    }
}

/// An axis normalised against `rank` (negative counts from the end).
pub(super) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

impl Importer {
    /// Appends a node under a unique name derived from `name`, checking its shape.
    pub fn push(
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
        let node = Node {
            name: unique.clone(),
            op,
            inputs,
            stage: explicit.unwrap_or(Stage::Stem),
        };
        let id = self.nodes.len();
        let shape = node_shape(self.input, id, &node, &self.shapes)?;
        self.names.insert(unique);
        self.nodes.push(node);
        self.shapes.push(shape);
        self.explicit.push(explicit);
        Ok(id)
    }

    /// The value an input name refers to.
    pub fn value(&self, name: &str, node: &str) -> Result<&Value, ModelError> {
        self.values.get(name).ok_or_else(|| {
            ModelError::onnx(node, format!("input `{name}` is not defined before use"))
        })
    }

    /// Input `i` of `n` (`None` if absent or empty).
    pub fn input_value(
        &self,
        n: &NodeProto,
        i: usize,
        node: &str,
    ) -> Result<Option<Value>, ModelError> {
        match n.input.get(i).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(name) => self.value(name, node).cloned().map(Some),
        }
    }

    /// Input `i` as a graph node.
    pub fn node_in(&self, n: &NodeProto, i: usize, node: &str) -> Result<NodeId, ModelError> {
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
            Value::Grouped { .. } => Err(unsupported_op(
                "Transpose",
                "a 5-D channel-grouped tensor outside a channel shuffle",
                node,
            )),
            Value::Derived(_) => Err(ModelError::onnx(
                node,
                "a traced tensor must be materialised first",
            )),
            Value::Unknown => Err(ModelError::onnx(
                node,
                "input comes from an unsupported node",
            )),
        }
    }

    /// Optional input `i` as a constant (`None` if absent or empty).
    pub fn const_in(
        &self,
        n: &NodeProto,
        i: usize,
        node: &str,
    ) -> Result<Option<Tensor>, ModelError> {
        let Some(name) = n.input.get(i).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        match self.value(name, node)? {
            Value::Const(t) => Ok(Some(t.clone())),
            _ => Err(ModelError::onnx(
                node,
                format!("input `{name}` must be a constant (initializer)"),
            )),
        }
    }

    /// Required float constant input `i`.
    pub fn f32_in(
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
    pub fn i64_in(
        &self,
        n: &NodeProto,
        i: usize,
        node: &str,
    ) -> Result<Option<Vec<i64>>, ModelError> {
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
    pub fn bind(&mut self, n: &NodeProto, v: Value, node: &str) -> Result<(), ModelError> {
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
    pub fn emit(
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
    pub fn uses_of(&self, n: &NodeProto, i: usize) -> usize {
        n.input
            .get(i)
            .and_then(|s| self.uses.get(s))
            .copied()
            .unwrap_or(0)
    }

    /// Channel axis check: ONNX `axis` must address channels (1, or -3 on 4-D / -1 on 2-D tensors).
    pub fn channel_axis(&self, axis: i64, s: &Shape, a: &Attrs) -> Result<(), ModelError> {
        if norm_axis(axis, onnx_dims(s).len()) != Some(1) {
            return Err(a.unsupported(
                "axis",
                format!("only the channel axis (1) is supported, got {axis}"),
            ));
        }
        Ok(())
    }

    /// Maps one ONNX node (index `k` in the graph) onto the model. While checking, a node that
    /// cannot be imported is recorded and its outputs are bound to a best guess (its first computed
    /// input for shape-preserving operators, otherwise unknown) so later nodes are still checked.
    pub fn import_checked(&mut self, n: &NodeProto, k: usize) -> Result<(), ModelError> {
        let op = n.op_type.as_deref().unwrap_or("");
        let blocked = n
            .input
            .iter()
            .any(|i| matches!(self.values.get(i), Some(Value::Unknown)));
        if blocked {
            // Only reachable while checking: judge the operator by its type alone.
            if !KNOWN_OPS.contains(&op) {
                self.problems.push(unsupported_op(op, op, &node_name(n, k)));
            }
            self.bind_all(n, Value::Unknown);
            return Ok(());
        }
        match self.import_traced(n, k) {
            Ok(()) => Ok(()),
            Err(e) if self.lenient => {
                self.problems.push(e);
                let guess = n
                    .input
                    .iter()
                    .find_map(|i| match self.values.get(i) {
                        Some(v @ Value::Node(_)) if shape_preserving(op) => Some(v.clone()),
                        _ => None,
                    })
                    .unwrap_or(Value::Unknown);
                self.bind_all(n, guess);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Binds every output of `n` to `v`.
    fn bind_all(&mut self, n: &NodeProto, v: Value) {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            self.values.insert(o.clone(), v.clone());
        }
    }

    /// Routes nodes on traced tensors (and `GatherND` / general `Transpose` on computed ones) to
    /// the tracer; any other operator reading a traced tensor gets it materialised first.
    fn import_traced(&mut self, n: &NodeProto, k: usize) -> Result<(), ModelError> {
        let op = n.op_type.as_deref().unwrap_or("");
        let traced = n
            .input
            .iter()
            .any(|i| matches!(self.values.get(i), Some(Value::Derived(_))));
        let starts = match op {
            "GatherND" => true,
            "Transpose" => !self.transpose_is_native(n),
            _ => false,
        };
        let name = node_name(n, k);
        if (traced || starts) && super::derived::DERIVED_OPS.contains(&op) {
            let a = Attrs {
                op,
                node: &name,
                list: &n.attribute,
            };
            return self.derived_node(n, &name, &a);
        }
        if traced {
            for i in &n.input {
                if let Some(Value::Derived(d)) = self.values.get(i).cloned() {
                    let id = self.materialize(&d, i, None)?;
                    self.values.insert(i.clone(), Value::Node(id));
                }
            }
        }
        self.import_node(n, k)
    }

    /// Whether a `Transpose` is handled without tracing (channel shuffle, identity, constants).
    fn transpose_is_native(&self, n: &NodeProto) -> bool {
        let perm: Vec<i64> = n
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some("perm"))
            .map(|a| a.ints.clone())
            .unwrap_or_default();
        match n.input.first().and_then(|i| self.values.get(i)) {
            Some(Value::Grouped { .. }) | Some(Value::Const(_)) => true,
            Some(Value::Node(_)) => perm.iter().enumerate().all(|(i, &p)| p == i as i64),
            _ => false,
        }
    }

    /// Maps one ONNX node onto the model (see the module docs for the mapping).
    fn import_node(&mut self, n: &NodeProto, k: usize) -> Result<(), ModelError> {
        let op = n.op_type.as_deref().unwrap_or("");
        let node_name = node_name(n, k);
        let node = node_name.as_str();
        let domain = n.domain.as_deref().unwrap_or("");
        if !(domain.is_empty() || domain == "ai.onnx") {
            return Err(unsupported_op(op, format!("{domain}::{op}"), node));
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
            "Gemm" => self.gemm(n, node, &a, stage),
            "MatMul" => self.matmul(n, node, &a, stage),
            "Relu" => self.relu(n, node, &a, stage),
            "Clip" => self.clip(n, node, &a, stage),
            "Identity" | "Dropout" => self.identity(n, node, &a, stage),
            "Where" => self.where_op(n, node, &a, stage),
            "Add" | "Sub" | "Mul" | "Div" => self.arith(n, node, &a, stage),
            "Neg" => self.neg(n, node, &a, stage),
            "AveragePool" => self.avg_pool(n, node, &a, stage),
            "MaxPool" => self.max_pool(n, node, &a, stage),
            "GlobalAveragePool" => self.global_avg_pool(n, node, &a, stage),
            "ReduceMean" => self.reduce_mean(n, node, &a, stage),
            "Flatten" => self.flatten(n, node, &a, stage),
            "Reshape" => self.reshape(n, node, &a, stage),
            "Transpose" => self.transpose(n, node, &a, stage),
            "Concat" => self.concat(n, node, &a, stage),
            "Split" => self.split(n, node, &a, stage),
            "Slice" => self.slice(n, node, &a, stage),
            "Pad" => self.pad(n, node, &a, stage),
            "Squeeze" | "Unsqueeze" => self.squeeze(n, node, &a, stage),
            "Gather" => self.gather(n, node, &a, stage),
            "Constant" => self.constant(n, node, &a),
            "Shape" => self.shape_of(n, node, &a),
            "Cast" => self.cast(n, node, &a),
            "ConstantOfShape" => self.constant_of_shape(n, node, &a),
            "Range" => self.range(n, node, &a),
            "Equal" => self.const_binary(n, node, &a),
            _ => Err(unsupported_op(op, op, node)),
        }
    }
}

/// The node's name, or `<OpType>_<index>` when it has none.
pub(super) fn node_name(n: &NodeProto, k: usize) -> String {
    let given = n.name.clone().unwrap_or_default();
    if given.is_empty() {
        format!("{}_{k}", n.op_type.as_deref().unwrap_or(""))
    } else {
        given
    }
}

/// Operators whose output has the shape of their first input (a best guess while checking).
fn shape_preserving(op: &str) -> bool {
    matches!(
        op,
        "Sigmoid"
            | "HardSigmoid"
            | "HardSwish"
            | "Swish"
            | "Gelu"
            | "Erf"
            | "Tanh"
            | "Softplus"
            | "Softsign"
            | "Elu"
            | "Selu"
            | "Celu"
            | "Mish"
            | "LeakyRelu"
            | "PRelu"
            | "Mul"
            | "Div"
            | "Add"
            | "Sub"
            | "Relu"
            | "Clip"
            | "BatchNormalization"
            | "LayerNormalization"
            | "InstanceNormalization"
            | "GroupNormalization"
            | "Dropout"
            | "Identity"
            | "Softmax"
            | "LogSoftmax"
            | "LRN"
            | "Where"
    )
}
