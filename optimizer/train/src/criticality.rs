//! Stagewise ReLU criticality `C_k` (Jha et al. 2021, DeepReDuce; used in DeepReShape Tables
//! 10–11): train one variant of the network per stage that keeps only that stage's ReLUs (the
//! stem counts as Stage 1, as in the tables' ReLU counts), then
//!
//! `C_k = (A_k − min_j A_j) / (R_k / 1000)^0.07`
//!
//! with `A_k` the variant's test accuracy in percent (with KD when a teacher is given) and `R_k`
//! the stage's ReLU count. This form reproduces the published `C_k` values of Tables 10 and 11
//! from their accuracy and ReLU columns to ±0.01 (see the tests); the least critical stage
//! scores 0 and higher is more critical.

use crate::data::Prepared;
use crate::error::{Error, Result};
use crate::net::{Init, Net};
use crate::trainer::{train, TrainConfig, TrainReport};
use models::{Model, Op, Stage};
use serde::Serialize;

/// Exponent of the ReLU-count penalty in `C_k`.
pub const RELU_EXPONENT: f64 = 0.07;

/// The outcome for one stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageCriticality {
    /// Stage number, from 1.
    pub stage: usize,
    /// ReLUs the stage-only variant keeps.
    pub relus: u64,
    /// Test accuracy of the stage-only variant, percent.
    pub accuracy: f64,
    /// `C_k`.
    pub criticality: f64,
}

/// All stages and the order `pi-opt design --order` consumes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriticalityReport {
    /// One entry per stage, in stage order.
    pub stages: Vec<StageCriticality>,
    /// Stages from most to least critical, e.g. `S3,S2,S4,S1`.
    pub order: String,
}

/// Residual stages that own ReLU nodes (or any node), in order.
pub fn stages_of(model: &Model) -> Vec<usize> {
    let mut s: Vec<usize> = model
        .nodes
        .iter()
        .filter_map(|n| match n.stage {
            Stage::Stage(k) => Some(k),
            _ => None,
        })
        .collect();
    s.sort_unstable();
    s.dedup();
    s
}

/// Whether a node's ReLU belongs to stage `k` for criticality (the stem belongs to Stage 1).
fn in_stage(stage: Stage, k: usize, first: usize) -> bool {
    match stage {
        Stage::Stage(s) => s == k,
        Stage::Stem => k == first,
        Stage::Head => false,
    }
}

/// The network with every ReLU outside stage `k` replaced by Identity.
pub fn stage_only(model: &Model, k: usize) -> Model {
    let first = stages_of(model).first().copied().unwrap_or(1);
    let mut m = model.clone();
    for n in &mut m.nodes {
        if matches!(n.op, Op::Relu(_)) && !in_stage(n.stage, k, first) {
            n.op = Op::Identity;
        }
    }
    m.name = format!("{}-S{k}-only", model.name);
    m
}

/// `C_k` for each `(relus, accuracy)` pair.
pub fn criticality(stages: &[(u64, f64)]) -> Vec<f64> {
    let min = stages.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    stages
        .iter()
        .map(|&(r, a)| {
            if r == 0 {
                0.0
            } else {
                (a - min) / (r as f64 / 1000.0).powf(RELU_EXPONENT)
            }
        })
        .collect()
}

/// Stages ordered from most to least critical, written `S3,S2,S4,S1`.
pub fn order_string(stages: &[StageCriticality]) -> String {
    let mut s: Vec<&StageCriticality> = stages.iter().collect();
    s.sort_by(|a, b| {
        b.criticality
            .total_cmp(&a.criticality)
            .then(a.stage.cmp(&b.stage))
    });
    s.iter()
        .map(|s| format!("S{}", s.stage))
        .collect::<Vec<_>>()
        .join(",")
}

