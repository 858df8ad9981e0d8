//! The `pi-opt` binary: outputs scripts rely on (`--json`), the required design lists, and
//! errors on bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn pi_opt(args: &[&str]) -> Output {
    // Figures measured under test load stay out of the user's cache.
    let host_costs = std::env::temp_dir().join(format!("pi-opt-cli-host-{}.json", user()));
    Command::new(env!("CARGO_BIN_EXE_pi-opt"))
        .env("PI_OPT_HOST_COSTS", host_costs)
        .args(args)
        .output()
        .expect("pi-opt runs")
}

fn user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "user".into())
}

fn json(args: &[&str]) -> Value {
    let out = pi_opt(args);
    assert!(
        out.status.success(),
        "pi-opt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON on stdout")
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pi-opt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn design_lists_the_papers_hybrenets() {
    let v = json(&[
        "design",
        "--base",
        "resnet18",
        "--order",
        "S3,S2,S4,S1",
        "--json",
    ]);
    assert_eq!(
        names(&v, "equalized"),
        ["HRN-5x5x3x", "HRN-5x7x2x", "HRN-6x6x2x", "HRN-7x5x2x"]
    );
    assert_eq!(
        names(&v, "capacity_criticality"),
        ["HRN-2x5x3x", "HRN-2x7x2x", "HRN-2x6x2x", "HRN-2x5x2x"]
    );
    assert_eq!(v["equalized"][0]["relus"], 343_040);
    assert_eq!(v["equalized"][0]["stages"][2]["relus"], 102_400);
    let v = json(&[
        "design",
        "--base",
        "resnet18",
        "--order",
        "S3,S4,S2,S1",
        "--json",
    ]);
    assert_eq!(names(&v, "equalized"), ["HRN-5x6x3x", "HRN-5x9x2x"]);
    let v = json(&[
        "design",
        "--base",
        "resnet34",
        "--select",
        "smallest-alpha",
        "--json",
    ]);
    assert_eq!(names(&v, "equalized"), ["HRN-4x6x3x", "HRN-4x9x2x"]);
    assert_eq!(v["compute_ratios"], serde_json::json!([3, 4, 6, 3]));
    let text = String::from_utf8(
        pi_opt(&["design", "--base", "resnet18", "--order", "S3,S2,S4,S1"]).stdout,
    )
    .unwrap();
    for n in [
        "HRN-5x5x3x",
        "HRN-5x7x2x",
        "HRN-6x6x2x",
        "HRN-7x5x2x",
        "HRN-2x5x3x",
    ] {
        assert!(text.contains(n), "{n} missing from:\n{text}");
    }
}

#[test]
fn build_count_eval_default_model() {
    let model = tmp("default.onnx");
    let m = model.to_str().unwrap();
    let b = json(&[
        "build",
        "--family",
        "hrn",
        "--alpha",
        "2",
        "--beta",
        "5",
        "--gamma",
        "3",
        "--base-channels",
        "8",
        "--blocks",
        "2,2,2,2",
        "--classes",
        "100",
        "--input",
        "32",
        "--cull",
        "S1",
        "--thin",
        "S2,S3,S4",
        "--seed",
        "7",
        "-o",
        m,
        "--json",
    ]);
    assert_eq!(b["relus"], 26_112);
    let c = json(&["count", m, "--json"]);
    assert_eq!(c["relus"], 26_112);
    assert_eq!(c["macs"], 44_535_232);
    let stages = c["stages"].as_array().unwrap();
    assert_eq!(
        stages
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    );
    assert_eq!(
        stages
            .iter()
            .map(|s| s["relus"].as_u64().unwrap())
            .sum::<u64>(),
        26_112
    );

    let x = tmp("x.npy");
    let img: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    models::npy::write_f32(&x, &[1, 3, 32, 32], &img).unwrap();
    let xs = x.to_str().unwrap();
    let f = json(&["eval", m, "--input", xs, "--json"]);
    let logits = f["logits"].as_array().unwrap();
    assert_eq!(logits.len(), 100);
    let best = logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .unwrap()
        .0;
    assert_eq!(f["prediction"].as_u64().unwrap() as usize, best);
    let q = json(&["eval", m, "--input", xs, "--fixed", "--json"]);
    assert_eq!(q["logits"].as_array().unwrap().len(), 100);

    // A wrong image shape and a missing file are errors, not panics.
    let bad = tmp("bad.npy");
    models::npy::write_f32(&bad, &[3, 16, 16], &vec![0.0; 3 * 256]).unwrap();
    let out = pi_opt(&["eval", m, "--input", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not match"));
    let out = pi_opt(&["count", tmp("missing.onnx").to_str().unwrap()]);
    assert!(!out.status.success());
    let garbage = tmp("garbage.onnx");
    std::fs::write(&garbage, b"not an onnx file").unwrap();
    let out = pi_opt(&["count", garbage.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let _ = std::fs::remove_dir_all(model.parent().unwrap());
}

#[test]
fn optimize_returns_algorithm2_networks() {
    let v = json(&[
        "optimize",
        "--alpha",
        "2",
        "--beta",
        "5",
        "--gamma",
        "3",
        "--base-channels",
        "16",
        "--json",
    ]);
    assert_eq!(v["least_critical_dominates"], true);
    let nets = v["networks"].as_array().unwrap();
    let labels: Vec<&str> = nets.iter().map(|n| n["net"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        ["Net", "Net_T", "Net_C", "Net_R4", "Net_R8", "Net_R16"]
    );
    let relus: Vec<u64> = nets.iter().map(|n| n["relus"].as_u64().unwrap()).collect();
    assert_eq!(relus, [104_448, 52_224, 26_112, 13_056, 6_528, 3_264]);
    assert!(nets[3]["build_command"]
        .as_str()
        .unwrap()
        .contains("--reuse 4"));
}

#[test]
fn cryptonas_fits_budget() {
    let v = json(&["cryptonas", "--budget", "100000", "--json"]);
    assert_eq!(v["network"]["base_channels"], 5);
    assert_eq!(v["relus_after_shuffling"], 87_040);
    assert!(
        v["relus_with_skip_relus"].as_u64().unwrap() > v["relus_after_pruning"].as_u64().unwrap()
    );
    let out = pi_opt(&["cryptonas", "--budget", "10"]);
    assert!(!out.status.success());
}

#[test]
fn bad_arguments_are_reported() {
    for args in [
        vec!["design", "--order", "S3,S2,S4"],
        vec!["design", "--base", "vgg"],
        vec!["build", "--family", "hrn", "-o", "/nonexistent-dir/x.onnx"],
        vec![
            "build", "--alpha", "2", "--beta", "5", "--gamma", "3", "--cull", "S9", "-o", "x.onnx",
        ],
        vec![
            "build",
            "--alpha",
            "2",
            "--beta",
            "5",
            "--gamma",
            "3",
            "--base-channels",
            "4",
            "--reuse",
            "16",
            "-o",
            "x.onnx",
        ],
    ] {
        let out = pi_opt(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn paper_command_reports_every_row() {
    let v = json(&["paper", "--json"]);
    let rows = v.as_array().unwrap();
    assert!(rows.len() >= 40);
    let unmatched: Vec<&Value> = rows.iter().filter(|r| r["relus_match"] == false).collect();
    assert_eq!(unmatched.len(), 2, "only the two documented rows differ");
}
