//! ReLU equalization (DeepReShape Algorithm 1) as a general solver, and the capacity–criticality step.
//!
//! For a network of D stages with compute ratios φ_k and stagewise channel multiplication factors
//! λ_1..λ_(D−1), Stage k's ReLUs are proportional to `φ_k · Π_{j<k} λ_j / 4^(k−1)` (each stage after
//! the first halves height and width). Given a criticality order (most → least critical), ReLU
//! equalization asks for integer φ/λ within bounds such that the stagewise ReLU counts follow the
//! order strictly: `#ReLUs(C[1]) > #ReLUs(C[2]) > … > #ReLUs(C[D])`.
//!
//! Which solutions are returned: for each assignment of the other free variables, the smallest α
//! (the first width factor) that equalizes — the paper's rule ("we choose the smallest α needed") —
//! and of those only the Pareto-minimal ones (no other solution is ≤ in every variable). For
//! ResNet-18 (φ = 2,2,2,2) and S3 > S2 > S4 > S1 this gives exactly HRN-5x5x3x, 5x7x2x, 6x6x2x and
//! 7x5x2x; for S3 > S4 > S2 > S1 it gives HRN-5x6x3x and 5x9x2x (Appendix C). For ResNet-34
//! (φ = 3,4,6,3) the Pareto-minimal set has ten designs; the paper reports only the two with the
//! smallest α (HRN-4x6x3x, HRN-4x9x2x), which [`smallest_alpha`] selects. The paper's γ < 4 rule
//! (it follows from S3 > S4 when φ3 = φ4, and is the paper's FLOPs rule otherwise) is the default
//! cap on the last factor.
//!
//! The paper's inequalities leave the stem out of Stage 1 (HRN-5x5x3x has fewer Stage-4 ReLUs than
//! Stage 1 with the stem, 76.8K < 81.9K); [`Problem::count_stem`] turns the stricter reading on.

use serde::Serialize;

use crate::error::OptError;

/// An integer design variable with inclusive bounds (fixed when `min == max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bound {
    /// Smallest allowed value.
    pub min: u32,
    /// Largest allowed value.
    pub max: u32,
}

impl Bound {
    /// A fixed value.
    pub fn fixed(v: u32) -> Self {
        Bound { min: v, max: v }
    }

    /// A range `min..=max`.
    pub fn range(min: u32, max: u32) -> Self {
        Bound { min, max }
    }

    fn len(&self) -> u64 {
        u64::from(self.max - self.min) + 1
    }
}

/// A ReLU-equalization problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Bounds of the stage compute ratios φ_1..φ_D (fixed for width-only equalization).
    pub compute_ratios: Vec<Bound>,
    /// Bounds of the stagewise channel multiplication factors λ_1..λ_(D−1) (α, β, γ, ...).
    pub factors: Vec<Bound>,
    /// Criticality order, most → least critical, as 0-based stage indices (a permutation).
    pub order: Vec<usize>,
    /// Whether Stage 1 counts the stem's ReLU layer (half a block); the paper does not.
    pub count_stem: bool,
}

/// Enumeration limit: assignments of the variables other than α.
pub const MAX_ASSIGNMENTS: u64 = 20_000_000;

/// One ReLU-equalized design.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Design {
    /// Stage compute ratios φ_1..φ_D.
    pub compute_ratios: Vec<u32>,
    /// Stagewise channel multiplication factors λ_1..λ_(D−1).
    pub factors: Vec<u32>,
}

impl Design {
    /// `HRN-5x5x3x`, with the compute ratios appended in brackets when `with_depth`.
    pub fn name(&self, with_depth: bool) -> String {
        let f: Vec<usize> = self.factors.iter().map(|&x| x as usize).collect();
        let mut n = crate::arch::hrn_name(&f);
        if with_depth {
            let d: Vec<String> = self.compute_ratios.iter().map(|x| x.to_string()).collect();
            n.push_str(&format!("[{}]", d.join(",")));
        }
        n
    }

