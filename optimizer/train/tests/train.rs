//! End-to-end checks of the training stack on tiny networks: learning on separable synthetic
//! data, learning on the real shipped digits (when `data/` has them), distillation, checkpoint
//! resume, and export → ONNX → import giving identical outputs.

use models::builder::ModelBuilder;
use models::{Conv2d, Linear, Model, Pool, Stage};
use pi_train::data::{Augment, DataKind, DataSpec, Dataset, Normalizer, Prepared};
use pi_train::loss::Distill;
use pi_train::net::{values, Init, Net};
use pi_train::rng::Rng;
use pi_train::trainer::{accuracy, train, Checkpointing, TrainConfig};
use std::path::PathBuf;

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, pad: usize) -> Conv2d {
    Conv2d {
        c_in,
        c_out,
        kernel: [k, k],
        stride: [stride, stride],
        padding: [pad, pad],
        groups: 1,
        weight: vec![0.0; c_out * c_in * k * k],
        bias: vec![0.0; c_out],
    }
}

fn fc(i: usize, o: usize) -> Linear {
    Linear {
        in_features: i,
        out_features: o,
        weight: vec![0.0; i * o],
        bias: vec![0.0; o],
    }
}

/// stem conv → ReLU → [conv → masked ReLU → conv] + shortcut → ReLU → GAP → linear
fn tiny_resnet(input: [usize; 3], width: usize, classes: usize) -> Model {
    let mut b = ModelBuilder::new("tiny", input);
    let x = b.input();
    let s = b.conv(x, conv(input[0], width, 3, 1, 1), Stage::Stem);
    let s = b.relu(s, Stage::Stem);
    let c1 = b.conv(s, conv(width, width, 3, 1, 1), Stage::Stage(1));
    let r1 = b.relu_channels(c1, (0..width / 2).collect(), Stage::Stage(1));
    let c2 = b.conv(r1, conv(width, width, 3, 1, 1), Stage::Stage(1));
    let a = b.add(c2, s, Stage::Stage(1));
    let r = b.relu(a, Stage::Stage(1));
    let d = b.conv(r, conv(width, width, 3, 2, 1), Stage::Stage(2));
    let d = b.relu(d, Stage::Stage(2));
    let g = b.global_avg_pool(d, Stage::Head);
    let f = b.flatten(g, Stage::Head);
    let o = b.linear(f, fc(width, classes), Stage::Head);
    b.finish(o).unwrap()
}

/// Exercises every operator the trainer interprets: slice, concat, avg-pool, identity, flatten of CHW.
fn op_zoo(input: [usize; 3], classes: usize) -> Model {
    let mut b = ModelBuilder::new("zoo", input);
    let x = b.input();
    let c = b.conv(x, conv(input[0], 6, 3, 1, 1), Stage::Stem);
    let r = b.relu_channels(c, vec![0, 2, 5], Stage::Stem);
    let lo = b.slice_channels(r, 0, 2, Stage::Stage(1));
    let hi = b.slice_channels(r, 2, 4, Stage::Stage(1));
    let hi = b.conv(hi, conv(4, 4, 1, 1, 0), Stage::Stage(1));
    let hi = b.identity(hi, Stage::Stage(1));
    let cat = b.concat(vec![hi, lo], Stage::Stage(1));
    let p = b.avg_pool(cat, Pool::new([2, 2], [2, 2]), Stage::Stage(2));
    let r = b.relu(p, Stage::Stage(2));
    let f = b.flatten(r, Stage::Head);
    let n = 6 * (input[1] / 2) * (input[2] / 2);
    let h = b.linear(f, fc(n, 8), Stage::Head);
    let h = b.relu(h, Stage::Head);
    let o = b.linear(h, fc(8, classes), Stage::Head);
    b.finish(o).unwrap()
}

/// Four classes of 8×8 RGB images: a bright quadrant (which one is the class) on noise.
fn quadrants(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let label = i % 4;
        for _c in 0..3 {
            for y in 0..8 {
                for x in 0..8 {
                    let q = (y / 4) * 2 + x / 4;
                    let base = if q == label { 170 } else { 60 };
                    pixels.push((base + rng.below(60)) as u8);
                }
            }
        }
        labels.push(label as u16);
    }
    Dataset {
        shape: [3, 8, 8],
        max_value: 255.0,
        classes: 4,
        pixels,
        labels,
    }
}

fn synthetic() -> Prepared {
    let train = quadrants(256, 1);
    let test = quadrants(64, 2);
    let norm = Normalizer::fit(&train);
    Prepared {
        kind: DataKind::Cifar10,
        train,
        test,
        norm,
    }
}

