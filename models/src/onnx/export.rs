//! [`Model`] → ONNX (opset 13), loadable by onnxruntime.

use std::collections::HashSet;

use prost::Message;

use super::proto::*;
use super::{OPSET, STAGE_DOC_PREFIX};
use crate::graph::{Model, Node, Op, Shape};
use crate::ModelError;

/// Serialises `model` as an ONNX `ModelProto` (see the module docs for the mapping).
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, ModelError> {
    Ok(to_proto(model)?.encode_to_vec())
}

/// Builds the `ModelProto` of `model`.
pub(crate) fn to_proto(model: &Model) -> Result<ModelProto, ModelError> {
    let shapes = model.shapes()?;
    if model.output == 0 {
        return Err(ModelError::InvalidModel(
            "the output is the input node; nothing to export".into(),
        ));
    }
    let mut ex = Exporter {
        graph: GraphProto::default(),
        tensors: HashSet::new(),
    };
    ex.graph.name = Some(model.name.clone());
    let [c, h, w] = model.input;
    ex.graph
        .input
        .push(value_info("input", &Shape::Chw { c, h, w }));
    ex.graph
        .output
        .push(value_info("logits", &shapes[model.output]));
    ex.tensors.insert("input".to_string());
    ex.tensors.insert("logits".to_string());

    let mut names: Vec<String> = Vec::with_capacity(model.nodes.len());
    for (id, node) in model.nodes.iter().enumerate() {
        let tensor = if id == 0 {
            "input".to_string()
        } else if id == model.output {
            "logits".to_string()
        } else {
            ex.claim(&node.name, &node.name)?
        };
        names.push(tensor);
    }
    for (id, node) in model.nodes.iter().enumerate().skip(1) {
        let ins: Vec<String> = node.inputs.iter().map(|&i| names[i].clone()).collect();
        ex.node(node, ins, &names[id], &shapes[node.inputs[0]])?;
    }
    Ok(ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("pi-models".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        domain: None,
        model_version: Some(1),
        doc_string: None,
        graph: Some(ex.graph),
        metadata_props: vec![],
    })
}

/// Accumulates the graph, keeping tensor names unique.
struct Exporter {
    graph: GraphProto,
    tensors: HashSet<String>,
}

impl Exporter {
    /// Reserves tensor name `t` (produced for node `node`), refusing clashes.
    fn claim(&mut self, t: &str, node: &str) -> Result<String, ModelError> {
        if !self.tensors.insert(t.to_string()) {
            return Err(ModelError::node(
                node,
                format!("ONNX tensor name `{t}` would be used twice"),
            ));
        }
        Ok(t.to_string())
    }

