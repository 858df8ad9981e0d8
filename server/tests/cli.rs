//! The real `pi-server` process: serves a model file, survives a bad client, answers a good one.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use models::fixed::FixedConfig;
use protocol::ClientOptions;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for(addr: &str) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pi-server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_a_model_file_after_a_bad_client() {
    let mut spec = models::zoo::ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = 4;
    spec.bias_std = 0.1;
    let model = spec.build().expect("model");
    let dir = std::env::temp_dir().join(format!("pi-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("m.onnx");
    models::onnx::save(&model, &path).expect("save");

    let addr = format!("127.0.0.1:{}", free_port());
    // The probe connection of wait_for counts as a session, so allow 3: probe, bad, good.
    let mut server = Command::new(env!("CARGO_BIN_EXE_pi-server"))
        .args([
            "--model",
            path.to_str().expect("utf-8 path"),
            "--listen",
            &addr,
            "--sessions",
            "3",
            "--read-timeout",
            "10",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pi-server");
    wait_for(&addr);

    let mut bad = TcpStream::connect(&addr).expect("connect");
    bad.write_all(&[0xff; 64]).expect("write garbage");
    drop(bad);

    let image: Vec<f32> = (0..3 * 8 * 8)
        .map(|i| ((i * 37 % 17) as f32 - 8.0) / 4.0)
        .collect();
    let report = protocol::run_client(
        &addr,
        [3, 8, 8],
        &image,
        &ClientOptions::default(),
        &|_, _, _| {},
    )
    .expect("private inference against the real server");
    let plan = models::fixed::plan(&model, &FixedConfig::default()).expect("plan");
    let want = models::fixed::infer(&model, &plan, &image).expect("reference");
    assert_eq!(report.inferences[0].logits, want);

    let status = server.wait().expect("server exit");
    assert!(status.success(), "pi-server exited with {status}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().expect("stderr"), &mut log)
        .expect("read log");
    assert!(
        log.contains("session failed"),
        "the bad client should be logged: {log}"
    );
    assert!(log.contains("session finished"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_model_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_pi-server"))
        .args([
            "--model",
            "/nonexistent/model.onnx",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("run pi-server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model.onnx"), "{err}");
}