    /// Relative stagewise ReLUs `2·φ_k·Π_{j<k}λ_j·4^(D−k)` (+ the stem's `4^(D−1)` in Stage 1 when
    /// `count_stem`): exact integers proportional to the real counts.
    pub fn relative_relus(&self, count_stem: bool) -> Vec<u128> {
        relative(&self.compute_ratios, &self.factors, count_stem)
    }
}

fn relative(phi: &[u32], lambda: &[u32], count_stem: bool) -> Vec<u128> {
    let d = phi.len();
    let mut out = Vec::with_capacity(d);
    let mut width: u128 = 1;
    for k in 0..d {
        if k > 0 {
            width *= u128::from(lambda[k - 1]);
        }
        let spatial = 4u128.pow((d - 1 - k) as u32);
        let mut r = 2 * u128::from(phi[k]) * width * spatial;
        if k == 0 && count_stem {
            r += spatial;
        }
        out.push(r);
    }
    out
}

fn equalized(phi: &[u32], lambda: &[u32], order: &[usize], count_stem: bool) -> bool {
    let r = relative(phi, lambda, count_stem);
    order.windows(2).all(|w| r[w[0]] > r[w[1]])
}

impl Problem {
    /// A width-only problem: fixed compute ratios, every factor in `min..=max`, the last one capped
    /// at `last_max` (the paper's γ < 4 FLOPs rule; pass `max` for no cap).
    pub fn widths(
        compute_ratios: &[u32],
        order: &[usize],
        min: u32,
        max: u32,
        last_max: u32,
    ) -> Problem {
        let d = compute_ratios.len();
        let factors = (0..d.saturating_sub(1))
            .map(|i| {
                if i + 2 == d {
                    Bound::range(min, last_max.min(max))
                } else {
                    Bound::range(min, max)
                }
            })
            .collect();
        Problem {
            compute_ratios: compute_ratios.iter().map(|&p| Bound::fixed(p)).collect(),
            factors,
            order: order.to_vec(),
            count_stem: false,
        }
    }

    fn check(&self) -> Result<(), OptError> {
        let d = self.compute_ratios.len();
        if d < 2 {
            return Err(OptError::InvalidProblem("need at least two stages".into()));
        }
        if self.factors.len() != d - 1 {
            return Err(OptError::InvalidProblem(format!(
                "{d} stages need {} factors",
                d - 1
            )));
        }
        let mut seen = vec![false; d];
        for &s in &self.order {
            if s >= d || seen[s] {
                return Err(OptError::InvalidProblem(
                    "the order must list every stage exactly once".into(),
                ));
            }
            seen[s] = true;
        }
        if self.order.len() != d {
            return Err(OptError::InvalidProblem(
                "the order must list every stage exactly once".into(),
            ));
        }
        for b in self.compute_ratios.iter().chain(&self.factors) {
            if b.min == 0 || b.min > b.max || b.max > 64 {
                return Err(OptError::InvalidProblem(format!(
                    "bounds must satisfy 1 <= min <= max <= 64 (got {}..={})",
                    b.min, b.max
                )));
            }
        }
        let rest: u64 = self
            .compute_ratios
            .iter()
            .chain(&self.factors[1..])
            .try_fold(1u64, |acc, b| acc.checked_mul(b.len()))
            .unwrap_or(u64::MAX);
        if rest > MAX_ASSIGNMENTS {
            return Err(OptError::InvalidProblem(format!(
                "{rest} assignments to enumerate (limit {MAX_ASSIGNMENTS}); narrow the bounds"
            )));
        }
        Ok(())
    }

