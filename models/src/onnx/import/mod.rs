//! ONNX → [`Model`]: operator mapping (one file per operator family), constant folding, graph
//! rewrites (BatchNorm and constant folding, ReLU fusion, masks), stage assignment.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use prost::Message;

use super::proto::*;
use crate::graph::{Model, Op, Stage};
use crate::ModelError;

mod activation;
mod arith;
mod attrs;
mod constant;
mod conv;
mod core;
mod derived;
mod hints;
mod pool;
mod rewrite;
mod shape_ops;
mod stages;
mod tensor;

use self::core::{Importer, Value};
pub use hints::advice;
use tensor::DataSource;

/// Lowest default-domain opset accepted.
const MIN_OPSET: i64 = 11;
/// Highest default-domain opset accepted.
const MAX_OPSET: i64 = 21;

/// How to import a model file.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The tensor to serve as the model output (a graph output or any computed tensor); `None`
    /// takes the graph's first output.
    pub output: Option<String>,
    /// Directory that external tensor data (`.onnx.data`) is read from; set by
    /// [`super::load_with`] to the model file's directory.
    pub base_dir: Option<PathBuf>,
}

/// An imported model with the file's metadata.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The model.
    pub model: Model,
    /// The `metadata_props` of the file (key, value), in file order.
    pub metadata: Vec<(String, String)>,
    /// Names of the graph's outputs (the served one is `options.output` or the first).
    pub outputs: Vec<String>,
}

/// Parses an ONNX model (see the module docs for what is accepted).
pub fn from_bytes(bytes: &[u8]) -> Result<Model, ModelError> {
    Ok(from_bytes_with(bytes, &ImportOptions::default())?.model)
}

/// Parses an ONNX model with options (output selection, external data directory).
pub fn from_bytes_with(bytes: &[u8], options: &ImportOptions) -> Result<Imported, ModelError> {
    let proto = ModelProto::decode(bytes)?;
    let (imported, _) = from_proto(&proto, options, false)?;
    Ok(imported)
}

/// Checks an ONNX model without stopping at the first problem: every node that cannot be
/// imported is listed (with what to change in the PyTorch model), then the graph rewrites and
/// shape checks run if the nodes themselves were fine. Empty when the model imports.
pub fn check_bytes(bytes: &[u8], options: &ImportOptions) -> Vec<ModelError> {
    let proto = match ModelProto::decode(bytes) {
        Ok(p) => p,
        Err(e) => return vec![e.into()],
    };
    match from_proto(&proto, options, true) {
        Ok((_, problems)) => problems,
        Err(e) => vec![e],
    }
}

