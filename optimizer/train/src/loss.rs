//! Losses: cross-entropy, Hinton knowledge distillation and decoupled knowledge distillation.
//!
//! All take logits `[n, classes]` and one-hot targets `[n, classes]` and return a one-element
//! tensor (the batch mean). KL terms use "batchmean" reduction (sum over classes, mean over the
//! batch), the mathematically correct KL; PyTorch's `KLDivLoss()` default ("mean") would divide
//! by the number of classes as well.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Which distillation loss to train with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Distill {
    /// Plain cross-entropy, no teacher.
    None,
    /// Hinton et al. 2015: `(1−α)·CE + α·T²·KL(p_t^T ‖ p_s^T)`.
    Hinton {
        /// Temperature T (DeepReShape App. J: 4).
        temperature: f32,
        /// Weight α of the KL term (App. J: 0.9).
        alpha: f32,
    },
    /// Zhao et al. 2022: `CE + w(t)·(α·TCKD + β·NCKD)`, `w` ramping linearly from 0 to 1 over
    /// `warmup_epochs`.
    Dkd {
        /// Temperature T.
        temperature: f32,
        /// Weight of the target-class term (App. J: 1).
        alpha: f32,
        /// Weight of the non-target-class term (App. J sweeps 0.8, 1, 2, 6).
        beta: f32,
        /// Epochs over which the DKD term ramps up (App. J: 20).
        warmup_epochs: f32,
    },
}

impl Distill {
    /// Whether a teacher is needed.
    pub fn needs_teacher(&self) -> bool {
        !matches!(self, Distill::None)
    }
}

/// One-hot targets as a flat row-major `[n, classes]` vector.
pub fn one_hot(labels: &[u16], classes: usize) -> Vec<f32> {
    let mut v = vec![0.0; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        v[i * classes + l as usize] = 1.0;
    }
    v
}

/// Mean cross-entropy of `logits` against one-hot `targets`.
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (targets * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

/// `Σ_c p·(log p − log q)` averaged over the batch, from log-probabilities.
fn kl_from_logs(log_p: Tensor<2>, log_q: Tensor<2>) -> Tensor<1> {
    (log_p.clone().exp() * (log_p - log_q)).sum_dim(1).mean()
}

/// Hinton KD: `(1−α)·CE(s, y) + α·T²·KL(softmax(t/T) ‖ softmax(s/T))`.
pub fn kd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: Tensor<2>,
    temperature: f32,
    alpha: f32,
) -> Tensor<1> {
    let t = temperature as f64;
    let ce = cross_entropy(student.clone(), targets);
    let log_ps = log_softmax(student.div_scalar(t), 1);
    let log_pt = log_softmax(teacher.div_scalar(t), 1);
    let kl = kl_from_logs(log_pt, log_ps);
    ce.mul_scalar(1.0 - alpha as f64) + kl.mul_scalar(alpha as f64 * t * t)
}

/// The two DKD terms `(TCKD, NCKD)`, each already multiplied by T².
///
/// TCKD is the KL between the binary (target, all non-targets) distributions; NCKD the KL
/// between the distributions over non-target classes only (target logit masked by −1000 as
/// in the reference implementation).
pub fn dkd_terms(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: Tensor<2>,
    temperature: f32,
) -> (Tensor<1>, Tensor<1>) {
    let t = temperature as f64;
    let others = targets.clone().neg().add_scalar(1.0);
    let ps = softmax(student.clone().div_scalar(t), 1);
    let pt = softmax(teacher.clone().div_scalar(t), 1);
    let binary = |p: Tensor<2>| {
        let target = (p.clone() * targets.clone()).sum_dim(1);
        let rest = (p * others.clone()).sum_dim(1);
        Tensor::cat(vec![target, rest], 1).clamp_min(1e-12).log()
    };
    let tckd = kl_from_logs(binary(pt), binary(ps)).mul_scalar(t * t);
    let mask = targets.mul_scalar(1000.0);
    let log_ps2 = log_softmax(student.div_scalar(t) - mask.clone(), 1);
    let log_pt2 = log_softmax(teacher.div_scalar(t) - mask, 1);
    let nckd = kl_from_logs(log_pt2, log_ps2).mul_scalar(t * t);
    (tckd, nckd)
}

