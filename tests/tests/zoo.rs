//! PyTorch exports (`tests/assets/zoo`, written by `scripts/export-zoo.py tests`: ImageNet-style
//! ResNet with max pooling, CIFAR ResNet with option-A shortcuts, MobileNetV2 with ReLU6,
//! VGG with in-model normalisation and padded pooling, SNL element masks, DenseNet, ShuffleNet,
//! SqueezeNet, the dynamo exporter and external data): each calibrates so the fixed-point top-1
//! equals float on every exported sample, and runs privately over loopback TCP with the
//! fixed-point reference's result (bit for bit without local truncation points).

use std::path::PathBuf;
use std::sync::Arc;

use models::fixed;
use models::{count, npy, onnx};
use pi_tests::{has_local_truncation_with, loopback_session, references_with};
use protocol::ServedModel;

fn zoo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/zoo")
}

fn names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(zoo_dir())
        .expect("tests/assets/zoo")
        .filter_map(|e| {
            let p = e.ok()?.path();
            Some(p.file_name()?.to_str()?.strip_suffix(".onnx")?.to_string())
        })
        .collect();
    v.sort();
    v
}

fn argmax(v: &[f32]) -> usize {
    models::float::argmax(v).expect("non-empty")
}

/// Bound on |PI − reference| relative to the largest logit where shares are truncated locally.
const LOCAL_TRUNCATION_TOLERANCE: f32 = 0.02;

#[test]
fn pytorch_exports_calibrate_and_run_privately() {
    let names = names();
    assert!(names.len() >= 8, "{names:?}");
    for name in names {
        let dir = zoo_dir();
        let imported = onnx::load_with(dir.join(format!("{name}.onnx")), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let model = imported.model;
        let samples = npy::load_samples(dir.join(format!("{name}.input.npy")), model.input, 8)
            .expect("samples");
        let bytes = std::fs::read(dir.join(format!("{name}.logits.npy"))).expect("logits");
        let (ld, ort) = npy::read_f32(&bytes).expect("logits npy");
        let classes = ld[1];

        // Calibration reproduces the float (= onnxruntime) top-1 on every sample.
        let cal = fixed::calibrate(&model, &samples, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cal.top1_agree, samples.len(), "{name}: {cal:?}");
        for (i, x) in samples.iter().enumerate() {
            let f = models::float::infer(&model, x).expect("float");
            assert_eq!(
                argmax(&f),
                argmax(&ort[i * classes..(i + 1) * classes]),
                "{name}: float top-1 differs from onnxruntime on sample {i}"
            );
        }

        // Private inference of the first sample equals the fixed-point reference.
        let config = cal.config;
        let served = Arc::new(ServedModel::new(model.clone(), config).expect("serve"));
        let c = count::count(&model).expect("count");
        assert_eq!(
            (served.relus(), served.program().comparisons()),
            (c.relus, c.comparisons),
            "{name}: the protocol's circuits and the count disagree"
        );
        let image = &samples[0];
        let (fixed_logits, float_logits) = references_with(&model, &config, image);
        let run = loopback_session(served, image, 1);
        run.server.expect("server session");
        let report = run.client.unwrap_or_else(|e| panic!("{name}: {e}"));
        let logits = &report.inferences[0].logits;
        if has_local_truncation_with(&model, &config) {
            let scale = fixed_logits.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
            for (p, r) in logits.iter().zip(&fixed_logits) {
                assert!(
                    (p - r).abs() <= LOCAL_TRUNCATION_TOLERANCE * scale,
                    "{name}: PI {p} vs reference {r}"
                );
            }
        } else {
            assert_eq!(
                logits, &fixed_logits,
                "{name}: PI must equal the reference bit for bit"
            );
        }
        assert_eq!(
            report.inferences[0].prediction,
            argmax(&float_logits),
            "{name}: private top-1 differs from float"
        );
        eprintln!(
            "{name}: {} ReLUs, {} comparisons, ring 2^{}, fa = fw = {}; private = reference",
            c.relus, c.comparisons, config.ring_bits, config.frac_act
        );
    }
}

#[test]
fn with_ot_relus_max_pool_and_relu6_layers_stay_garbled_and_results_stay_exact() {
    use protocol::{ReluChoice, ReluProtocol, ServeOptions};
    for name in ["imagenet_resnet", "mobilenet_v2_mini"] {
        let dir = zoo_dir();
        let model = onnx::load(dir.join(format!("{name}.onnx"))).expect("import");
        let samples =
            npy::load_samples(dir.join(format!("{name}.input.npy")), model.input, 8).unwrap();
        let config = fixed::calibrate(&model, &samples, &Default::default())
            .unwrap()
            .config;
        let options = ServeOptions {
            relu: ReluChoice::Ot,
            ..ServeOptions::default()
        };
        let served = ServedModel::with_options(model.clone(), config, &options).expect("serve");
        // Plain ReLU layers run OT; max-pool (fused ReLU) and ReLU6 layers stay garbled.
        let spans = served.program().layer_spans().to_vec();
        let plan = served.relu_protocols().to_vec();
        assert!(plan.contains(&ReluProtocol::Gc), "{name}: {plan:?}");
        for (l, p) in spans.iter().zip(&plan) {
            assert_eq!(
                *p == ReluProtocol::Ot,
                l.relu.is_some(),
                "{name}: layer {l:?} runs {p:?}"
            );
        }
        let image = &samples[1];
        let (fixed_logits, _) = references_with(&model, &config, image);
        let run = loopback_session(Arc::new(served), image, 1);
        run.server.expect("server session");
        let report = run.client.expect("client session");
        let logits = &report.inferences[0].logits;
        let scale = fixed_logits.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (p, r) in logits.iter().zip(&fixed_logits) {
            assert!(
                (p - r).abs() <= LOCAL_TRUNCATION_TOLERANCE * scale,
                "{name}: PI {p} vs reference {r}"
            );
        }
        assert_eq!(argmax(logits), argmax(&fixed_logits), "{name}");
    }
}
