//! CryptoNAS (Ghodsi et al. 2020): ReLU budgets, ReLU balancing, ReLU pruning and ReLU shuffling.
//!
//! * **ReLU budget**: the number of ReLUs a network may have (a proxy for PI latency).
//! * **ReLU balancing**: channel scaling that keeps the ReLUs per layer constant — when a stage halves
//!   height and width, it multiplies the channels by 4 (α = β = γ = 4 for stride-2 stages), instead
//!   of the FLOP-balancing ×2.
//! * **ReLU pruning**: no ReLU on skip-connection "reshape" paths (the 1×1 projection shortcuts).
//! * **ReLU shuffling**: skips are based on post-ReLU activations, so identity skip paths need no
//!   ReLU of their own.
//! * **Widest fit**: given a budget, the widest balanced network (largest base width m) whose ReLUs,
//!   after pruning and shuffling, fit.

use serde::Serialize;

use crate::arch::{conv_out, Arch};
use crate::error::OptError;

/// Rescales the stages of `arch` so that every ReLU layer has as many ReLUs as a Stage-1 layer
/// (`c_k·h_k·w_k = c_1·h_1·w_1`; channels rounded to the nearest integer). The stem keeps c_1.
pub fn balance(arch: &Arch) -> Result<Arch, OptError> {
    arch.validate()?;
    let mut a = arch.clone();
    let first = a.stages[0].channels;
    a.stem_channels = first;
    let (mut h, mut w) = (a.input[1], a.input[2]);
    let mut base_area = 0usize;
    for (i, s) in a.stages.iter_mut().enumerate() {
        h = conv_out(h, 3, s.stride, 1);
        w = conv_out(w, 3, s.stride, 1);
        if i == 0 {
            base_area = h * w;
        }
        s.channels = (((first * base_area) as f64 / (h * w) as f64).round() as usize).max(1);
    }
    let factors: Vec<String> = a
        .stages
        .windows(2)
        .map(|p| format!("{}", p[1].channels as f64 / p[0].channels as f64))
        .collect();
    a.name = format!("CryptoNAS-{}x", factors.join("x"));
    a.validate()?;
    Ok(a)
}

/// The unoptimized baseline: a ReLU on every skip path (projection and identity).
pub fn with_skip_relus(arch: &Arch) -> Arch {
    let mut a = arch.clone();
    for s in &mut a.stages {
        s.projection_skip_relu = true;
        s.identity_skip_relu = true;
    }
    a
}

/// ReLU pruning: removes the ReLUs on reshape (projection-shortcut) paths.
pub fn prune(arch: &Arch) -> Arch {
    let mut a = arch.clone();
    for s in &mut a.stages {
        s.projection_skip_relu = false;
    }
    a.steps.push("prune skip ReLUs".into());
    a
}

/// ReLU shuffling: skips forward post-ReLU activations, so identity skip paths lose their ReLUs.
pub fn shuffle(arch: &Arch) -> Arch {
    let mut a = arch.clone();
    for s in &mut a.stages {
        s.identity_skip_relu = false;
    }
    a.steps.push("shuffle skip ReLUs".into());
    a
}

/// A ReLU-balanced ResNet with base width `m` (stem and Stage 1), pruned and shuffled.
pub fn balanced(
    m: usize,
    blocks: &[usize],
    input: [usize; 3],
    classes: usize,
) -> Result<Arch, OptError> {
    let widths = vec![m; blocks.len()];
    balance(&Arch::resnet(
        "CryptoNAS",
        input,
        classes,
        m,
        &widths,
        blocks,
    )?)
}

/// The result of fitting a balanced network into a ReLU budget.
#[derive(Clone, Debug, Serialize)]
pub struct BudgetFit {
    /// The ReLU budget.
    pub budget: u64,
    /// The widest fitting network (pruned and shuffled).
    pub arch: Arch,
    /// Its ReLUs.
    pub relus: u64,
    /// ReLUs of the same network before pruning and shuffling (skip paths with ReLUs).
    pub relus_unpruned: u64,
    /// ReLUs after pruning only (identity skips still with ReLUs).
    pub relus_pruned: u64,
}

