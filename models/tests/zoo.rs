//! PyTorch exports (`tests/assets/zoo`, written by `scripts/export-zoo.py tests`): every model
//! imports, and the float reference equals onnxruntime's logits on the exported inputs.

use std::path::PathBuf;

use models::{count, float, npy, onnx, Op};

/// The committed test models (directory overridable with `PI_ZOO_DIR`).
pub fn zoo_dir() -> PathBuf {
    std::env::var_os("PI_ZOO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/assets/zoo"))
}

/// Model names in the zoo directory.
fn names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(zoo_dir())
        .expect("tests/assets/zoo exists")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p.file_name()?.to_str()?.strip_suffix(".onnx")?.to_string();
            Some(n)
        })
        .collect();
    v.sort();
    v
}

fn read(path: PathBuf) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    npy::read_f32(&bytes).expect("npy")
}

#[test]
fn every_export_imports_and_matches_onnxruntime() {
    let names = names();
    assert!(
        names.len() >= 8,
        "expected the committed zoo, found {names:?}"
    );
    for name in names {
        let dir = zoo_dir();
        let model =
            onnx::load(dir.join(format!("{name}.onnx"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (xd, xs) = read(dir.join(format!("{name}.input.npy")));
        let (ld, logits) = read(dir.join(format!("{name}.logits.npy")));
        let per_in: usize = xd[1..].iter().product();
        let per_out = ld[1];
        let mut worst = 0f32;
        for i in 0..xd[0] {
            let y = float::infer(&model, &xs[i * per_in..(i + 1) * per_in])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let r = &logits[i * per_out..(i + 1) * per_out];
            assert_eq!(y.len(), r.len(), "{name}: logits length");
            let scale = r.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
            for (a, b) in y.iter().zip(r) {
                worst = worst.max((a - b).abs() / scale);
            }
        }
        eprintln!("{name}: max |float − onnxruntime| / max |logit| = {worst:.2e}");
        assert!(
            worst < 1e-4,
            "{name}: float reference differs from onnxruntime by {worst}"
        );
        let c = count::count(&model).expect("count");
        assert!(c.relus > 0, "{name}: no ReLU counted");
        assert!(
            !model
                .nodes
                .iter()
                .any(|n| matches!(&n.op, Op::Affine(a) if !a.is_shift_only())),
            "{name}: a scaled affine map survived import"
        );
    }
}

/// Operator kinds of a model, in node order (`relu*` for element masks, `relu6` for caps,
/// `maxpool+relu` for fused ones).
fn kinds(name: &str) -> Vec<String> {
    let model = onnx::load(zoo_dir().join(format!("{name}.onnx"))).expect("import");
    model
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::Relu(r) if r.elements.is_some() => "relu*".to_string(),
            Op::Relu(r) if r.cap.is_some() => "relu6".to_string(),
            Op::MaxPool(m) if m.relu => "maxpool+relu".to_string(),
            Op::Conv2d(c) if c.groups == c.c_in && c.kernel == [1, 1] && c.c_in > 1 => {
                "dwconv1x1".to_string()
            }
            op => op.kind().to_string(),
        })
        .collect()
}

#[test]
fn exports_map_onto_the_expected_operators() {
    let has = |name: &str, k: &str| kinds(name).iter().any(|x| x == k);
    let count = |name: &str, k: &str| kinds(name).iter().filter(|x| *x == k).count();
    // ReLU → MaxPool fused; the 3×3 global pool stays one node.
    assert!(has("imagenet_resnet", "maxpool+relu"));
    assert_eq!(kinds("imagenet_resnet"), kinds("imagenet_resnet_dynamo"));
    // Option-A shortcuts: strided spatial slice + channel zero padding.
    assert!(count("cifar_resnet8_a", "stridedslice") >= 2);
    assert_eq!(count("cifar_resnet8_a", "pad"), 2);
    // ReLU6 from Clip; ReduceMean → global pool.
    assert_eq!(count("mobilenet_v2_mini", "relu6"), 4);
    assert!(has("mobilenet_v2_mini", "gap"));
    // SNL masks: two element-subset ReLUs, no Mul left.
    assert_eq!(count("snl_masked", "relu*"), 2);
    assert!(!has("snl_masked", "affine"));
    // Channel shuffle → one permutation.
    assert_eq!(count("shufflenet_mini", "permute"), 1);
    // DenseNet: BatchNorm on a concatenation becomes depthwise 1×1 convs.
    assert!(count("densenet_mini", "dwconv1x1") >= 2);
    // Dynamo's adaptive pool (Transpose/GatherND/Where/Gather/Add/Div) becomes one gather-mean.
    assert_eq!(count("adaptive_pool_dynamo", "gathermean"), 1);
    assert!(!has("adaptive_pool_dynamo", "affine"));
    // VGG: input normalisation's scale folded into the first conv, its shift kept as a free add.
    assert_eq!(count("vgg_mini_2out", "affine"), 1);
    assert!(has("vgg_mini_2out", "maxpool+relu"));
}