fn quick(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        lr: 0.1,
        augment: Augment::none(),
        ..TrainConfig::default()
    }
}

#[test]
fn learns_separable_synthetic_data() {
    let data = synthetic();
    let model = tiny_resnet([3, 8, 8], 8, 4);
    let mut net = Net::trainable(&model, Init::Random(0)).unwrap();
    let before = accuracy(&net, &data.test, &data.norm, 64).unwrap();
    let report = train(&mut net, None, &data, &quick(4), None, false).unwrap();
    let first = report.epochs.first().unwrap().train_loss;
    let last = report.epochs.last().unwrap().train_loss;
    assert!(last < first * 0.7, "loss {first} → {last}");
    assert!(
        report.test_acc > 90.0,
        "test accuracy {} (before {before})",
        report.test_acc
    );
}

#[test]
fn distillation_from_a_teacher_trains() {
    let data = synthetic();
    let model = tiny_resnet([3, 8, 8], 8, 4);
    let mut teacher = Net::trainable(&model, Init::Random(1)).unwrap();
    train(&mut teacher, None, &data, &quick(8), None, false).unwrap();
    let teacher = Net::frozen(&teacher.to_model().unwrap()).unwrap();
    for distill in [
        Distill::Hinton {
            temperature: 4.0,
            alpha: 0.9,
        },
        Distill::Dkd {
            temperature: 4.0,
            alpha: 1.0,
            beta: 2.0,
            warmup_epochs: 1.0,
        },
    ] {
        let mut student = Net::trainable(&model, Init::Random(2)).unwrap();
        let cfg = TrainConfig {
            distill,
            ..quick(8)
        };
        let r = train(&mut student, Some(&teacher), &data, &cfg, None, false).unwrap();
        assert!(r.test_acc > 80.0, "{distill:?}: {}", r.test_acc);
    }
    // a distillation config without a teacher is refused
    let mut s = Net::trainable(&model, Init::Random(2)).unwrap();
    let cfg = TrainConfig {
        distill: Distill::Hinton {
            temperature: 4.0,
            alpha: 0.9,
        },
        ..quick(1)
    };
    assert!(train(&mut s, None, &data, &cfg, None, false).is_err());
}

#[test]
fn export_import_gives_identical_outputs() {
    let data = synthetic();
    for model in [tiny_resnet([3, 8, 8], 8, 4), op_zoo([3, 8, 8], 4)] {
        let mut net = Net::trainable(&model, Init::Random(3)).unwrap();
        // a few epochs so that BatchNorm statistics and weights are far from their initial values
        train(&mut net, None, &data, &quick(2), None, false).unwrap();
        let exported = net.to_model().unwrap();
        let bytes = models::onnx::to_bytes(&exported).unwrap();
        let imported = models::onnx::from_bytes(&bytes).unwrap();
        let frozen = Net::frozen(&imported).unwrap();
        let mut buf = Vec::new();
        let idx: Vec<usize> = (0..16).collect();
        pi_train::data::make_batch(&data.test, &idx, &data.norm, None, &mut buf);
        let a = values(net.forward_eval(net.input_tensor(buf.clone(), 16, false))).unwrap();
        let b = values(frozen.forward_eval(frozen.input_tensor(buf.clone(), 16, false))).unwrap();
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-4,
            "{}: trainer vs imported export differ by {diff}",
            model.name
        );
        // and the engine's float reference agrees on the first image
        let img = &buf[..3 * 64];
        let r = models::float::infer(&imported, img).unwrap();
        let diff = r
            .iter()
            .zip(&a[..4])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-4,
            "{}: models::float differs by {diff}",
            model.name
        );
    }
}