    /// Adds a float initializer (raw little-endian data).
    fn init_f32(
        &mut self,
        name: String,
        dims: &[usize],
        data: &[f32],
        node: &str,
    ) -> Result<String, ModelError> {
        let name = self.claim(&name, node)?;
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.graph.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(DT_FLOAT),
            name: Some(name.clone()),
            raw_data: Some(raw),
            ..Default::default()
        });
        Ok(name)
    }

    /// Adds an int64 initializer (raw little-endian data).
    fn init_i64(&mut self, name: String, data: &[i64], node: &str) -> Result<String, ModelError> {
        let name = self.claim(&name, node)?;
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.graph.initializer.push(TensorProto {
            dims: vec![data.len() as i64],
            data_type: Some(DT_INT64),
            name: Some(name.clone()),
            raw_data: Some(raw),
            ..Default::default()
        });
        Ok(name)
    }

    /// Appends one ONNX node.
    fn push(
        &mut self,
        op: &str,
        name: &str,
        stage_doc: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) {
        self.graph.node.push(NodeProto {
            input: inputs,
            output: outputs,
            name: Some(name.to_string()),
            op_type: Some(op.to_string()),
            domain: None,
            attribute: attrs,
            doc_string: Some(stage_doc.to_string()),
        });
    }

    /// Emits the ONNX node(s) of one graph node; `out` is its output tensor, `in_shape` its first input's shape.
    fn node(
        &mut self,
        node: &Node,
        ins: Vec<String>,
        out: &str,
        in_shape: &Shape,
    ) -> Result<(), ModelError> {
        let n = node.name.as_str();
        let doc = format!("{STAGE_DOC_PREFIX}{}", node.stage);
        let outs = vec![out.to_string()];
        match &node.op {
            Op::Input => {}
            Op::Conv2d(conv) => {
                let kpg = conv.c_in / conv.groups;
                let wname = self.init_f32(
                    format!("{n}::weight"),
                    &[conv.c_out, kpg, conv.kernel[0], conv.kernel[1]],
                    &conv.weight,
                    n,
                )?;
                let bname = self.init_f32(format!("{n}::bias"), &[conv.c_out], &conv.bias, n)?;
                let [ph, pw] = conv.padding;
                let attrs = vec![
                    ints("dilations", &[1, 1]),
                    int("group", conv.groups as i64),
                    ints(
                        "kernel_shape",
                        &[conv.kernel[0] as i64, conv.kernel[1] as i64],
                    ),
                    ints("pads", &[ph as i64, pw as i64, ph as i64, pw as i64]),
                    ints("strides", &[conv.stride[0] as i64, conv.stride[1] as i64]),
                ];
                self.push(
                    "Conv",
                    n,
                    &doc,
                    vec![ins[0].clone(), wname, bname],
                    outs,
                    attrs,
                );
            }
            Op::Relu(relu) => match (&relu.channels, &relu.elements) {
                (None, None) => self.rectify(n, &doc, &ins[0], out, relu.cap)?,
                (Some(chans), _) => {
                    self.subset_relu(n, &doc, &ins[0], out, chans, in_shape.channels(), relu.cap)?
                }
                (None, Some(mask)) => {
                    self.masked_relu(n, &doc, &ins[0], out, mask, in_shape, relu.cap)?
                }
            },
            Op::MaxPool(mp) => {
                let src = if mp.relu || mp.cap.is_some() {
                    let t = self.claim(&format!("{n}::relu"), n)?;
                    let lo = if mp.relu { Some(0.0) } else { None };
                    self.clip(&format!("{n}::relu"), &doc, &ins[0], &t, lo, mp.cap)?;
                    t
                } else {
                    ins[0].clone()
                };
                let mut attrs = pool_attrs(&mp.pool);
                attrs.retain(|a| a.name.as_deref() != Some("count_include_pad"));
                self.push("MaxPool", n, &doc, vec![src], outs, attrs);
            }
            Op::Affine(a) => {
                let dims = |len: usize| -> Vec<usize> {
                    let (c, h, w) = in_shape.dims();
                    match (len, in_shape) {
                        (1, _) => vec![1],
                        (l, Shape::Chw { .. }) if l == c * h * w && h * w > 1 => vec![1, c, h, w],
                        (_, Shape::Chw { .. }) => vec![1, c, 1, 1],
                        (_, Shape::Flat(_)) => vec![1, c],
                    }
                };
                let mut cur = ins[0].clone();
                if !a.scale.is_empty() {
                    let sname =
                        self.init_f32(format!("{n}::scale"), &dims(a.scale.len()), &a.scale, n)?;
                    let t = if a.shift.is_empty() {
                        out.to_string()
                    } else {
                        self.claim(&format!("{n}::scaled"), n)?
                    };
                    self.push(
                        "Mul",
                        &format!("{n}::mul"),
                        &doc,
                        vec![cur, sname],
                        vec![t.clone()],
                        vec![],
                    );
                    cur = t;
                }
                if !a.shift.is_empty() || a.scale.is_empty() {
                    let b = if a.shift.is_empty() {
                        vec![0.0]
                    } else {
                        a.shift.clone()
                    };
                    let bname = self.init_f32(format!("{n}::shift"), &dims(b.len()), &b, n)?;
                    self.push("Add", n, &doc, vec![cur, bname], outs, vec![]);
                }
            }
            Op::Pad(p) => {
                let pads: Vec<i64> = [0, p[0], p[1], p[2], 0, p[3], p[4], p[5]]
                    .iter()
                    .map(|&v| v as i64)
                    .collect();
                let pname = self.init_i64(format!("{n}::pads"), &pads, n)?;
                self.push("Pad", n, &doc, vec![ins[0].clone(), pname], outs, vec![]);
            }
            Op::Slice(sl) => {
                let starts: Vec<i64> = sl.start.iter().map(|&v| v as i64).collect();
                let ends: Vec<i64> = (0..3)
                    .map(|i| (sl.start[i] + (sl.len[i] - 1) * sl.step[i] + 1) as i64)
                    .collect();
                let steps: Vec<i64> = sl.step.iter().map(|&v| v as i64).collect();
                let s = self.init_i64(format!("{n}::starts"), &starts, n)?;
                let e = self.init_i64(format!("{n}::ends"), &ends, n)?;
                let a = self.init_i64(format!("{n}::axes"), &[1, 2, 3], n)?;
                let st = self.init_i64(format!("{n}::steps"), &steps, n)?;
                self.push(
                    "Slice",
                    n,
                    &doc,
                    vec![ins[0].clone(), s, e, a, st],
                    outs,
                    vec![],
                );
            }
            Op::GatherMean(_) => {
                return Err(ModelError::Unsupported {
                    node: n.to_string(),
                    reason: "gather-mean nodes (imported adaptive pools) are not exported".into(),
                })
            }
            Op::PermuteChannels(order) => {
                let idx: Vec<i64> = order.iter().map(|&v| v as i64).collect();
                let iname = self.init_i64(format!("{n}::order"), &idx, n)?;
                self.push(
                    "Gather",
                    n,
                    &doc,
                    vec![ins[0].clone(), iname],
                    outs,
                    vec![int("axis", 1)],
                );
            }
            Op::Identity => self.push("Identity", n, &doc, ins, outs, vec![]),
            Op::Add => self.push("Add", n, &doc, ins, outs, vec![]),
            Op::SliceChannels { start, len } => {
                let s = self.init_i64(format!("{n}::starts"), &[*start as i64], n)?;
                let e = self.init_i64(format!("{n}::ends"), &[(start + len) as i64], n)?;
                let a = self.init_i64(format!("{n}::axes"), &[1], n)?;
                self.push(
                    "Slice",
                    n,
                    &doc,
                    vec![ins[0].clone(), s, e, a],
                    outs,
                    vec![],
                );
            }
            Op::Concat => self.push("Concat", n, &doc, ins, outs, vec![int("axis", 1)]),
            Op::AvgPool(pool) => self.push("AveragePool", n, &doc, ins, outs, pool_attrs(pool)),
            Op::GlobalAvgPool => self.push("GlobalAveragePool", n, &doc, ins, outs, vec![]),
            Op::Flatten => self.push("Flatten", n, &doc, ins, outs, vec![int("axis", 1)]),
            Op::Linear(lin) => {
                let wname = self.init_f32(
                    format!("{n}::weight"),
                    &[lin.out_features, lin.in_features],
                    &lin.weight,
                    n,
                )?;
                let bname =
                    self.init_f32(format!("{n}::bias"), &[lin.out_features], &lin.bias, n)?;
                let attrs = vec![
                    float("alpha", 1.0),
                    float("beta", 1.0),
                    int("transA", 0),
                    int("transB", 1),
                ];
                self.push(
                    "Gemm",
                    n,
                    &doc,
                    vec![ins[0].clone(), wname, bname],
                    outs,
                    attrs,
                );
            }
        }
        Ok(())
    }

    /// A channel-subset ReLU as `Split` (runs of selected / unselected channels) → `Relu` or
    /// `Identity` per run → `Concat`, with the names the importer fuses back (see the module docs).
    #[allow(clippy::too_many_arguments)]
    fn subset_relu(
        &mut self,
        n: &str,
        doc: &str,
        input: &str,
        out: &str,
        chans: &[usize],
        c: usize,
        cap: Option<f32>,
    ) -> Result<(), ModelError> {
        let mut runs: Vec<(bool, usize)> = Vec::new();
        let mut sel = vec![false; c];
        chans.iter().for_each(|&ch| sel[ch] = true);
        for &s in &sel {
            match runs.last_mut() {
                Some((last, len)) if *last == s => *len += 1,
                _ => runs.push((s, 1)),
            }
        }
        let sizes: Vec<i64> = runs.iter().map(|&(_, l)| l as i64).collect();
        let split = self.init_i64(format!("{n}::split_sizes"), &sizes, n)?;
        let mut parts = Vec::new();
        for i in 0..runs.len() {
            parts.push(self.claim(&format!("{n}::part{i}"), n)?);
        }
        self.push(
            "Split",
            &format!("{n}::split"),
            doc,
            vec![input.to_string(), split],
            parts.clone(),
            vec![int("axis", 1)],
        );
        let mut outs = Vec::new();
        for (i, &(selected, _)) in runs.iter().enumerate() {
            let o = self.claim(&format!("{n}::out{i}"), n)?;
            if selected {
                self.rectify(&format!("{n}::relu{i}"), doc, &parts[i], &o, cap)?;
            } else {
                self.push(
                    "Identity",
                    &format!("{n}::id{i}"),
                    doc,
                    vec![parts[i].clone()],
                    vec![o.clone()],
                    vec![],
                );
            }
            outs.push(o);
        }
        self.push(
            "Concat",
            n,
            doc,
            outs,
            vec![out.to_string()],
            vec![int("axis", 1)],
        );
        Ok(())
    }
}