/// The widest ReLU-balanced network with the given depth whose ReLUs fit `budget`.
pub fn widest_within_budget(
    budget: u64,
    blocks: &[usize],
    input: [usize; 3],
    classes: usize,
) -> Result<BudgetFit, OptError> {
    let relus = |m: usize| -> Result<u64, OptError> {
        Ok(balanced(m, blocks, input, classes)?.count()?.relus())
    };
    if relus(1)? > budget {
        return Err(OptError::Budget(format!(
            "even m = 1 needs {} ReLUs > budget {budget}",
            relus(1)?
        )));
    }
    // ReLUs grow with m: exponential then binary search for the largest fitting m.
    let (mut lo, mut hi) = (1usize, 2usize);
    while relus(hi)? <= budget {
        lo = hi;
        hi *= 2;
        if hi > 1 << 24 {
            return Err(OptError::Budget("budget too large to search".into()));
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if relus(mid)? <= budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let arch = balanced(lo, blocks, input, classes)?;
    let unpruned = with_skip_relus(&arch);
    let pruned = prune(&unpruned);
    Ok(BudgetFit {
        budget,
        relus: arch.count()?.relus(),
        relus_unpruned: unpruned.count()?.relus(),
        relus_pruned: pruned.count()?.relus(),
        arch,
    })
}

/// A ReLU budget from a latency target: `⌊seconds / seconds_per_relu⌋`.
pub fn budget_from_latency(seconds: f64, seconds_per_relu: f64) -> Result<u64, OptError> {
    if !(seconds > 0.0 && seconds_per_relu > 0.0) {
        return Err(OptError::Budget(
            "latency and per-ReLU cost must be positive".into(),
        ));
    }
    // The epsilon keeps exact quotients (1 s / 25 µs) from flooring one below.
    Ok((seconds / seconds_per_relu * (1.0 + 1e-12)).floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_widths_are_4x_per_stage() {
        let a = balanced(16, &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        assert_eq!(a.widths(), vec![16, 64, 256, 1024]);
        assert_eq!(a.name, "CryptoNAS-4x4x4x");
        // Table 10: R18(m=16)-4x4x4x has 81.92K ReLUs in S1 (with stem) and 65.54K in S2..S4.
        assert_eq!(
            a.count().unwrap().paper_stage_relus(),
            vec![81_920, 65_536, 65_536, 65_536]
        );
    }

    #[test]
    fn every_relu_layer_has_the_same_size() {
        let a = balanced(8, &[1, 1, 1], [3, 32, 32], 10).unwrap();
        let c = a.count().unwrap();
        assert_eq!(c.stem.relus * 2, c.stages[0].relus);
        assert!(c.stages.iter().all(|s| s.relus == c.stages[0].relus));
    }

    #[test]
    fn widest_fit_respects_budget() {
        let fit = widest_within_budget(100_000, &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        // 17 ReLU layers of m·1024: m = 5 → 87,040; m = 6 → 104,448.
        assert_eq!(fit.arch.stem_channels, 5);
        assert_eq!(fit.relus, 87_040);
        assert!(fit.relus_unpruned > fit.relus_pruned && fit.relus_pruned > fit.relus);
        assert!(widest_within_budget(100, &[2, 2, 2, 2], [3, 32, 32], 100).is_err());
    }

    #[test]
    fn pruning_and_shuffling_remove_skip_relus() {
        let a = balanced(4, &[2, 2], [3, 8, 8], 10).unwrap();
        let base = a.count().unwrap().relus();
        let naive = with_skip_relus(&a);
        // Stage 1: two identity skips of 4·64; stage 2: one projection (input 4·64), one identity (16·16).
        assert_eq!(naive.count().unwrap().relus(), base + 2 * 256 + 256 + 256);
        assert_eq!(prune(&naive).count().unwrap().relus(), base + 2 * 256 + 256);
        assert_eq!(shuffle(&prune(&naive)).count().unwrap().relus(), base);
    }

    #[test]
    fn latency_budget() {
        assert_eq!(budget_from_latency(1.0, 25e-6).unwrap(), 40_000);
        assert!(budget_from_latency(0.0, 25e-6).is_err());
    }
}
