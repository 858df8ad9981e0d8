//! The real `pi-client` process against an in-process server: prediction, table and JSON report.

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;

use models::fixed::FixedConfig;
use protocol::{ServedModel, SessionLimits};

#[test]
fn reports_prediction_table_and_json() {
    let mut spec = models::zoo::ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = 8;
    spec.bias_std = 0.1;
    let model = spec.build().expect("model");
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        protocol::serve_session(stream, &served, &SessionLimits::default())
    });

    let dir = std::env::temp_dir().join(format!("pi-client-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let image: Vec<f32> = (0..3 * 8 * 8)
        .map(|i| ((i * 13 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let input = dir.join("x.npy");
    models::npy::write_f32(&input, &[3, 8, 8], &image).expect("write npy");
    let report = dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pi-client"))
        .args([
            "--connect",
            &addr,
            "--input",
            input.to_str().expect("utf-8"),
            "--report",
            report.to_str().expect("utf-8"),
            "--batch",
            "2",
            "--quiet",
        ])
        .output()
        .expect("run pi-client");
    assert!(
        out.status.success(),
        "pi-client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server
        .join()
        .expect("server thread")
        .expect("server session");

    let plan = models::fixed::plan(&model, &FixedConfig::default()).expect("plan");
    let want = models::fixed::infer(&model, &plan, &image).expect("reference");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("json");
    let logits: Vec<f32> = json["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("f64") as f32)
        .collect();
    assert_eq!(logits, want);
    assert_eq!(
        json["prediction"].as_u64(),
        models::float::argmax(&want).map(|p| p as u64)
    );
    assert_eq!(json["batch"].as_array().map(|b| b.len()), Some(2));
    for key in [
        "seconds",
        "bytes_sent",
        "bytes_received",
        "he_seconds",
        "garble_seconds",
        "ot_seconds",
    ] {
        assert!(json["offline"][key].is_number(), "offline.{key} missing");
    }
    for key in [
        "seconds",
        "bytes_sent",
        "bytes_received",
        "linear_seconds",
        "gc_seconds",
    ] {
        assert!(json["online"][key].is_number(), "online.{key} missing");
    }
    assert!(
        json["relus"].as_u64().is_some_and(|r| r > 0)
            && json["macs"].as_u64().is_some_and(|m| m > 0)
    );
    assert!(json["total_seconds"].as_f64().is_some_and(|t| t > 0.0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("prediction") && stdout.contains("offline") && stdout.contains("online"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_input_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pi-client-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let input = dir.join("bad.npy");
    std::fs::write(&input, b"\x93NUMPY not really").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_pi-client"))
        .args([
            "--connect",
            "127.0.0.1:9",
            "--input",
            input.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run pi-client");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.npy"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