/// Train every stage-only variant of `base` and compute the criticality of its stages.
/// `on_variant` sees each trained variant (e.g. to export it).
pub fn run(
    base: &Model,
    data: &Prepared,
    cfg: &TrainConfig,
    teacher: Option<&Net>,
    show_progress: bool,
    mut on_variant: impl FnMut(usize, &Net, &TrainReport) -> Result<()>,
) -> Result<CriticalityReport> {
    let stages = stages_of(base);
    if stages.len() < 2 {
        return Err(Error::Model(format!(
            "criticality needs at least two residual stages, '{}' has {}",
            base.name,
            stages.len()
        )));
    }
    let mut measured = Vec::new();
    for &k in &stages {
        let variant = stage_only(base, k);
        let relus = models::count::count(&variant)?.relus;
        eprintln!("criticality: training the Stage {k}-only variant ({relus} ReLUs)");
        let mut net = Net::trainable(&variant, Init::Random(cfg.seed))?;
        let report = train(&mut net, teacher, data, cfg, None, show_progress)?;
        on_variant(k, &net, &report)?;
        measured.push((k, relus, report.test_acc));
    }
    let c = criticality(&measured.iter().map(|&(_, r, a)| (r, a)).collect::<Vec<_>>());
    let stages: Vec<StageCriticality> = measured
        .iter()
        .zip(c)
        .map(
            |(&(stage, relus, accuracy), criticality)| StageCriticality {
                stage,
                relus,
                accuracy,
                criticality,
            },
        )
        .collect();
    let order = order_string(&stages);
    Ok(CriticalityReport { stages, order })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rows: &[(u64, f64, f64)]) {
        let c = criticality(&rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>());
        for (got, row) in c.iter().zip(rows) {
            assert!(
                (got - row.2).abs() < 0.011,
                "C = {got:.3}, published {}",
                row.2
            );
        }
    }

    #[test]
    fn reproduces_published_table_values() {
        // (ReLUs, accuracy with KD, published C_k)
        // Table 10, R18(m=16)-2x2x2x
        check(&[
            (81_920, 52.67, 0.00),
            (32_770, 62.10, 7.39),
            (16_380, 64.64, 9.84),
            (8_190, 59.70, 6.07),
        ]);
        // Table 10, R18(m=32)-2x2x2x
        check(&[
            (163_840, 60.19, 0.00),
            (65_540, 66.47, 4.69),
            (32_770, 67.28, 5.55),
            (16_380, 62.22, 1.67),
        ]);
        // Table 11, HRN-2x7x2x
        check(&[
            (81_920, 53.39, 0.00),
            (32_770, 61.59, 6.42),
            (57_340, 69.82, 12.37),
            (28_670, 63.40, 7.91),
        ]);
        // Table 11, HRN-4x7x2x (Stage 1's KD accuracy 49.42 is the minimum)
        check(&[
            (81_920, 49.42, 0.00),
            (65_540, 66.47, 12.72),
            (114_690, 72.16, 16.32),
            (57_340, 64.77, 11.56),
        ]);
    }

    #[test]
    fn order_is_most_to_least_critical() {
        let s: Vec<StageCriticality> = [(1, 0.0), (2, 7.4), (3, 9.8), (4, 6.1)]
            .iter()
            .map(|&(stage, criticality)| StageCriticality {
                stage,
                relus: 1,
                accuracy: 0.0,
                criticality,
            })
            .collect();
        assert_eq!(order_string(&s), "S3,S2,S4,S1");
    }

    #[test]
    fn stage_only_keeps_exactly_one_stage_and_the_stem_with_stage1() {
        let m = models::zoo::resnet([1, 1, 1, 1], [4, 8, 8, 8], 10, [3, 8, 8]).unwrap();
        let relus = |m: &Model, st: Stage| {
            m.nodes
                .iter()
                .filter(|n| n.stage == st && matches!(n.op, Op::Relu(_)))
                .count()
        };
        let s1 = stage_only(&m, 1);
        assert!(relus(&s1, Stage::Stem) > 0 && relus(&s1, Stage::Stage(1)) > 0);
        assert_eq!(
            relus(&s1, Stage::Stage(2)) + relus(&s1, Stage::Stage(3)) + relus(&s1, Stage::Stage(4)),
            0
        );
        let s3 = stage_only(&m, 3);
        assert_eq!(
            relus(&s3, Stage::Stem) + relus(&s3, Stage::Stage(1)) + relus(&s3, Stage::Stage(4)),
            0
        );
        assert_eq!(relus(&s3, Stage::Stage(3)), relus(&m, Stage::Stage(3)));
        let total: u64 = stages_of(&m)
            .iter()
            .map(|&k| models::count::count(&stage_only(&m, k)).unwrap().relus)
            .sum();
        assert_eq!(total, models::count::count(&m).unwrap().relus);
    }
}