/// Builds a model from a decoded `ModelProto`; with `lenient`, node-level problems are collected
/// (and returned) instead of ending the import.
pub(crate) fn from_proto(
    proto: &ModelProto,
    options: &ImportOptions,
    lenient: bool,
) -> Result<(Imported, Vec<ModelError>), ModelError> {
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
            format!(
                "opset {opset} not supported (need {MIN_OPSET}..={MAX_OPSET}; export with \
                 torch.onnx.export(..., opset_version=17))"
            ),
        ));
    }
    let source = DataSource {
        base_dir: options.base_dir.clone(),
    };

    let mut values = HashMap::new();
    for t in &graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        values.insert(
            name.clone(),
            Value::Const(tensor::decode(t, &name, &source)?),
        );
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

    let outputs: Vec<String> = graph
        .output
        .iter()
        .map(|o| o.name.clone().unwrap_or_default())
        .collect();
    let out_name = match &options.output {
        Some(name) => name.clone(),
        None => outputs
            .first()
            .cloned()
            .ok_or_else(|| ModelError::onnx("graph", "the graph has no output"))?,
    };
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *uses.entry(i.clone()).or_default() += 1;
        }
    }
    *uses.entry(out_name.clone()).or_default() += 1;

    let mut im = Importer {
        nodes: Vec::new(),
        shapes: Vec::new(),
        explicit: Vec::new(),
        input,
        values,
        uses,
        names: HashSet::new(),
        source,
        lenient,
        problems: Vec::new(),
    };
    let in_id = im.push(&input_name, Op::Input, vec![], Some(Stage::Stem))?;
    im.values.insert(input_name, Value::Node(in_id));

    for (k, n) in graph.node.iter().enumerate() {
        im.import_checked(n, k)?;
    }
    if let Some(Value::Derived(d)) = im.values.get(&out_name).cloned() {
        let id = im.materialize(&d, &out_name, None)?;
        im.values.insert(out_name.clone(), Value::Node(id));
    }
    let output = match im.values.get(&out_name) {
        Some(Value::Node(id)) => *id,
        Some(Value::Unknown) if lenient => {
            return Ok((placeholder(&im, outputs, proto), im.problems));
        }
        Some(Value::Const(_)) => {
            return Err(ModelError::onnx(
                &out_name,
                "the graph output is a constant",
            ))
        }
        Some(_) => {
            return Err(ModelError::onnx(
                &out_name,
                "the graph output is not a [N, C, H, W] or [N, C] tensor",
            ))
        }
        None => {
            let known = if outputs.is_empty() {
                String::new()
            } else {
                format!(" (graph outputs: {})", outputs.join(", "))
            };
            return Err(ModelError::onnx(
                &out_name,
                format!("the output tensor is never produced{known}"),
            ));
        }
    };
    if output == 0 {
        return Err(ModelError::onnx(
            &out_name,
            "the graph output is the graph input",
        ));
    }
    let stages = stages::assign_stages(&im.nodes, &im.shapes, &im.explicit);
    let mut nodes = std::mem::take(&mut im.nodes);
    for (n, s) in nodes.iter_mut().zip(stages) {
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
        nodes,
        output,
    };
    let mut problems = im.problems;
    let model = if problems.is_empty() || !lenient {
        match rewrite::simplify(model).and_then(|m| m.validate().map(|()| m)) {
            Ok(m) => m,
            Err(e) if lenient => {
                problems.push(e);
                return Ok((placeholder_model(input, outputs, proto), problems));
            }
            Err(e) => return Err(e),
        }
    } else {
        model
    };
    Ok((
        Imported {
            model,
            metadata: metadata(proto),
            outputs,
        },
        problems,
    ))
}

/// The file's `metadata_props` as pairs.
fn metadata(proto: &ModelProto) -> Vec<(String, String)> {
    proto
        .metadata_props
        .iter()
        .map(|e| {
            (
                e.key.clone().unwrap_or_default(),
                e.value.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// What a failed check returns in place of the model.
fn placeholder(im: &Importer, outputs: Vec<String>, proto: &ModelProto) -> Imported {
    placeholder_model(im.input, outputs, proto)
}

/// A one-node model standing in for a model that did not import (checking only).
fn placeholder_model(input: [usize; 3], outputs: Vec<String>, proto: &ModelProto) -> Imported {
    Imported {
        model: Model {
            name: "unimported".into(),
            input,
            nodes: vec![crate::graph::Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
                stage: Stage::Stem,
            }],
            output: 0,
        },
        metadata: metadata(proto),
        outputs,
    }
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
                format!("batch size {n}; only 1 is supported (export with a batch of one)"),
            ))
        }
    }
    let mut out = [0usize; 3];
    for (o, d) in out.iter_mut().zip(&dims[1..]) {
        match d.dim_value {
            Some(v) if (1..=attrs::MAX_SIZE).contains(&v) => *o = v as usize,
            _ => {
                return Err(ModelError::onnx(
                    name,
                    format!(
                        "graph input C, H, W must be fixed sizes in 1..={} (export without \
                         dynamic_axes on them)",
                        attrs::MAX_SIZE
                    ),
                ))
            }
        }
    }
    Ok(out)
}
