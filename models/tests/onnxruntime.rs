//! Optional cross-check against onnxruntime: runs only when `$MODELS_PYTHON` (default `python3`)
//! can `import onnxruntime, numpy`; otherwise prints a note and passes.
//!
//! Checks: our exported models load in onnxruntime (and pass `onnx.checker` when `onnx` is
//! installed), onnxruntime's outputs agree with `float::infer` to 1e-4 relative, and numpy reads
//! our `.npy` files (and we read numpy's) bit for bit.

use std::path::PathBuf;
use std::process::Command;

use models::{float, npy, onnx, zoo};

const SCRIPT: &str = r#"
import sys, numpy as np, onnxruntime as ort
model, inp, out, npy_out = sys.argv[1:5]
try:
    import onnx
    onnx.checker.check_model(onnx.load(model))
except ImportError:
    pass
x = np.load(inp)
assert x.dtype == np.float32 and x.shape[0] == 1, (x.dtype, x.shape)
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
assert [i.name for i in sess.get_inputs()] == ["input"]
assert [o.name for o in sess.get_outputs()] == ["logits"]
y = sess.run(["logits"], {"input": x})[0]
np.save(out, y.astype(np.float32))
np.save(npy_out, (x * 3.0 - 1.0).astype(np.float32))
"#;

fn python() -> Option<String> {
    let py = std::env::var("MODELS_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("models-ort-{}-{name}", std::process::id()))
}

#[test]
fn exported_models_agree_with_onnxruntime() {
    let Some(py) = python() else {
        println!("note: onnxruntime not importable (set MODELS_PYTHON to a python with onnxruntime); skipping");
        return;
    };
    let script = tmp("check.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut models: Vec<models::Model> = (0..4)
        .map(|s| zoo::random_resnet(s, [3, 16, 16], 10))
        .collect();
    models.push(zoo::resnet18_cifar(100));
    for (k, m) in models.iter().enumerate() {
        let [c, h, w] = m.input;
        let x: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 7919 + k * 31) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let (mp, ip, op, np_) = (tmp("m.onnx"), tmp("x.npy"), tmp("y.npy"), tmp("z.npy"));
        onnx::save(m, &mp).unwrap();
        npy::write_f32(&ip, &[1, c, h, w], &x).unwrap();
        let out = Command::new(&py)
            .arg(&script)
            .args([&mp, &ip, &op, &np_])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "onnxruntime failed on model {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, y) = npy::read_f32(&std::fs::read(&op).unwrap()).unwrap();
        let ours = float::infer(m, &x).unwrap();
        let scale = ours.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-6);
        let err = ours
            .iter()
            .zip(&y)
            .fold(0f32, |a, (p, q)| a.max((p - q).abs()));
        assert!(
            err <= 1e-4 * scale,
            "model {k}: max |ours − ort| = {err} (max |logit| {scale})"
        );
        // numpy-written image read back exactly.
        let (dims, z) = npy::load_image(&np_).unwrap();
        assert_eq!(dims, [c, h, w]);
        assert!(z.iter().zip(&x).all(|(a, b)| *a == b * 3.0 - 1.0));
        println!("model {k}: onnxruntime agrees, max abs diff {err:e} (max |logit| {scale})");
        for p in [mp, ip, op, np_] {
            let _ = std::fs::remove_file(p);
        }
    }
    let _ = std::fs::remove_file(script);
}
