//! ONNX round trips, PyTorch-style import and rejection of malformed files.

use models::builder::ModelBuilder;
use models::count::count;
use models::onnx::proto::*;
use models::onnx::{from_bytes, load, save, to_bytes};
use models::{float, zoo, Conv2d, Linear, ModelError, Op, Stage};
use prost::Message;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn test_input(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2001) as f32
                / 1000.0
                - 1.0
        })
        .collect()
}

#[test]
fn round_trip_random_resnets_is_exact() {
    for seed in 0..6 {
        let m = zoo::random_resnet(seed, [3, 16, 16], 10);
        let bytes = to_bytes(&m).unwrap();
        let back = from_bytes(&bytes).unwrap();
        assert_eq!(back, m, "seed {seed}: graph changed in the round trip");
        assert_eq!(count(&back).unwrap(), count(&m).unwrap());
        let x = test_input(3 * 16 * 16, seed as u32);
        assert_eq!(
            float::infer(&back, &x).unwrap(),
            float::infer(&m, &x).unwrap()
        );
        // Subset ReLU present and fused back.
        assert!(back
            .nodes
            .iter()
            .any(|n| matches!(&n.op, Op::Relu(r) if r.channels.is_some())));
    }
}

#[test]
fn round_trip_through_a_file_keeps_stages_without_stage_names() {
    // Names without stage tokens: the stage travels in the node doc_string.
    let mut rng = <models::rand_chacha::ChaCha8Rng as models::rand::SeedableRng>::seed_from_u64(3);
    let mut b = ModelBuilder::new("plain", [3, 8, 8]);
    let x = b.node(
        "first",
        Op::Conv2d(Conv2d::he_normal(3, 8, 3, 1, 1, 1, &mut rng)),
        vec![0],
        Stage::Stage(2),
    );
    let x = b.node(
        "act",
        Op::Relu(models::Relu::channels(vec![0, 1, 5])),
        vec![x],
        Stage::Stage(3),
    );
    let x = b.node("gp", Op::GlobalAvgPool, vec![x], Stage::Stem);
    let x = b.flatten(x, Stage::Head);
    let y = b.linear(x, Linear::he_normal(8, 3, &mut rng), Stage::Stage(4));
    let m = b.finish(y).unwrap();
    let path = std::env::temp_dir().join(format!("models-test-{}.onnx", std::process::id()));
    save(&m, &path).unwrap();
    let back = load(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(back, m);
}

#[test]
fn resnet18_round_trip_counts() {
    let m = zoo::resnet18_cifar(100);
    let back = from_bytes(&to_bytes(&m).unwrap()).unwrap();
    let (c0, c1) = (count(&m).unwrap(), count(&back).unwrap());
    assert_eq!(c1, c0);
    assert_eq!(c1.relus, 557_056);
}

// ---------- hand-built PyTorch-style graphs ----------

fn f32_init(name: &str, dims: &[i64], data: Vec<f32>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(DT_FLOAT),
        name: Some(name.into()),
        float_data: data,
        ..Default::default()
    }
}

fn i64_init(name: &str, data: Vec<i64>) -> TensorProto {
    TensorProto {
        dims: vec![data.len() as i64],
        data_type: Some(DT_INT64),
        name: Some(name.into()),
        int64_data: data,
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(name.into()),
        op_type: Some(op.into()),
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attr_type::INTS),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attr_type::INT),
        i: Some(v),
        ..Default::default()
    }
}

fn float_attr(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attr_type::FLOAT),
        f: Some(v),
        ..Default::default()
    }
}

fn vi(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(DT_FLOAT),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "batch".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
        doc_string: None,
    }
}