impl Exporter {
    /// `Relu` (no cap) or `Clip(0, cap)` from `input` to `out`, as node `name`.
    fn rectify(
        &mut self,
        name: &str,
        doc: &str,
        input: &str,
        out: &str,
        cap: Option<f32>,
    ) -> Result<(), ModelError> {
        match cap {
            None => {
                self.push(
                    "Relu",
                    name,
                    doc,
                    vec![input.to_string()],
                    vec![out.to_string()],
                    vec![],
                );
                Ok(())
            }
            Some(c) => self.clip(name, doc, input, out, Some(0.0), Some(c)),
        }
    }

    /// `Clip(input, lo, hi)` (opset 13: bounds as scalar inputs; an absent bound is empty).
    fn clip(
        &mut self,
        name: &str,
        doc: &str,
        input: &str,
        out: &str,
        lo: Option<f32>,
        hi: Option<f32>,
    ) -> Result<(), ModelError> {
        let lo = match lo {
            Some(v) => self.init_f32(format!("{name}::min"), &[], &[v], name)?,
            None => String::new(),
        };
        let hi = match hi {
            Some(v) => self.init_f32(format!("{name}::max"), &[], &[v], name)?,
            None => String::new(),
        };
        self.push(
            "Clip",
            name,
            doc,
            vec![input.to_string(), lo, hi],
            vec![out.to_string()],
            vec![],
        );
        Ok(())
    }

