//! Seeded random weight initialisation (He-normal) for generated networks.

use rand::Rng;

use crate::graph::{Conv2d, Linear};

/// One standard normal sample (Box–Muller on two uniforms).
pub fn standard_normal(rng: &mut impl Rng) -> f32 {
    // 1 - u lies in (0, 1], so the logarithm is finite.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `n` samples of N(0, std²).
pub fn normal_vec(n: usize, std: f32, rng: &mut impl Rng) -> Vec<f32> {
    (0..n).map(|_| standard_normal(rng) * std).collect()
}

impl Conv2d {
    /// A square `k×k` convolution with He-normal weights (std = √(2 / fan_in), fan_in = c_in/groups·k²)
    /// and zero bias.
    pub fn he_normal(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        rng: &mut impl Rng,
    ) -> Conv2d {
        let groups = groups.max(1);
        let fan_in = (c_in / groups * k * k).max(1);
        let std = (2.0 / fan_in as f64).sqrt() as f32;
        Conv2d {
            c_in,
            c_out,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [padding, padding],
            groups,
            weight: normal_vec(c_out * (c_in / groups) * k * k, std, rng),
            bias: vec![0.0; c_out],
        }
    }

    /// Multiplies every weight and bias by `factor` (e.g. to damp a residual branch).
    pub fn scaled(mut self, factor: f32) -> Conv2d {
        self.weight
            .iter_mut()
            .chain(self.bias.iter_mut())
            .for_each(|v| *v *= factor);
        self
    }

    /// Replaces the bias by N(0, std²) samples (a stand-in for a folded BatchNorm shift).
    pub fn with_random_bias(mut self, std: f32, rng: &mut impl Rng) -> Conv2d {
        self.bias = normal_vec(self.c_out, std, rng);
        self
    }
}

impl Linear {
    /// A fully connected layer with He-normal weights (std = √(2 / in_features)) and zero bias.
    pub fn he_normal(in_features: usize, out_features: usize, rng: &mut impl Rng) -> Linear {
        let std = (2.0 / in_features.max(1) as f64).sqrt() as f32;
        Linear {
            in_features,
            out_features,
            weight: normal_vec(in_features * out_features, std, rng),
            bias: vec![0.0; out_features],
        }
    }

    /// Replaces the bias by N(0, std²) samples.
    pub fn with_random_bias(mut self, std: f32, rng: &mut impl Rng) -> Linear {
        self.bias = normal_vec(self.out_features, std, rng);
        self
    }
}