fn model_proto(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("pytorch".into()),
        graph: Some(GraphProto {
            node: nodes,
            name: Some("main_graph".into()),
            initializer: inits,
            input: vec![vi("input.1", &[None, Some(2), Some(4), Some(4)])],
            output: vec![vi("out", &[None, Some(3)])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Bn {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    eps: f32,
}

impl Bn {
    fn new(c: usize, k: f32) -> Bn {
        let v = |a: f32, b: f32| (0..c).map(|i| a + b * i as f32 * k).collect::<Vec<_>>();
        Bn {
            gamma: v(0.8, 0.3),
            beta: v(-0.1, 0.2),
            mean: v(0.05, -0.1),
            var: v(0.5, 0.4),
            eps: 1e-3,
        }
    }
    fn inits(&self, p: &str) -> Vec<TensorProto> {
        let c = self.gamma.len() as i64;
        vec![
            f32_init(&format!("{p}.weight"), &[c], self.gamma.clone()),
            f32_init(&format!("{p}.bias"), &[c], self.beta.clone()),
            f32_init(&format!("{p}.running_mean"), &[c], self.mean.clone()),
            f32_init(&format!("{p}.running_var"), &[c], self.var.clone()),
        ]
    }
    fn node(&self, name: &str, p: &str, x: &str, y: &str) -> NodeProto {
        let ins = [
            x.to_string(),
            format!("{p}.weight"),
            format!("{p}.bias"),
            format!("{p}.running_mean"),
            format!("{p}.running_var"),
        ];
        let ins: Vec<&str> = ins.iter().map(|s| s.as_str()).collect();
        node(
            "BatchNormalization",
            name,
            &ins,
            &[y],
            vec![float_attr("epsilon", self.eps), float_attr("momentum", 0.9)],
        )
    }
    /// The conv with this BN folded in, computed independently in f64.
    fn fold(&self, mut conv: Conv2d) -> Conv2d {
        let per = conv.weight.len() / conv.c_out;
        for o in 0..conv.c_out {
            let s = self.gamma[o] as f64 / (self.var[o] as f64 + self.eps as f64).sqrt();
            for w in &mut conv.weight[o * per..(o + 1) * per] {
                *w = (*w as f64 * s) as f32;
            }
            conv.bias[o] =
                ((conv.bias[o] as f64 - self.mean[o] as f64) * s + self.beta[o] as f64) as f32;
        }
        conv
    }
}

/// A torchvision-like residual net: conv/bn/relu stem, one basic block, GAP, old-style
/// Shape→Gather→Unsqueeze→Concat→Reshape flatten, MatMul + Add head.
fn pytorch_style(names: bool) -> (ModelProto, models::Model) {
    let nm = |torch: &str, plain: &str| {
        if names {
            torch.to_string()
        } else {
            plain.to_string()
        }
    };
    let wts = |n: usize, k: f32| {
        (0..n)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) * k)
            .collect::<Vec<f32>>()
    };
    let c1 = Conv2d {
        c_in: 2,
        c_out: 4,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        groups: 1,
        weight: wts(72, 0.05),
        bias: vec![0.0; 4],
    };
    let c2 = Conv2d {
        c_in: 4,
        c_out: 4,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        groups: 1,
        weight: wts(144, 0.03),
        bias: vec![0.0; 4],
    };
    let c3 = Conv2d {
        c_in: 4,
        c_out: 4,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        groups: 1,
        weight: wts(144, -0.02),
        bias: vec![0.1, 0.2, 0.3, 0.4],
    };
    let (bn1, bn2, bn3) = (Bn::new(4, 1.0), Bn::new(4, 0.5), Bn::new(4, -0.3));
    let fc_w: Vec<f32> = wts(12, 0.1); // [4, 3] as stored for MatMul
    let fc_b = vec![0.5f32, -0.25, 0.125];
    let conv_attrs = || {
        vec![
            ints("dilations", &[1, 1]),
            int("group", 1),
            ints("kernel_shape", &[3, 3]),
            ints("pads", &[1, 1, 1, 1]),
            ints("strides", &[1, 1]),
        ]
    };
    let mut inits = vec![
        f32_init("conv1.weight", &[4, 2, 3, 3], c1.weight.clone()),
        f32_init("layer1.0.conv1.weight", &[4, 4, 3, 3], c2.weight.clone()),
        f32_init("layer1.0.conv2.weight", &[4, 4, 3, 3], c3.weight.clone()),
        f32_init("layer1.0.conv2.bias", &[4], c3.bias.clone()),
        f32_init("fc.weight_t", &[4, 3], fc_w.clone()),
        f32_init("fc.bias", &[3], fc_b.clone()),
        TensorProto {
            dims: vec![],
            data_type: Some(DT_INT64),
            name: Some("gather_idx".into()),
            int64_data: vec![0],
            ..Default::default()
        },
        i64_init("minus_one", vec![-1]),
    ];
    inits.extend(bn1.inits("bn1"));
    inits.extend(bn2.inits("layer1.0.bn1"));
    inits.extend(bn3.inits("layer1.0.bn2"));
    let mut unsq = node(
        "Unsqueeze",
        &nm("/Unsqueeze", "Unsqueeze_0"),
        &["g0"],
        &["u0"],
        vec![ints("axes", &[0])],
    );
    unsq.attribute.clear();
    unsq.input.push("axes0".into());
    inits.push(i64_init("axes0", vec![0]));
    let nodes = vec![
        node(
            "Conv",
            &nm("/conv1/Conv", "Conv_0"),
            &["input.1", "conv1.weight"],
            &["t1"],
            conv_attrs(),
        ),
        bn1.node(
            &nm("/bn1/BatchNormalization", "BatchNormalization_1"),
            "bn1",
            "t1",
            "t2",
        ),
        node(
            "Relu",
            &nm("/relu/Relu", "Relu_2"),
            &["t2"],
            &["t3"],
            vec![],
        ),
        node(
            "Conv",
            &nm("/layer1/layer1.0/conv1/Conv", "Conv_3"),
            &["t3", "layer1.0.conv1.weight"],
            &["t4"],
            conv_attrs(),
        ),
        bn2.node(
            &nm(
                "/layer1/layer1.0/bn1/BatchNormalization",
                "BatchNormalization_4",
            ),
            "layer1.0.bn1",
            "t4",
            "t5",
        ),
        node(
            "Relu",
            &nm("/layer1/layer1.0/relu/Relu", "Relu_5"),
            &["t5"],
            &["t6"],
            vec![],
        ),
        node(
            "Conv",
            &nm("/layer1/layer1.0/conv2/Conv", "Conv_6"),
            &["t6", "layer1.0.conv2.weight", "layer1.0.conv2.bias"],
            &["t7"],
            conv_attrs(),
        ),
        bn3.node(
            &nm(
                "/layer1/layer1.0/bn2/BatchNormalization",
                "BatchNormalization_7",
            ),
            "layer1.0.bn2",
            "t7",
            "t8",
        ),
        node(
            "Add",
            &nm("/layer1/layer1.0/Add", "Add_8"),
            &["t8", "t3"],
            &["t9"],
            vec![],
        ),
        node(
            "Relu",
            &nm("/layer1/layer1.0/relu_1/Relu", "Relu_9"),
            &["t9"],
            &["t10"],
            vec![],
        ),
        node(
            "GlobalAveragePool",
            &nm("/avgpool/GlobalAveragePool", "GlobalAveragePool_10"),
            &["t10"],
            &["t11"],
            vec![],
        ),
        node(
            "Shape",
            &nm("/Shape", "Shape_11"),
            &["t11"],
            &["s0"],
            vec![],
        ),
        node(
            "Gather",
            &nm("/Gather", "Gather_12"),
            &["s0", "gather_idx"],
            &["g0"],
            vec![int("axis", 0)],
        ),
        unsq,
        node(
            "Concat",
            &nm("/Concat", "Concat_14"),
            &["u0", "minus_one"],
            &["shape"],
            vec![int("axis", 0)],
        ),
        node(
            "Reshape",
            &nm("/Reshape", "Reshape_15"),
            &["t11", "shape"],
            &["t12"],
            vec![],
        ),
        node(
            "MatMul",
            &nm("/fc/MatMul", "MatMul_16"),
            &["t12", "fc.weight_t"],
            &["t13"],
            vec![],
        ),
        node(
            "Add",
            &nm("/fc/Add", "Add_17"),
            &["fc.bias", "t13"],
            &["out"],
            vec![],
        ),
    ];
    let proto = model_proto(nodes, inits, 13);

    // The same network built directly, BN folded by hand.
    let mut b = ModelBuilder::new("expected", [2, 4, 4]);
    let x = b.conv(0, bn1.fold(c1), Stage::Stem);
    let s = b.relu(x, Stage::Stem);
    let x = b.conv(s, bn2.fold(c2), Stage::Stage(1));
    let x = b.relu(x, Stage::Stage(1));
    let x = b.conv(x, bn3.fold(c3), Stage::Stage(1));
    let x = b.add(x, s, Stage::Stage(1));
    let x = b.relu(x, Stage::Stage(1));
    let x = b.global_avg_pool(x, Stage::Head);
    let x = b.flatten(x, Stage::Head);
    let mut w = vec![0f32; 12];
    for i in 0..4 {
        for o in 0..3 {
            w[o * 4 + i] = fc_w[i * 3 + o];
        }
    }
    let y = b.linear(
        x,
        Linear {
            in_features: 4,
            out_features: 3,
            weight: w,
            bias: fc_b,
        },
        Stage::Head,
    );
    (proto, b.finish(y).unwrap())
}

#[test]
fn pytorch_style_import_folds_bn_and_flattens() {
    for names in [true, false] {
        let (proto, expected) = pytorch_style(names);
        let m = from_bytes(&proto.encode_to_vec()).unwrap();
        let kinds: Vec<&str> = m.nodes.iter().map(|n| n.op.kind()).collect();
        assert_eq!(
            kinds,
            [
                "input", "conv", "relu", "conv", "relu", "conv", "add", "relu", "gap", "flatten",
                "linear"
            ]
        );
        let stages: Vec<Stage> = m.nodes.iter().map(|n| n.stage).collect();
        let want: Vec<Stage> = expected.nodes.iter().map(|n| n.stage).collect();
        assert_eq!(stages, want, "stage assignment (torch names: {names})");
        assert_eq!(m.input, [2, 4, 4]);
        for seed in 0..3 {
            let x = test_input(32, seed);
            let (got, exp) = (
                float::infer(&m, &x).unwrap(),
                float::infer(&expected, &x).unwrap(),
            );
            assert!(max_abs_diff(&got, &exp) < 1e-5, "{got:?} vs {exp:?}");
        }
        if names {
            assert_eq!(m.nodes[1].name, "/conv1/Conv");
            assert_eq!(m.nodes[3].stage, Stage::Stage(1));
        }
    }
}

#[test]
fn gemm_and_flatten_and_opset_11_split() {
    // Conv → Split (opset-11 attribute form) → Relu on one part → Concat → Flatten → Gemm(transB=1).
    let inits = vec![
        f32_init(
            "w",
            &[4, 2, 1, 1],
            vec![1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0, -1.0],
        ),
        f32_init(
            "fc.w",
            &[3, 64],
            (0..192).map(|i| (i % 5) as f32 * 0.1).collect(),
        ),
        f32_init("fc.b", &[3], vec![1.0, 2.0, 3.0]),
    ];
    let nodes = vec![
        node(
            "Conv",
            "c",
            &["input.1", "w"],
            &["a"],
            vec![ints("kernel_shape", &[1, 1])],
        ),
        node(
            "Split",
            "sp",
            &["a"],
            &["p0", "p1"],
            vec![int("axis", 1), ints("split", &[2, 2])],
        ),
        node("Relu", "r", &["p1"], &["q1"], vec![]),
        node("Concat", "cat", &["p0", "q1"], &["b"], vec![int("axis", 1)]),
        node("Flatten", "fl", &["b"], &["f"], vec![int("axis", 1)]),
        node(
            "Gemm",
            "fc",
            &["f", "fc.w", "fc.b"],
            &["out"],
            vec![
                float_attr("alpha", 1.0),
                float_attr("beta", 1.0),
                int("transB", 1),
            ],
        ),
    ];
    let m = from_bytes(&model_proto(nodes, inits, 11).encode_to_vec()).unwrap();
    let c = count(&m).unwrap();
    assert_eq!(c.relus, 2 * 16);
    let x = test_input(32, 9);
    let y = float::infer(&m, &x).unwrap();
    // By hand: a = [x0, x1, -x0, -x1]; b = [x0, x1, relu(-x0), relu(-x1)].
    let mut b = Vec::new();
    b.extend_from_slice(&x);
    b.extend(x.iter().map(|v| (-v).max(0.0)));
    assert_eq!(y.len(), 3);
    for (o, &got) in y.iter().enumerate() {
        let want: f32 = (o + 1) as f32
            + (0..64)
                .map(|i| ((o * 64 + i) % 5) as f32 * 0.1 * b[i])
                .sum::<f32>();
        assert!((got - want).abs() < 1e-4, "{o}: {got} vs {want}");
    }
}

fn expect_err(proto: &ModelProto) -> ModelError {
    from_bytes(&proto.encode_to_vec()).expect_err("import should fail")
}

#[test]
fn unsupported_ops_and_attributes_are_named() {
    let inits = vec![f32_init("w", &[4, 2, 3, 3], vec![0.1; 72])];
    let conv = |attrs| node("Conv", "/stem/Conv", &["input.1", "w"], &["a"], attrs);
    let tail = || node("GlobalAveragePool", "gap", &["a2"], &["b"], vec![]);
    let flat = || node("Flatten", "fl", &["b"], &["out"], vec![]);

    let p = model_proto(
        vec![
            conv(vec![]),
            node("HardSwish", "/act/HardSwish", &["a"], &["a2"], vec![]),
            tail(),
            flat(),
        ],
        inits.clone(),
        13,
    );
    let e = expect_err(&p);
    assert!(
        matches!(&e, ModelError::UnsupportedOp { op, node, hint } if op == "HardSwish" && node == "/act/HardSwish" && hint.contains("nn.ReLU")),
        "{e}"
    );

    let p = model_proto(
        vec![
            conv(vec![]),
            node(
                "MaxPool",
                "/pool/MaxPool",
                &["a"],
                &["a2"],
                vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 2])],
            ),
            tail(),
            flat(),
        ],
        inits.clone(),
        13,
    );
    let e = expect_err(&p);
    assert!(
        matches!(&e, ModelError::UnsupportedAttribute { op, node, attribute, .. } if op == "MaxPool" && node == "/pool/MaxPool" && attribute == "dilations"),
        "{e}"
    );

    let p = model_proto(
        vec![
            conv(vec![ints("pads", &[0, 0, 1])]),
            node("Relu", "r", &["a"], &["a2"], vec![]),
            tail(),
            flat(),
        ],
        inits.clone(),
        13,
    );
    assert!(
        matches!(expect_err(&p), ModelError::UnsupportedAttribute { attribute, .. } if attribute == "pads")
    );

    let p = model_proto(
        vec![
            conv(vec![int("weird", 1)]),
            node("Relu", "r", &["a"], &["a2"], vec![]),
            tail(),
            flat(),
        ],
        inits.clone(),
        13,
    );
    assert!(
        matches!(expect_err(&p), ModelError::UnsupportedAttribute { attribute, .. } if attribute == "weird")
    );

    // Missing initializer.
    let p = model_proto(
        vec![
            node("Conv", "c", &["input.1", "nope"], &["a"], vec![]),
            tail(),
            flat(),
        ],
        vec![],
        13,
    );
    let e = expect_err(&p);
    assert!(
        matches!(&e, ModelError::Onnx { node, .. } if node == "c"),
        "{e}"
    );

    // Conv weight with the wrong input channels: a shape error naming the node.
    let bad = vec![f32_init("w", &[4, 3, 3, 3], vec![0.1; 108])];
    let p = model_proto(
        vec![
            conv(vec![]),
            node("Relu", "r", &["a"], &["a2"], vec![]),
            tail(),
            flat(),
        ],
        bad,
        13,
    );
    let e = expect_err(&p);
    assert!(
        matches!(&e, ModelError::ShapeMismatch { node, .. } if node == "/stem/Conv"),
        "{e}"
    );

    // Raw data of the wrong length.
    let mut short = f32_init("w", &[4, 2, 3, 3], vec![]);
    short.raw_data = Some(vec![0u8; 100]);
    let p = model_proto(
        vec![
            conv(vec![]),
            node("Relu", "r", &["a"], &["a2"], vec![]),
            tail(),
            flat(),
        ],
        vec![short],
        13,
    );
    assert!(matches!(expect_err(&p), ModelError::Onnx { .. }));

    // Opset out of range; non-default domain.
    let p = model_proto(
        vec![
            conv(vec![]),
            node("Relu", "r", &["a"], &["a2"], vec![]),
            tail(),
            flat(),
        ],
        inits.clone(),
        7,
    );
    assert!(expect_err(&p).to_string().contains("opset 7"));
    let mut custom = node("Relu", "r", &["a"], &["a2"], vec![]);
    custom.domain = Some("com.microsoft".into());
    let p = model_proto(vec![conv(vec![]), custom, tail(), flat()], inits, 13);
    assert!(matches!(expect_err(&p), ModelError::UnsupportedOp { node, .. } if node == "r"));
}