    /// All Pareto-minimal equalized designs, each with the smallest α for its other variables,
    /// sorted by factors then compute ratios.
    pub fn solve(&self) -> Result<Vec<Design>, OptError> {
        self.check()?;
        let d = self.compute_ratios.len();
        // Variables other than α: φ_1..φ_D, then λ_2..λ_(D−1).
        let rest: Vec<Bound> = self
            .compute_ratios
            .iter()
            .chain(&self.factors[1..])
            .copied()
            .collect();
        let mut cur: Vec<u32> = rest.iter().map(|b| b.min).collect();
        let alpha = self.factors[0];
        let mut found: Vec<Design> = Vec::new();
        let mut lambda = vec![0u32; d - 1];
        loop {
            let phi = &cur[..d];
            lambda[1..].copy_from_slice(&cur[d..]);
            for a in alpha.min..=alpha.max {
                lambda[0] = a;
                if equalized(phi, &lambda, &self.order, self.count_stem) {
                    found.push(Design {
                        compute_ratios: phi.to_vec(),
                        factors: lambda.clone(),
                    });
                    break;
                }
            }
            // Odometer increment.
            let mut i = 0;
            loop {
                if i == cur.len() {
                    return Ok(pareto_minimal(found));
                }
                if cur[i] < rest[i].max {
                    cur[i] += 1;
                    break;
                }
                cur[i] = rest[i].min;
                i += 1;
            }
        }
    }

    /// The compound inequality in the paper's notation, e.g.
    /// `φ3(αβ/16) > φ2(α/4) > φ4(αβγ/64) > φ1`.
    pub fn inequality(&self) -> String {
        self.order
            .iter()
            .map(|&k| stage_term(k))
            .collect::<Vec<_>>()
            .join(" > ")
    }
}

/// `φ3(αβ/16)` for 0-based stage 2.
fn stage_term(k: usize) -> String {
    const GREEK: [&str; 8] = ["α", "β", "γ", "δ", "ε", "ζ", "η", "θ"];
    if k == 0 {
        return "φ1".into();
    }
    let prod: String = (0..k)
        .map(|j| {
            GREEK
                .get(j)
                .map_or(format!("λ{}", j + 1), |g| g.to_string())
        })
        .collect();
    format!("φ{}({}/{})", k + 1, prod, 4u64.pow(k as u32))
}

/// Keeps the designs no other design is ≤ in every variable, sorted by (factors, compute ratios).
fn pareto_minimal(mut found: Vec<Design>) -> Vec<Design> {
    let key =
        |d: &Design| -> Vec<u32> { d.compute_ratios.iter().chain(&d.factors).copied().collect() };
    found.sort_by_key(|d| key(d).iter().map(|&x| u64::from(x)).sum::<u64>());
    let mut kept: Vec<Vec<u32>> = Vec::new();
    let mut out = Vec::new();
    for d in found {
        let k = key(&d);
        // A dominating design has a strictly smaller sum, so it was seen (and kept, or dominated by a kept one).
        if !kept.iter().any(|p| p.iter().zip(&k).all(|(a, b)| a <= b)) {
            kept.push(k);
            out.push(d);
        }
    }
    out.sort_by(|a, b| {
        a.factors
            .cmp(&b.factors)
            .then(a.compute_ratios.cmp(&b.compute_ratios))
    });
    out
}

/// The designs whose α (first factor) is the smallest among `designs` — the paper's pick for the
/// ResNet-34 study (HRN-4x6x3x, HRN-4x9x2x), where the Pareto-minimal set is larger.
pub fn smallest_alpha(designs: &[Design]) -> Vec<Design> {
    let min = designs
        .iter()
        .filter_map(|d| d.factors.first().copied())
        .min();
    designs
        .iter()
        .filter(|d| d.factors.first().copied() == min)
        .cloned()
        .collect()
}

