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
            "--insecure-plaintext",
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
            "--insecure-plaintext",
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

/// Serves `model` for one plaintext session on a thread; returns the address.
fn serve_once(model: models::Model) -> (String, std::thread::JoinHandle<()>) {
    let served = Arc::new(ServedModel::new(model, FixedConfig::default()).expect("serve"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let h = std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            let _ = protocol::serve_session(stream, &served, &SessionLimits::default());
        }
    });
    (addr, h)
}

fn tiny() -> models::Model {
    let mut spec = models::zoo::ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = 8;
    spec.bias_std = 0.1;
    spec.build().expect("model")
}

fn client(addr: &str, input: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pi-client"))
        .args([
            "--connect",
            addr,
            "--insecure-plaintext",
            "--input",
            input.to_str().expect("utf-8"),
            "--quiet",
        ])
        .output()
        .expect("run pi-client")
}

#[test]
fn logits_outside_the_servers_bound_are_a_failure_not_a_prediction() {
    // One weight of 1e6 in the classifier: the logits leave the fixed-point range.
    let mut model = tiny();
    for node in &mut model.nodes {
        if let models::Op::Linear(l) = &mut node.op {
            l.weight[0] = 1e6;
        }
    }
    let (addr, server) = serve_once(model);
    let dir = std::env::temp_dir().join(format!("pi-client-bound-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let input = dir.join("x.npy");
    let image: Vec<f32> = (0..3 * 8 * 8).map(|i| (i % 5) as f32 / 2.0).collect();
    models::npy::write_f32(&input, &[3, 8, 8], &image).expect("write npy");
    let out = client(&addr, &input);
    server.join().expect("server thread");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {err}");
    assert!(
        err.contains("implausible") && err.contains("bound"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("prediction"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_input_outside_the_fixed_point_range_is_refused() {
    let (addr, server) = serve_once(tiny());
    let dir = std::env::temp_dir().join(format!("pi-client-range-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let input = dir.join("x.npy");
    let mut image = vec![0.5f32; 3 * 8 * 8];
    image[17] = 1e30;
    models::npy::write_f32(&input, &[3, 8, 8], &image).expect("write npy");
    let out = client(&addr, &input);
    server.join().expect("server thread");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("input element 17") && err.contains("range"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_tls_or_an_explicit_plaintext_flag_the_client_says_what_to_pass() {
    let out = Command::new(env!("CARGO_BIN_EXE_pi-client"))
        .args(["--connect", "127.0.0.1:9", "--sample"])
        .output()
        .expect("run pi-client");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-ca") && err.contains("--insecure-plaintext"),
        "{err}"
    );
}
