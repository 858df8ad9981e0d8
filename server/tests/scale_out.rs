//! `scripts/scale-out.sh` end to end: two real pi-server replicas with one ticket key behind a
//! real HAProxy (round-robin TCP), sharing a real Redis replay store. The script itself checks
//! that material banked through one replica is consumed through the other, that the balancer
//! reaches both, and that a replayed ticket is refused by both; it stops everything by PID.

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn two_replicas_behind_haproxy_share_tickets_and_refuse_replays() {
    let missing: Vec<&str> = ["redis-server", "haproxy", "python3"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{missing:?} missing; run `bash scripts/setup.sh test`"
        );
        eprintln!("skipped: {missing:?} not installed (bash scripts/setup.sh test)");
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_pi-server"))
        .parent()
        .expect("bin dir");
    assert!(
        bin.join("pi-client").exists(),
        "pi-client is not built next to pi-server; run `cargo build --release -p client`"
    );
    // A small model keeps the run short; the script is the same for the default model.
    let dir = tempfile::tempdir().expect("tmp");
    let mut spec = models::zoo::ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = 31;
    let model = spec.build().expect("model");
    let onnx = dir.path().join("m.onnx");
    models::onnx::save(&model, &onnx).expect("save onnx");
    let x = dir.path().join("x.npy");
    let image: Vec<f32> = (0..3 * 8 * 8).map(|i| (i % 7) as f32 / 3.0 - 1.0).collect();
    models::npy::write_f32(&x, &[3, 8, 8], &image).expect("npy");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("timeout")
        .arg("600")
        .arg("bash")
        .arg(root.join("scripts/scale-out.sh"))
        .arg("--model")
        .arg(&onnx)
        .arg("--input")
        .arg(&x)
        .env("PI_BIN_DIR", bin)
        .env("PI_SERVER_HOST_COSTS", pi_tests::process::test_host_costs())
        .output()
        .expect("run scale-out.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scale-out.sh failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "ok: banked through replica A, consumed through replica B",
        "ok: two inferences through haproxy, one per replica",
        "ok: a replayed ticket is refused by both replicas",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
}
