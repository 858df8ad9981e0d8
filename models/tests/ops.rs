//! The operators PyTorch exports need (max pooling, padded pools, ReLU6, element masks, affine
//! maps, padding, strided slices, channel permutations): geometry, export/import round trips,
//! fixed point, calibration and `check`.

use models::builder::ModelBuilder;
use models::fixed::{self, calibrate, CalibrationOptions, FixedConfig, Step};
use models::onnx::{check_bytes, from_bytes, from_bytes_with, to_bytes, with_metadata};
use models::{
    count, float, Affine, Conv2d, ElementMask, Linear, MaxPool, Model, ModelError, Op, Pool, Relu,
    Slice, Stage,
};

fn input(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            (((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2001) as f32
                / 1000.0
                - 1.0
        })
        .collect()
}

#[test]
fn pool_windows_follow_pytorch() {
    // MaxPool2d(3, 2, 1) on 8×8: 4×4 outputs; window 0 covers rows 0..2 (top padding).
    let p = Pool {
        kernel: [3, 3],
        stride: [2, 2],
        pads: [1, 1, 1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    assert_eq!(p.output_size(8, 8), Some((4, 4)));
    let w = p.window(0, 0, 8, 8);
    assert_eq!((w.rows, w.cols, w.len()), ((0, 2), (0, 2), 4));
    // ceil_mode on 7×7, kernel 3, stride 2, no padding: ⌈4/2⌉ + 1 = 3; the last window starts at 4.
    let c = Pool {
        ceil_mode: true,
        ..Pool::new([3, 3], [2, 2])
    };
    assert_eq!(c.output_size(7, 7), Some((3, 3)));
    // ceil_mode on 8×8: ⌈5/2⌉ + 1 = 4 windows, the last (start 6) reads rows 6..8.
    assert_eq!(c.output_size(8, 8), Some((4, 4)));
    assert_eq!(c.window(3, 3, 8, 8).rows, (6, 8));
    // AvgPool2d(3, 1, 1) with count_include_pad divides by 9 everywhere; without, by 4 in corners.
    let a = Pool {
        count_include_pad: true,
        pads: [1, 1, 1, 1],
        ..Pool::new([3, 3], [1, 1])
    };
    assert_eq!(a.window(0, 0, 5, 5).divisor, 9);
    let b = Pool {
        count_include_pad: false,
        ..a
    };
    assert_eq!(b.window(0, 0, 5, 5).divisor, 4);
    assert_eq!(b.window(2, 2, 5, 5).divisor, 9);
    // A window of padding only is invalid.
    let bad = Pool {
        pads: [3, 0, 0, 0],
        ..Pool::new([3, 3], [1, 1])
    };
    assert_eq!(bad.output_size(5, 5), None);
}

/// A model with every new operator.
fn zoo_of_ops() -> Model {
    let mut rng = <models::rand_chacha::ChaCha8Rng as models::rand::SeedableRng>::seed_from_u64(5);
    let mut b = ModelBuilder::new("ops", [3, 10, 10]);
    let x = b.node(
        "stem.shift",
        Op::Affine(Affine {
            scale: vec![],
            shift: vec![0.1, -0.2, 0.3],
        }),
        vec![0],
        Stage::Stem,
    );
    let x = b.conv(
        x,
        Conv2d::he_normal(3, 8, 3, 1, 1, 1, &mut rng),
        Stage::Stem,
    );
    let x = b.node(
        "stem.pool",
        Op::MaxPool(MaxPool {
            pool: Pool {
                pads: [1, 1, 1, 1],
                ..Pool::new([3, 3], [2, 2])
            },
            relu: true,
            cap: Some(6.0),
        }),
        vec![x],
        Stage::Stem,
    );
    // 8 × 5 × 5 → mask half the elements.
    let bits: Vec<bool> = (0..200).map(|i| i % 3 != 0).collect();
    let x = b.node(
        "stage1.mask",
        Op::Relu(Relu::elements(ElementMask::from_bools(&bits))),
        vec![x],
        Stage::Stage(1),
    );
    let x = b.node(
        "stage1.pad",
        Op::Pad([0, 1, 0, 0, 0, 1]),
        vec![x],
        Stage::Stage(1),
    );
    let x = b.node(
        "stage1.shuffle",
        Op::PermuteChannels(vec![1, 0, 3, 2, 5, 4, 7, 6]),
        vec![x],
        Stage::Stage(1),
    );
    let x = b.node(
        "stage1.sub",
        Op::Slice(Slice {
            start: [0, 0, 0],
            len: [8, 3, 3],
            step: [1, 2, 2],
        }),
        vec![x],
        Stage::Stage(1),
    );
    let x = b.conv(
        x,
        Conv2d::he_normal(8, 8, 3, 1, 1, 1, &mut rng),
        Stage::Stage(2),
    );
    let x = b.node(
        "stage2.relu6",
        Op::Relu(Relu {
            channels: Some(vec![0, 2, 3]),
            elements: None,
            cap: Some(6.0),
        }),
        vec![x],
        Stage::Stage(2),
    );
    let x = b.node(
        "stage2.avg",
        Op::AvgPool(Pool {
            ceil_mode: true,
            count_include_pad: false,
            ..Pool::new([2, 2], [2, 2])
        }),
        vec![x],
        Stage::Stage(2),
    );
    let x = b.global_avg_pool(x, Stage::Head);
    let x = b.flatten(x, Stage::Head);
    let y = b.linear(x, Linear::he_normal(8, 4, &mut rng), Stage::Head);
    b.finish(y).unwrap()
}

#[test]
fn new_operators_round_trip_through_onnx() {
    let m = zoo_of_ops();
    let back = from_bytes(&to_bytes(&m).unwrap()).unwrap();
    let x = input(300, 1);
    let (a, b) = (
        float::infer(&m, &x).unwrap(),
        float::infer(&back, &x).unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(count::count(&back).unwrap(), count::count(&m).unwrap());
    // The element mask and the capped channel subset survive as such.
    assert!(back
        .nodes
        .iter()
        .any(|n| matches!(&n.op, Op::Relu(r) if r.elements.is_some())));
    assert!(back
        .nodes
        .iter()
        .any(|n| matches!(&n.op, Op::Relu(r) if r.channels.is_some() && r.cap == Some(6.0))));
    assert!(back
        .nodes
        .iter()
        .any(|n| matches!(&n.op, Op::MaxPool(p) if p.relu && p.cap == Some(6.0))));
}

#[test]
fn counts_include_comparisons() {
    let m = zoo_of_ops();
    let c = count::count(&m).unwrap();
    // MaxPool 3×3/2 pad 1 on 10×10 → 5×5 per channel: windows of 4, 6 and 9 elements.
    let per_channel: u64 = {
        let p = Pool {
            pads: [1, 1, 1, 1],
            ..Pool::new([3, 3], [2, 2])
        };
        p.windows(10, 10).iter().map(|w| w.len() as u64 - 1).sum()
    };
    let pool_outputs = 8 * 25;
    // Fused ReLU: one per output; cap: one comparison per output; ReLU6 on 3 channels of 3×3.
    assert_eq!(
        c.comparisons,
        8 * per_channel + pool_outputs + 3 * 9,
        "{c:?}"
    );
    let masked = (0..200).filter(|i| i % 3 != 0).count() as u64;
    assert_eq!(c.relus, pool_outputs + masked + 3 * 9);
}

#[test]
fn fixed_point_follows_the_float_model() {
    let m = zoo_of_ops();
    let xs: Vec<Vec<f32>> = (0..6).map(|s| input(300, s)).collect();
    let cal = calibrate(&m, &xs, &CalibrationOptions::default()).unwrap();
    assert_eq!(cal.top1_agree, 6, "{cal:?}");
    let p = fixed::plan(&m, &cal.config).unwrap();
    // The ceil-mode 2×2 average on 3×3 (windows of 4, 2, 2 and 1 elements) uses reciprocals;
    // the shift-only affine adds constants.
    assert!(p
        .nodes
        .iter()
        .any(|n| matches!(&n.step, Step::PoolMean { factors, .. } if factors.len() == 4)));
    assert!(p.nodes.iter().any(|n| matches!(n.step, Step::AddConst(_))));
    for x in &xs {
        let f = float::infer(&m, x).unwrap();
        let q = fixed::infer(&m, &p, x).unwrap();
        let scale = f.iter().fold(1e-3f32, |a, v| a.max(v.abs()));
        for (a, b) in f.iter().zip(&q) {
            assert!((a - b).abs() <= 0.05 * scale, "{f:?} vs {q:?}");
        }
    }
}

#[test]
fn calibration_travels_in_metadata_and_huge_activations_are_refused() {
    let m = zoo_of_ops();
    let xs: Vec<Vec<f32>> = (0..3).map(|s| input(300, s)).collect();
    let cal = calibrate(&m, &xs, &CalibrationOptions::default()).unwrap();
    let bytes = with_metadata(&to_bytes(&m).unwrap(), &cal.metadata());
    let imported = from_bytes_with(&bytes, &Default::default()).unwrap();
    assert_eq!(
        FixedConfig::from_metadata(&imported.metadata)
            .unwrap()
            .unwrap(),
        cal.config
    );
    // The same model, fed inputs of 10^12: no ring of at most 59 bits holds its values.
    let big: Vec<Vec<f32>> = xs
        .iter()
        .map(|x| x.iter().map(|v| v * 1e12).collect())
        .collect();
    match calibrate(&m, &big, &CalibrationOptions::default()) {
        Err(ModelError::Unsupported { node, reason }) => {
            assert!(
                !node.is_empty() && reason.contains("ring"),
                "{node}: {reason}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn check_lists_every_unsupported_node_with_advice() {
    use models::onnx::proto::*;
    use prost::Message;
    let vi = |name: &str, dims: &[i64]| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(DT_FLOAT),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: Some(d),
                            dim_param: None,
                        })
                        .collect(),
                }),
            }),
        }),
        doc_string: None,
    };
    let node = |op: &str, name: &str, ins: &[&str], outs: &[&str]| NodeProto {
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        name: Some(name.into()),
        op_type: Some(op.into()),
        ..Default::default()
    };
    let w = TensorProto {
        dims: vec![4, 3, 1, 1],
        data_type: Some(DT_FLOAT),
        name: Some("w".into()),
        float_data: vec![0.1; 12],
        ..Default::default()
    };
    // Conv → HardSwish → Conv → (x · Sigmoid(x): SiLU) → GlobalAveragePool → Flatten.
    let p = ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: vec![
                node("Conv", "c1", &["x", "w"], &["a"]),
                node("HardSwish", "hs", &["a"], &["b"]),
                node("Sigmoid", "sg", &["b"], &["c"]),
                node("Mul", "silu", &["b", "c"], &["d"]),
                node("GlobalAveragePool", "gap", &["d"], &["e"]),
                node("Flatten", "fl", &["e"], &["y"]),
            ],
            initializer: vec![w],
            input: vec![vi("x", &[1, 3, 4, 4])],
            output: vec![vi("y", &[1, 4])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let problems = check_bytes(&p.encode_to_vec(), &Default::default());
    let text: Vec<String> = problems.iter().map(|e| e.to_string()).collect();
    assert_eq!(problems.len(), 3, "{text:#?}");
    assert!(
        text[0].contains("`hs`") && text[0].contains("nn.ReLU"),
        "{}",
        text[0]
    );
    assert!(
        text[1].contains("`sg`") && text[1].contains("SE blocks"),
        "{}",
        text[1]
    );
    assert!(text[2].contains("`silu`"), "{}", text[2]);
    // A model that imports has no problems.
    let ok = to_bytes(&zoo_of_ops()).unwrap();
    assert!(check_bytes(&ok, &Default::default()).is_empty());
}

#[test]
fn several_outputs_serve_the_named_one() {
    use models::onnx::ImportOptions;
    let m = zoo_of_ops();
    let bytes = to_bytes(&m).unwrap();
    // Serve an inner tensor (the stage-1 permutation) instead of the logits.
    let opts = ImportOptions {
        output: Some("stage1.shuffle".into()),
        base_dir: None,
    };
    let imported = from_bytes_with(&bytes, &opts).unwrap();
    let out = &imported.model.nodes[imported.model.output];
    assert_eq!(out.op, Op::PermuteChannels(vec![1, 0, 3, 2, 5, 4, 7, 6]));
    assert_eq!(imported.outputs, vec!["logits".to_string()]);
    let missing = ImportOptions {
        output: Some("nope".into()),
        base_dir: None,
    };
    let e = from_bytes_with(&bytes, &missing).unwrap_err().to_string();
    assert!(e.contains("never produced") && e.contains("logits"), "{e}");
}