#[test]
fn garbage_and_truncated_files_are_errors_not_panics() {
    assert!(matches!(
        from_bytes(b"definitely not a protobuf \xff\xff\xff\xff"),
        Err(ModelError::Protobuf(_))
    ));
    assert!(from_bytes(&[]).is_err());
    let bytes = to_bytes(&zoo::random_resnet(7, [3, 8, 8], 5)).unwrap();
    for cut in (1..bytes.len()).step_by(97) {
        assert!(
            from_bytes(&bytes[..cut]).is_err(),
            "truncated at {cut} accepted"
        );
    }
    // Flipped bytes: any result is fine, but no panic.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..300 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let i = (state as usize) % b.len();
            b[i] ^= (state >> 32) as u8 | 1;
        }
        let _ = from_bytes(&b);
    }
    let missing = std::env::temp_dir().join("models-test-does-not-exist.onnx");
    assert!(matches!(load(&missing), Err(ModelError::Io { .. })));
}

#[test]
fn constants_that_broadcast_past_the_size_bound_are_refused_not_allocated() {
    // Two 2^16-element constants whose sum would have 2^32 elements (16 GiB as f32).
    let n = 1 << 16;
    let inits = vec![
        f32_init("col", &[n, 1], vec![1.0; n as usize]),
        f32_init("row", &[1, n], vec![2.0; n as usize]),
        f32_init("w", &[4, 2, 3, 3], vec![0.1; 72]),
    ];
    let p = model_proto(
        vec![
            node("Add", "/big/Add", &["col", "row"], &["big"], vec![]),
            node("Conv", "/stem/Conv", &["input.1", "w"], &["a"], vec![]),
            node("GlobalAveragePool", "gap", &["a"], &["b"], vec![]),
            node("Flatten", "fl", &["b"], &["out"], vec![]),
        ],
        inits,
        13,
    );
    let e = expect_err(&p).to_string();
    assert!(e.contains("/big/Add") && e.contains("too large"), "{e}");
}