/// The capacity–criticality step: the same designs with α set to `alpha` (2 in the paper), which
/// raises the share of the least-critical Stage 1 (HRN-5x5x3x → HRN-2x5x3x). Duplicates removed.
pub fn capacity_criticality(designs: &[Design], alpha: u32) -> Vec<Design> {
    let mut out: Vec<Design> = Vec::new();
    for d in designs {
        let mut v = d.clone();
        if let Some(a) = v.factors.first_mut() {
            *a = alpha;
        }
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Parses a criticality order such as `S3,S2,S4,S1` (most → least critical) into 0-based indices.
pub fn parse_order(order: &str, stages: usize) -> Result<Vec<usize>, OptError> {
    let mut out = Vec::new();
    for part in order
        .split([',', '>', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        out.push(crate::steps::parse_stage(part, stages)?);
    }
    let mut sorted = out.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if out.len() != stages || sorted.len() != stages {
        return Err(OptError::InvalidProblem(format!(
            "the criticality order '{order}' must name each of the {stages} stages exactly once"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ds: &[Design]) -> Vec<String> {
        ds.iter().map(|d| d.name(false)).collect()
    }

    #[test]
    fn resnet18_prevalent_order() {
        let order = parse_order("S3,S2,S4,S1", 4).unwrap();
        let p = Problem::widths(&[2, 2, 2, 2], &order, 2, 16, 16);
        assert_eq!(
            names(&p.solve().unwrap()),
            ["HRN-5x5x3x", "HRN-5x7x2x", "HRN-6x6x2x", "HRN-7x5x2x"]
        );
        assert_eq!(p.inequality(), "φ3(αβ/16) > φ2(α/4) > φ4(αβγ/64) > φ1");
    }

    #[test]
    fn resnet18_altered_order() {
        let order = parse_order("S3,S4,S2,S1", 4).unwrap();
        let p = Problem::widths(&[2, 2, 2, 2], &order, 2, 16, 3);
        assert_eq!(names(&p.solve().unwrap()), ["HRN-5x6x3x", "HRN-5x9x2x"]);
    }

    #[test]
    fn resnet34_pareto_set_and_paper_pick() {
        let order = parse_order("S3,S2,S4,S1", 4).unwrap();
        let p = Problem::widths(&[3, 4, 6, 3], &order, 2, 16, 3);
        let all = p.solve().unwrap();
        assert_eq!(
            names(&all),
            [
                "HRN-4x6x3x",
                "HRN-4x9x2x",
                "HRN-5x5x3x",
                "HRN-5x7x2x",
                "HRN-6x4x3x",
                "HRN-6x6x2x",
                "HRN-7x5x2x",
                "HRN-8x3x3x",
                "HRN-9x4x2x",
                "HRN-11x3x2x"
            ]
        );
        // The paper reports only the designs with the smallest α (§5, ResNet34 generality study).
        assert_eq!(names(&smallest_alpha(&all)), ["HRN-4x6x3x", "HRN-4x9x2x"]);
        // For ResNet-18 the paper keeps all four (α = 5, 5, 6, 7): smallest-α alone would drop two.
        let r18 = Problem::widths(&[2, 2, 2, 2], &order, 2, 16, 3)
            .solve()
            .unwrap();
        assert_eq!(names(&smallest_alpha(&r18)), ["HRN-5x5x3x", "HRN-5x7x2x"]);
    }

    #[test]
    fn capacity_criticality_sets_alpha_two() {
        let order = parse_order("S3,S2,S4,S1", 4).unwrap();
        let ds = Problem::widths(&[2, 2, 2, 2], &order, 2, 16, 3)
            .solve()
            .unwrap();
        let cc = capacity_criticality(&ds, 2);
        assert_eq!(
            names(&cc),
            ["HRN-2x5x3x", "HRN-2x7x2x", "HRN-2x6x2x", "HRN-2x5x2x"]
        );
    }

    #[test]
    fn depth_only_equalization() {
        let order = parse_order("S3,S2,S4,S1", 4).unwrap();
        let p = Problem {
            compute_ratios: vec![Bound::range(1, 12); 4],
            factors: vec![Bound::fixed(2); 3],
            order,
            count_stem: false,
        };
        let ds = p.solve().unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].compute_ratios, vec![1, 3, 7, 9]);
    }

    #[test]
    fn rejects_bad_problems() {
        assert!(parse_order("S3,S2,S4", 4).is_err());
        assert!(parse_order("S3,S2,S2,S1", 4).is_err());
        let p = Problem::widths(&[2, 2, 2, 2], &[2, 1, 3, 0], 0, 16, 3);
        assert!(p.solve().is_err());
    }
}
