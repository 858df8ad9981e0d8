//! Built graphs agree with the analytic counts and `models::count`, survive an ONNX round trip,
//! and run in float and fixed point with activations inside the fixed-point range.

use models::rand::SeedableRng;
use models::rand_chacha::ChaCha8Rng;
use models::{Op, Stage};
use optimizer::arch::Arch;
use optimizer::construct::{build, InitOptions};
use optimizer::{cryptonas, steps};

fn default_arch() -> Arch {
    let a = Arch::hrn(8, &[2, 5, 3], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
    steps::thin(&steps::cull(&a, &[0]).unwrap(), &[1, 2, 3]).unwrap()
}

fn variants() -> Vec<Arch> {
    let r18 = [2, 2, 2, 2];
    let d = default_arch();
    let reuse = steps::reuse(
        &Arch::hrn(16, &[2, 5, 3], &r18, [3, 32, 32], 100).unwrap(),
        &[1, 2, 3],
        8,
    )
    .unwrap();
    let alt = steps::reuse(
        &Arch::hrn(8, &[2, 2, 2], &r18, [3, 32, 32], 10).unwrap(),
        &[0, 1, 2, 3],
        2,
    )
    .unwrap();
    let cnas =
        cryptonas::with_skip_relus(&cryptonas::balanced(2, &[1, 2, 1], [3, 16, 16], 10).unwrap());
    let wrn = Arch::resnet("WRN-10x2", [3, 16, 16], 10, 4, &[8, 16, 32], &[1, 1, 1]).unwrap();
    let r34 = steps::thin(
        &Arch::hrn(4, &[2, 6, 3], &[3, 4, 6, 3], [3, 64, 64], 200).unwrap(),
        &[0, 1, 2, 3],
    )
    .unwrap();
    vec![d, reuse, alt, cnas, wrn, r34]
}

#[test]
fn graph_counts_match_analytic_counts_per_stage() {
    for arch in variants() {
        let model = build(&arch, InitOptions::default()).unwrap();
        let counted = models::count::count(&model).unwrap();
        let analytic = arch.count().unwrap();
        let label = arch.label();
        assert_eq!(counted.relus, analytic.relus(), "{label}");
        assert_eq!(counted.macs, analytic.macs(), "{label}");
        let stem = counted.stage(Stage::Stem).unwrap();
        assert_eq!(
            (stem.relus, stem.macs),
            (analytic.stem.relus, analytic.stem.macs),
            "{label}"
        );
        for (i, t) in analytic.stages.iter().enumerate() {
            let s = counted.stage(Stage::Stage(i + 1)).unwrap();
            assert_eq!(
                (s.relus, s.macs),
                (t.relus, t.macs),
                "{label} stage {}",
                i + 1
            );
        }
        let head = counted.stage(Stage::Head).unwrap();
        assert_eq!(head.macs, analytic.head.macs, "{label}");
    }
}

#[test]
fn onnx_round_trip_keeps_graph_and_counts() {
    for arch in variants() {
        let model = build(
            &arch,
            InitOptions {
                seed: 7,
                ..InitOptions::default()
            },
        )
        .unwrap();
        let bytes = models::onnx::to_bytes(&model).unwrap();
        let back = models::onnx::from_bytes(&bytes).unwrap();
        assert_eq!(
            models::count::count(&back).unwrap(),
            models::count::count(&model).unwrap(),
            "{}",
            arch.label()
        );
        assert_eq!(back.nodes.len(), model.nodes.len(), "{}", arch.label());
    }
}

#[test]
fn seeds_change_weights_deterministically() {
    let a = default_arch();
    let m1 = build(
        &a,
        InitOptions {
            seed: 7,
            ..InitOptions::default()
        },
    )
    .unwrap();
    let m2 = build(
        &a,
        InitOptions {
            seed: 7,
            ..InitOptions::default()
        },
    )
    .unwrap();
    let m3 = build(
        &a,
        InitOptions {
            seed: 8,
            ..InitOptions::default()
        },
    )
    .unwrap();
    assert_eq!(m1, m2);
    assert_ne!(m1, m3);
}

fn random_image(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    models::init::normal_vec(n, 1.0, &mut rng)
}

/// Largest |value| entering a ReLU or Identity node, and largest |value| anywhere.
fn magnitudes(model: &models::Model, x: &[f32]) -> (f32, f32) {
    let all = models::float::infer_all(model, x).unwrap();
    let mut at_relu = 0f32;
    let mut any = 0f32;
    for (id, node) in model.nodes.iter().enumerate() {
        let m = all[id].iter().fold(0f32, |a, v| a.max(v.abs()));
        any = any.max(m);
        if matches!(node.op, Op::Relu(_) | Op::Identity) {
            let inp = &all[node.inputs[0]];
            at_relu = at_relu.max(inp.iter().fold(0f32, |a, v| a.max(v.abs())));
        }
    }
    (at_relu, any)
}

#[test]
fn untrained_activations_stay_in_fixed_point_range() {
    for arch in variants() {
        let model = build(&arch, InitOptions::default()).unwrap();
        let x = random_image(arch.input.iter().product(), 1);
        let (relu_in, any) = magnitudes(&model, &x);
        eprintln!(
            "{}: max |ReLU input| {relu_in:.1}, max |activation| {any:.1}",
            arch.label()
        );
        assert!(relu_in < 256.0, "{}: {relu_in}", arch.label());
    }
}

#[test]
fn fixed_point_tracks_float_on_the_default_model() {
    let model = build(&default_arch(), InitOptions::default()).unwrap();
    let x = random_image(3 * 32 * 32, 3);
    let float = models::float::infer(&model, &x).unwrap();
    let plan = models::fixed::plan(&model, &models::fixed::FixedConfig::default()).unwrap();
    let fixed = models::fixed::infer(&model, &plan, &x).unwrap();
    let scale = float.iter().fold(0f32, |a, v| a.max(v.abs()));
    let err = float
        .iter()
        .zip(&fixed)
        .fold(0f32, |a, (f, q)| a.max((f - q).abs()));
    eprintln!("max |logit| {scale:.3}, max |float − fixed| {err:.4}");
    assert_eq!(float.len(), 100);
    assert!(
        err < 0.05 * scale.max(1.0),
        "fixed point drifts: {err} vs scale {scale}"
    );
}