    /// An element-subset ReLU in the documented mask form `Add(Mul(Relu(x), m), Mul(x, 1 − m))`
    /// (`<n>::relu`, `<n>::kept` with `<n>::mask`, `<n>::linear` with `<n>::unmask`, `Add` `<n>`),
    /// which onnxruntime runs and the importer fuses back.
    #[allow(clippy::too_many_arguments)]
    fn masked_relu(
        &mut self,
        n: &str,
        doc: &str,
        input: &str,
        out: &str,
        mask: &crate::graph::ElementMask,
        shape: &Shape,
        cap: Option<f32>,
    ) -> Result<(), ModelError> {
        let dims: Vec<usize> = match *shape {
            Shape::Chw { c, h, w } => vec![1, c, h, w],
            Shape::Flat(k) => vec![1, k],
        };
        let m: Vec<f32> = mask.to_bools().iter().map(|&b| b as u8 as f32).collect();
        let um: Vec<f32> = m.iter().map(|v| 1.0 - v).collect();
        let mname = self.init_f32(format!("{n}::mask"), &dims, &m, n)?;
        let uname = self.init_f32(format!("{n}::unmask"), &dims, &um, n)?;
        let r = self.claim(&format!("{n}::relu"), n)?;
        self.rectify(&format!("{n}::relu"), doc, input, &r, cap)?;
        let kept = self.claim(&format!("{n}::kept"), n)?;
        let lin = self.claim(&format!("{n}::linear"), n)?;
        self.push(
            "Mul",
            &format!("{n}::kept"),
            doc,
            vec![r, mname],
            vec![kept.clone()],
            vec![],
        );
        self.push(
            "Mul",
            &format!("{n}::linear"),
            doc,
            vec![input.to_string(), uname],
            vec![lin.clone()],
            vec![],
        );
        self.push(
            "Add",
            n,
            doc,
            vec![kept, lin],
            vec![out.to_string()],
            vec![],
        );
        Ok(())
    }
}

/// The window attributes of a pool.
fn pool_attrs(pool: &crate::graph::Pool) -> Vec<AttributeProto> {
    vec![
        int("ceil_mode", pool.ceil_mode as i64),
        int("count_include_pad", pool.count_include_pad as i64),
        ints(
            "kernel_shape",
            &[pool.kernel[0] as i64, pool.kernel[1] as i64],
        ),
        ints("pads", &pool.pads.map(|v| v as i64)),
        ints("strides", &[pool.stride[0] as i64, pool.stride[1] as i64]),
    ]
}

/// A float tensor `ValueInfoProto` of shape `[1, ...]`.
fn value_info(name: &str, shape: &Shape) -> ValueInfoProto {
    let dims: Vec<usize> = match *shape {
        Shape::Chw { c, h, w } => vec![1, c, h, w],
        Shape::Flat(n) => vec![1, n],
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(DT_FLOAT),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: Some(d as i64),
                            dim_param: None,
                        })
                        .collect(),
                }),
            }),
        }),
        doc_string: None,
    }
}

/// An INT attribute.
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attr_type::INT),
        i: Some(v),
        ..Default::default()
    }
}

/// An INTS attribute.
fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attr_type::INTS),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A FLOAT attribute.
fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attr_type::FLOAT),
        f: Some(v),
        ..Default::default()
    }
}
