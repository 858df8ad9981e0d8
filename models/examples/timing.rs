//! Times float and fixed-point reference inference on CIFAR ResNet-18.
use models::{fixed, float, zoo};
use std::time::Instant;
fn main() {
    let m = zoo::resnet18_cifar(100);
    let x: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
        .collect();
    let t = Instant::now();
    let f = float::infer(&m, &x).unwrap();
    println!("float ResNet-18: {:?}", t.elapsed());
    let p = fixed::plan(&m, &fixed::FixedConfig::default()).unwrap();
    let t = Instant::now();
    let q = fixed::infer(&m, &p, &x).unwrap();
    println!("fixed ResNet-18: {:?}", t.elapsed());
    let err = f
        .iter()
        .zip(&q)
        .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    let scale = f.iter().fold(0f32, |a, v| a.max(v.abs()));
    println!(
        "max abs err {err}, max |logit| {scale}, top1 {:?} {:?}",
        float::argmax(&f),
        float::argmax(&q)
    );
}
