//! `pi-bench e2e` with real pi-server / pi-client processes: on loopback, and across a network
//! namespace pair with a shaped link (needs root and iproute2; CI runs as root). The banked
//! prediction must equal the one-shot one (checked by pi-bench), and a 40 ms RTT must show in
//! the banked wait (a few round trips at least) while the bytes stay the same.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn small_model(dir: &Path) -> (String, String) {
    let mut spec = models::zoo::ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = 41;
    let model = spec.build().expect("model");
    let onnx = dir.join("m.onnx");
    models::onnx::save(&model, &onnx).expect("save");
    let x = dir.join("x.npy");
    let image: Vec<f32> = (0..3 * 8 * 8).map(|i| (i % 5) as f32 / 2.0 - 1.0).collect();
    models::npy::write_f32(&x, &[3, 8, 8], &image).expect("npy");
    (onnx.display().to_string(), x.display().to_string())
}

fn bench(args: &[&str]) -> Value {
    let bin = Path::new(env!("CARGO_BIN_EXE_pi-bench"));
    let dir = bin.parent().expect("bin dir");
    assert!(
        dir.join("pi-server").exists() && dir.join("pi-client").exists(),
        "pi-server/pi-client are not built next to pi-bench: cargo build --release -p server -p client"
    );
    let out = Command::new("timeout")
        .arg("600")
        .arg(bin)
        .arg("e2e")
        .args(args)
        // The servers it starts keep their host costs out of the user's cache.
        .env("PI_SERVER_HOST_COSTS", pi_tests::process::test_host_costs())
        .output()
        .expect("run pi-bench");
    assert!(
        out.status.success(),
        "pi-bench e2e failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

fn check_shape(v: &Value) {
    for k in ["inline", "preprocess", "banked"] {
        assert!(v[k].is_object(), "{k} missing: {v}");
    }
    assert!(v["banked"]["online_seconds"].as_f64().unwrap() > 0.0);
    assert!(v["preprocess"]["ticket_bytes"].as_u64().unwrap() < 512);
    // A set holds the client's masks and ReLU material (garbled tables are ~4 KB per ReLU, OT less).
    assert!(v["preprocess"]["disk_bytes"].as_u64().unwrap() > 1_000);
}

/// With one ReLU protocol forced, a banked set runs the one-shot plan, so its online phase moves
/// exactly the one-shot online bytes (under `auto` a banked plan is chosen for its online phase).
fn check_same_online_bytes(v: &Value) {
    assert_eq!(
        v["banked"]["bytes_received"],
        v["inline"]["online"]["bytes_received"]
    );
    assert_eq!(
        v["banked"]["bytes_sent"],
        v["inline"]["online"]["bytes_sent"]
    );
}

#[test]
fn loopback_and_a_shaped_namespace_link() {
    let dir = tempfile::tempdir().expect("tmp");
    let (model, x) = small_model(dir.path());
    let lo = bench(&["--model", &model, "--input", &x]);
    check_shape(&lo);
    assert_eq!(lo["link"]["loopback"], true);
    for protocol in ["gc", "ot"] {
        let forced = bench(&[
            "--model",
            &model,
            "--input",
            &x,
            "--server-args",
            &format!("--relu-protocol {protocol}"),
        ]);
        check_shape(&forced);
        check_same_online_bytes(&forced);
        assert_eq!(forced["prediction"], lo["prediction"], "{protocol}");
    }

    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        eprintln!("skipped the namespace link: needs root (network namespaces)");
        return;
    }
    let shaped = bench(&[
        "--model", &model, "--input", &x, "--rate", "1gbit", "--rtt", "40ms",
    ]);
    check_shape(&shaped);
    assert_eq!(shaped["link"]["netns"], true);
    assert_eq!(shaped["link"]["rtt_ms"], 40.0);
    // connect + hello/ticket + masked input → labels → bits → output: at least 3 round trips.
    let wait = shaped["banked"]["wait_seconds"].as_f64().unwrap();
    assert!(
        wait >= 3.0 * 0.040,
        "banked wait {wait} s under a 40 ms RTT"
    );
    assert_eq!(shaped["prediction"], lo["prediction"]);
}