#[test]
fn resume_continues_exactly() {
    let data = synthetic();
    let model = tiny_resnet([3, 8, 8], 4, 4);
    let dir = std::env::temp_dir().join(format!("pi-train-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = quick(2);

    let mut straight = Net::trainable(&model, Init::Random(5)).unwrap();
    train(&mut straight, None, &data, &cfg, None, false).unwrap();

    // run 1 epoch, "crash", then resume into a fresh net for the second
    let stop = Checkpointing {
        path: dir.join("run.ckpt"),
        resume: true,
        stop_after: Some(1),
    };
    let mut first = Net::trainable(&model, Init::Random(5)).unwrap();
    let r = train(&mut first, None, &data, &cfg, Some(&stop), false).unwrap();
    assert_eq!(r.epochs.len(), 1);
    let ck = Checkpointing {
        stop_after: None,
        ..stop
    };
    let mut resumed = Net::trainable(&model, Init::Random(99)).unwrap();
    let r = train(&mut resumed, None, &data, &cfg, Some(&ck), false).unwrap();
    assert_eq!(r.epochs.len(), 2);

    let a = straight.param_values().unwrap();
    let b = resumed.param_values().unwrap();
    let diff = a
        .iter()
        .flatten()
        .zip(b.iter().flatten())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-5, "resumed run differs by {diff}");

    // a checkpoint of another architecture is refused, naming the file
    let other = tiny_resnet([3, 8, 8], 8, 4);
    let mut o = Net::trainable(&other, Init::Random(0)).unwrap();
    let e = train(&mut o, None, &data, &cfg, Some(&ck), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("run.ckpt"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The data set `name` fetched by scripts/fetch-data.sh (held-out fraction 0.2), or `None` (the
/// test is skipped) where it was not fetched.
fn fetched(name: &str) -> Option<DataSpec> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name);
    if !path.exists() {
        // CI runs scripts/test.sh, which fetches the data: there a missing file is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "{} missing in CI",
            path.display()
        );
        eprintln!(
            "skipped: {} not found (run scripts/fetch-data.sh)",
            path.display()
        );
        return None;
    }
    Some(DataSpec {
        path,
        kind: None,
        test_fraction: 0.2,
        split_seed: 0,
    })
}

#[test]
fn learns_real_digits_when_fetched() {
    let Some(spec) = fetched("digits.csv.gz") else {
        return;
    };
    let model = tiny_resnet([1, 8, 8], 16, 10);
    let data = Prepared::load(&spec, [1, 8, 8], 10, None, None).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (1438, 359));
    let mut net = Net::trainable(&model, Init::Random(0)).unwrap();
    let cfg = TrainConfig {
        epochs: 4,
        batch_size: 32,
        lr: 0.1,
        augment: Augment::standard(DataKind::Digits, [1, 8, 8]),
        ..TrainConfig::default()
    };
    let r = train(&mut net, None, &data, &cfg, None, false).unwrap();
    assert!(
        r.epochs[3].train_loss < r.epochs[0].train_loss * 0.5,
        "{:?}",
        r.epochs
    );
    assert!(
        r.test_acc > 85.0,
        "digits test accuracy {} (chance 10%)",
        r.test_acc
    );
}

#[test]
fn loads_real_mnist5k_when_fetched() {
    let Some(spec) = fetched("mnist_5k.csv.gz") else {
        return;
    };
    let data = Prepared::load(&spec, [3, 32, 32], 10, None, None).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (4000, 1000));
    assert_eq!(data.train.shape, [3, 32, 32]);
    let mut per_class = [0usize; 10];
    data.test
        .labels
        .iter()
        .for_each(|&l| per_class[l as usize] += 1);
    assert!(
        per_class.iter().all(|&c| (60..=140).contains(&c)),
        "{per_class:?}"
    );
}

#[test]
fn eval_reports_float_fixed_and_private_accuracy() {
    let data = synthetic();
    let model = tiny_resnet([3, 8, 8], 8, 4);
    let mut net = Net::trainable(&model, Init::Random(0)).unwrap();
    let r = train(&mut net, None, &data, &quick(4), None, false).unwrap();
    let trained = net.to_model().unwrap();
    let mut fixed = pi_train::eval::fixed_predictor(&trained, Default::default()).unwrap();
    let reference = trained.clone();
    // stand-in for pi-client: the float reference, counting calls
    let mut calls = 0;
    let mut private = |x: &[f32]| {
        calls += 1;
        models::float::infer(&reference, x).map_err(|e| e.into())
    };
    let opts = pi_train::eval::EvalOptions {
        fixed_limit: None,
        private_limit: 10,
        reference_check: 4,
        batch: 64,
    };
    let rep = pi_train::eval::evaluate(
        &trained,
        &data.test,
        &data.norm,
        &opts,
        Some(fixed.as_mut()),
        Some(&mut private),
    )
    .unwrap();
    assert!(
        (rep.float_accuracy - r.test_acc).abs() < 1e-9,
        "{} vs {}",
        rep.float_accuracy,
        r.test_acc
    );
    assert!(rep.float_reference_max_diff < 1e-4);
    let fx = rep.fixed.unwrap();
    assert_eq!(fx.images, data.test.len());
    assert!(
        fx.agreement_with_float >= 95.0,
        "fixed point agrees on {}%",
        fx.agreement_with_float
    );
    let pv = rep.private.unwrap();
    assert_eq!((pv.images, pv.agreement_with_float), (10, 100.0));
    // the stand-in is the float model, so it agrees with fixed point wherever float does
    assert!(pv.agreement_with_fixed.unwrap() >= 90.0);
    assert!(pv.max_logit_diff_vs_fixed.unwrap() < 0.5);
    assert_eq!(calls, 10);
}
