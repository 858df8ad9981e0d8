//! ReLU and MAC counts of known networks against the published figures.

use models::count::count;
use models::{zoo, Stage};

#[test]
fn resnet18_cifar100_counts() {
    let c = count(&zoo::resnet18_cifar(100)).unwrap();
    assert_eq!(c.relus, 557_056);
    // DeepReShape Table 16: 559M FLOPs (= MACs); within 1 %.
    let rel = (c.macs as f64 - 559e6).abs() / 559e6;
    assert!(rel < 0.01, "ResNet-18 MACs {} off by {rel}", c.macs);
    assert_eq!(c.stage(Stage::Stem).unwrap().relus, 65_536);
    assert_eq!(c.stage(Stage::Stage(1)).unwrap().relus, 262_144);
    assert_eq!(c.stage(Stage::Stage(2)).unwrap().relus, 131_072);
    assert_eq!(c.stage(Stage::Stage(3)).unwrap().relus, 65_536);
    assert_eq!(c.stage(Stage::Stage(4)).unwrap().relus, 32_768);
    assert_eq!(c.stage(Stage::Head).unwrap().relus, 0);
    assert_eq!(c.stage(Stage::Head).unwrap().macs, 512 * 100);
    let stages: Vec<Stage> = c.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Stem,
            Stage::Stage(1),
            Stage::Stage(2),
            Stage::Stage(3),
            Stage::Stage(4),
            Stage::Head
        ]
    );
    let total: f64 = c.relu_distribution().iter().map(|(_, f)| f).sum();
    assert!((total - 1.0).abs() < 1e-12);
    println!("ResNet-18 CIFAR-100: {} ReLUs, {} MACs", c.relus, c.macs);
}

#[test]
fn hrn_5x5x3x_m16_counts() {
    let c = count(&zoo::hrn_5x5x3x(16, 100)).unwrap();
    assert_eq!(c.relus, 343_040);
    let rel = (c.macs as f64 - 1055e6).abs() / 1055e6;
    assert!(rel < 0.01, "HRN-5x5x3x MACs {} off by {rel}", c.macs);
    // DeepReShape Table 17 stagewise ReLUs: 81.92K, 81.92K, 102.40K, 76.80K (+16,384 in the stem).
    let per: Vec<u64> = (1..=4)
        .map(|s| c.stage(Stage::Stage(s)).unwrap().relus)
        .collect();
    assert_eq!(per, [65_536, 81_920, 102_400, 76_800]);
    assert_eq!(c.stage(Stage::Stem).unwrap().relus, 16_384);
    println!(
        "HRN-5x5x3x m=16 CIFAR-100: {} ReLUs, {} MACs",
        c.relus, c.macs
    );
}

#[test]
fn subset_relu_and_identity_counts() {
    use models::builder::ModelBuilder;
    use models::{Conv2d, Linear};
    let mut rng = <models::rand_chacha::ChaCha8Rng as models::rand::SeedableRng>::seed_from_u64(1);
    let mut b = ModelBuilder::new("t", [3, 8, 8]);
    let x = b.conv(
        0,
        Conv2d::he_normal(3, 4, 3, 1, 1, 1, &mut rng),
        Stage::Stem,
    );
    let x = b.relu_channels(x, vec![3, 1], Stage::Stem);
    let x = b.conv(
        x,
        Conv2d::he_normal(4, 4, 3, 2, 1, 2, &mut rng),
        Stage::Stage(1),
    );
    let x = b.identity(x, Stage::Stage(1));
    let x = b.global_avg_pool(x, Stage::Head);
    let x = b.flatten(x, Stage::Head);
    let y = b.linear(x, Linear::he_normal(4, 10, &mut rng), Stage::Head);
    let m = b.finish(y).unwrap();
    let c = count(&m).unwrap();
    assert_eq!(c.relus, 2 * 64);
    // stem conv 4·64·27, grouped conv 4·16·(2·9), linear 40.
    assert_eq!(c.macs, 4 * 64 * 27 + 4 * 16 * 18 + 40);
    assert_eq!(c.stage(Stage::Stage(1)).unwrap().relus, 0);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["relus"], 128);
}