/// DKD: `CE + warm·(α·TCKD + β·NCKD)` with `warm ∈ [0, 1]` the warm-up factor.
pub fn dkd_loss(
    student: Tensor<2>,
    teacher: Tensor<2>,
    targets: Tensor<2>,
    temperature: f32,
    alpha: f32,
    beta: f32,
    warm: f32,
) -> Tensor<1> {
    let ce = cross_entropy(student.clone(), targets.clone());
    let (tckd, nckd) = dkd_terms(student, teacher, targets, temperature);
    ce + (tckd.mul_scalar(alpha as f64) + nckd.mul_scalar(beta as f64)).mul_scalar(warm as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn t2(v: &[f32], n: usize, c: usize) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [n, c]), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f32>() as f64
    }

    // Plain-f64 reference formulas, written out independently of the tensor code.
    fn softmax64(z: &[f64], t: f64) -> Vec<f64> {
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = z.iter().map(|v| ((v - m) / t).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }
    fn kl64(p: &[f64], q: &[f64]) -> f64 {
        p.iter()
            .zip(q)
            .filter(|(p, _)| **p > 0.0)
            .map(|(p, q)| p * (p / q).ln())
            .sum()
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_ln_c() {
        let ce = scalar(cross_entropy(
            t2(&[0.0; 8], 2, 4),
            t2(&one_hot(&[1, 3], 4), 2, 4),
        ));
        assert!((ce - 4f64.ln()).abs() < 1e-6, "{ce}");
    }

    #[test]
    fn kd_matches_hand_computed_value() {
        // One sample, 2 classes, T = 2: s = [0, 0] → p_s = [.5, .5];
        // t = [2 ln 3, 0] → t/T = [ln 3, 0] → p_t = [.75, .25]; label 0.
        // CE = ln 2; KL = .75 ln(1.5) + .25 ln(.5) = 0.130812035;
        // loss = 0.1·ln 2 + 0.9·4·0.130812035 = 0.540237...
        let s = t2(&[0.0, 0.0], 1, 2);
        let t = t2(&[2.0 * 3f32.ln(), 0.0], 1, 2);
        let y = t2(&one_hot(&[0], 2), 1, 2);
        let got = scalar(kd_loss(s, t, y, 2.0, 0.9));
        let kl = 0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
        let want = 0.1 * 2f64.ln() + 0.9 * 4.0 * kl;
        assert!((kl - 0.130812035).abs() < 1e-8);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn kd_matches_reference_on_a_batch() {
        let s = [
            1.0, -0.5, 2.0, 0.3, 0.0, 0.0, -1.0, 4.0, 0.5, 0.25, -2.0, 1.5,
        ];
        let t = [
            2.0, 0.5, 1.0, -0.3, 1.0, -1.0, 0.0, 3.0, 0.0, 2.0, -1.0, 1.0,
        ];
        let labels = [2u16, 3, 1];
        let (n, c, temp, a) = (3, 4, 4.0, 0.9);
        let mut want = 0.0;
        for i in 0..n {
            let si: Vec<f64> = s[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
            let ti: Vec<f64> = t[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
            let ce = -softmax64(&si, 1.0)[labels[i] as usize].ln();
            let kl = kl64(&softmax64(&ti, temp), &softmax64(&si, temp));
            want += ((1.0 - a) * ce + a * temp * temp * kl) / n as f64;
        }
        let got = scalar(kd_loss(
            t2(&s, n, c),
            t2(&t, n, c),
            t2(&one_hot(&labels, c), n, c),
            temp as f32,
            a as f32,
        ));
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn dkd_terms_match_hand_computed_values() {
        // One sample, 3 classes, T = 1, label 0.
        // s = [0, 0, 0] → p_s = [1/3, 1/3, 1/3]: binary (1/3, 2/3), non-target (1/2, 1/2).
        // t = [ln 2, ln 1, ln 3] → p_t = [2/6, 1/6, 3/6]: binary (1/3, 2/3), non-target (1/4, 3/4).
        // TCKD = 0 (same binary split); NCKD = .25 ln(.5) + .75 ln(1.5) = 0.130812035.
        let s = t2(&[0.0, 0.0, 0.0], 1, 3);
        let t = t2(&[2f32.ln(), 0.0, 3f32.ln()], 1, 3);
        let y = t2(&one_hot(&[0], 3), 1, 3);
        let (tckd, nckd) = dkd_terms(s.clone(), t.clone(), y.clone(), 1.0);
        assert!(scalar(tckd).abs() < 1e-6);
        assert!((scalar(nckd) - 0.130812035).abs() < 1e-5);
        // the full loss at warm-up 1/2 with α = 1, β = 6: ln 3 + 0.5·6·0.130812035
        let got = scalar(dkd_loss(s, t, y, 1.0, 1.0, 6.0, 0.5));
        assert!(
            (got - (3f64.ln() + 3.0 * 0.130812035)).abs() < 1e-5,
            "{got}"
        );
    }

    #[test]
    fn dkd_matches_reference_on_a_batch() {
        let s = [1.0, -0.5, 2.0, 0.3, 0.0, 0.7, -1.0, 4.0];
        let t = [2.0, 0.5, 1.0, -0.3, 1.0, -1.0, 0.0, 3.0];
        let labels = [1u16, 3];
        let (n, c, temp) = (2, 4, 4.0);
        let (mut tc, mut nc) = (0.0, 0.0);
        for i in 0..n {
            let si: Vec<f64> = s[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
            let ti: Vec<f64> = t[i * c..(i + 1) * c].iter().map(|&v| v as f64).collect();
            let (ps, pt) = (softmax64(&si, temp), softmax64(&ti, temp));
            let g = labels[i] as usize;
            tc += kl64(&[pt[g], 1.0 - pt[g]], &[ps[g], 1.0 - ps[g]]) * temp * temp / n as f64;
            let rest = |z: &[f64]| -> Vec<f64> {
                let zz: Vec<f64> = z
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != g)
                    .map(|(_, v)| *v)
                    .collect();
                softmax64(&zz, temp)
            };
            nc += kl64(&rest(&ti), &rest(&si)) * temp * temp / n as f64;
        }
        let (tckd, nckd) = dkd_terms(
            t2(&s, n, c),
            t2(&t, n, c),
            t2(&one_hot(&labels, c), n, c),
            temp as f32,
        );
        assert!((scalar(tckd) - tc).abs() < 1e-5, "{tc}");
        assert!((scalar(nckd) - nc).abs() < 1e-5, "{nc}");
    }
}
