//! Measures fixed-point vs float error on random ResNet-style models (prints statistics).
use models::{fixed, float, zoo};
fn main() {
    let cfg = fixed::FixedConfig::default();
    let mut worst_rel = 0f32;
    let mut worst_abs = 0f32;
    let mut agree = 0;
    let mut total = 0;
    let mut margin_fail = 0;
    for seed in 0..40u64 {
        let m = zoo::random_resnet(seed, [3, 16, 16], 10);
        let p = fixed::plan(&m, &cfg).unwrap();
        for j in 0..5u32 {
            let x: Vec<f32> = (0..768u32)
                .map(|i| {
                    ((i.wrapping_mul(2654435761)
                        .wrapping_add(j * 7919 + seed as u32 * 104729))
                        >> 8) as f32
                        % 2001.0
                        / 1000.0
                        - 1.0
                })
                .collect();
            let f = float::infer(&m, &x).unwrap();
            let q = fixed::infer(&m, &p, &x).unwrap();
            let scale = f.iter().fold(0f32, |a, v| a.max(v.abs()));
            let err = f
                .iter()
                .zip(&q)
                .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            worst_abs = worst_abs.max(err);
            worst_rel = worst_rel.max(err / scale.max(1e-6));
            total += 1;
            if float::argmax(&f) == float::argmax(&q) {
                agree += 1
            } else {
                let mut s = f.clone();
                s.sort_by(|a, b| b.partial_cmp(a).unwrap());
                println!("seed {seed} input {j}: top-1 differs, float margin {}, err {err}, scale {scale}", s[0] - s[1]);
                margin_fail += 1;
            }
        }
    }
    println!("worst abs {worst_abs}, worst rel {worst_rel}, top1 agree {agree}/{total} ({margin_fail} differ)");
}
