//! SGD with momentum and L2 weight decay, exactly PyTorch's `torch.optim.SGD` with
//! `dampening = 0` and `nesterov = False` (burn's built-in momentum dampens by 0.1), and the
//! cosine learning-rate schedule.

use crate::error::{Error, Result};
use crate::net::values;
use burn::tensor::{Gradients, Tensor, TensorData};

/// Momentum SGD state: one velocity buffer per parameter.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Momentum factor μ.
    pub momentum: f64,
    /// L2 penalty λ added to every gradient as `λ·w`.
    pub weight_decay: f64,
    velocity: Vec<Option<Tensor<1>>>,
}

impl Sgd {
    /// Fresh state for `n_params` parameters.
    pub fn new(n_params: usize, momentum: f64, weight_decay: f64) -> Sgd {
        Sgd {
            momentum,
            weight_decay,
            velocity: vec![None; n_params],
        }
    }

    /// One update: `g ← ∇ + λw; v ← μv + g (v ← g at the first step); w ← w − lr·v`.
    /// Parameters without a gradient are left alone.
    pub fn step(&mut self, params: &mut [Tensor<1>], grads: &Gradients, lr: f64) {
        for (p, v) in params.iter_mut().zip(self.velocity.iter_mut()) {
            let Some(g) = p.grad(grads) else { continue };
            let w = p.clone().inner();
            let g = if self.weight_decay != 0.0 {
                g + w.clone().mul_scalar(self.weight_decay)
            } else {
                g
            };
            let vel = match v.take() {
                Some(old) if self.momentum != 0.0 => old.mul_scalar(self.momentum) + g,
                _ => g,
            };
            let updated = w - vel.clone().mul_scalar(lr);
            *v = Some(vel);
            *p = updated.autodiff().require_grad();
        }
    }

    /// Velocity buffers as values (`None` before a parameter's first step), for checkpoints.
    pub fn velocity_values(&self) -> Result<Vec<Option<Vec<f32>>>> {
        self.velocity
            .iter()
            .map(|v| v.clone().map(values).transpose())
            .collect()
    }

    /// Restore velocity buffers saved by [`Sgd::velocity_values`].
    pub fn set_velocity_values(
        &mut self,
        vals: Vec<Option<Vec<f32>>>,
        device: &burn::tensor::Device,
    ) -> Result<()> {
        if vals.len() != self.velocity.len() {
            return Err(Error::Model(format!(
                "{} velocity buffers for {} parameters",
                vals.len(),
                self.velocity.len()
            )));
        }
        self.velocity = vals
            .into_iter()
            .map(|v| {
                v.map(|v| {
                    let n = v.len();
                    Tensor::from_data(TensorData::new(v, [n]), device)
                })
            })
            .collect();
        Ok(())
    }
}

/// Cosine annealing from `base` to `min` over `total` steps (PyTorch `CosineAnnealingLR`).
pub fn cosine_lr(base: f64, min: f64, step: usize, total: usize) -> f64 {
    if total == 0 {
        return base;
    }
    let t = (step.min(total)) as f64 / total as f64;
    min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn cosine_endpoints_and_midpoint() {
        assert!((cosine_lr(0.1, 0.0, 0, 100) - 0.1).abs() < 1e-12);
        assert!((cosine_lr(0.1, 0.0, 50, 100) - 0.05).abs() < 1e-12);
        assert!(cosine_lr(0.1, 0.0, 100, 100).abs() < 1e-12);
        assert!((cosine_lr(0.1, 0.01, 100, 100) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn matches_pytorch_sgd_recurrence() {
        // minimise f(w) = w²/2 (gradient w) from w = 1 with lr .1, μ .9, λ .5:
        // g1 = 1 + .5 = 1.5, v1 = 1.5, w1 = 1 − .15 = .85
        // g2 = .85·1.5 = 1.275, v2 = .9·1.5 + 1.275 = 2.625, w2 = .85 − .2625 = .5875
        let dev = Device::flex().autodiff();
        let mut p =
            vec![Tensor::<1>::from_data(TensorData::new(vec![1.0f32], [1]), &dev).require_grad()];
        let mut sgd = Sgd::new(1, 0.9, 0.5);
        let mut seen = Vec::new();
        for _ in 0..2 {
            let loss = (p[0].clone() * p[0].clone()).sum().mul_scalar(0.5);
            let grads = loss.backward();
            sgd.step(&mut p, &grads, 0.1);
            seen.push(values(p[0].clone().inner()).unwrap()[0]);
        }
        assert!((seen[0] - 0.85).abs() < 1e-6, "{seen:?}");
        assert!((seen[1] - 0.5875).abs() < 1e-6, "{seen:?}");
        let v = sgd.velocity_values().unwrap();
        assert!((v[0].as_ref().unwrap()[0] - 2.625).abs() < 1e-5);
    }
}
