//! ReLU and MAC accounting, in total and per stage.
//!
//! ReLUs: elements passing through a `Relu` node (a channel-subset ReLU counts only its channels;
//! `Identity` counts 0). MACs ("FLOPs" in the papers): convolution
//! `c_out·h_out·w_out·(c_in/groups)·kh·kw` plus linear `in·out`; everything else counts 0.

use serde::Serialize;

use crate::graph::{Model, Op, Shape, Stage};
use crate::ModelError;

/// ReLUs and MACs of one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StageCount {
    /// The stage.
    pub stage: Stage,
    /// ReLU evaluations in this stage.
    pub relus: u64,
    /// Multiply-accumulates of convolutions and linear layers in this stage.
    pub macs: u64,
}

/// ReLUs and MACs of a whole model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Total ReLU evaluations.
    pub relus: u64,
    /// Total multiply-accumulates.
    pub macs: u64,
    /// Per stage, in stage order (stem, stage 1, 2, ..., head); only stages that have nodes.
    pub stages: Vec<StageCount>,
}

impl Counts {
    /// The entry of `stage`, if the model has it.
    pub fn stage(&self, stage: Stage) -> Option<&StageCount> {
        self.stages.iter().find(|s| s.stage == stage)
    }

    /// Stagewise ReLU distribution: each stage's share of all ReLUs (fractions summing to 1; all 0
    /// when the model has no ReLU).
    pub fn relu_distribution(&self) -> Vec<(Stage, f64)> {
        self.stages
            .iter()
            .map(|s| {
                (
                    s.stage,
                    if self.relus == 0 {
                        0.0
                    } else {
                        s.relus as f64 / self.relus as f64
                    },
                )
            })
            .collect()
    }
}

/// ReLUs and MACs of `model`, in total and per stage; validates the model first.
pub fn count(model: &Model) -> Result<Counts, ModelError> {
    let shapes = model.shapes()?;
    let mut stages: Vec<StageCount> = Vec::new();
    for (id, node) in model.nodes.iter().enumerate() {
        let out = &shapes[id];
        let (relus, macs) = node_counts(&node.op, out);
        let entry = match stages.iter_mut().position(|s| s.stage == node.stage) {
            Some(i) => &mut stages[i],
            None => {
                stages.push(StageCount {
                    stage: node.stage,
                    relus: 0,
                    macs: 0,
                });
                stages.last_mut().expect("just pushed")
            }
        };
        entry.relus += relus;
        entry.macs += macs;
    }
    stages.sort_by_key(|s| s.stage);
    Ok(Counts {
        relus: stages.iter().map(|s| s.relus).sum(),
        macs: stages.iter().map(|s| s.macs).sum(),
        stages,
    })
}

/// `(relus, macs)` of one node producing a tensor of shape `out`.
fn node_counts(op: &Op, out: &Shape) -> (u64, u64) {
    match op {
        Op::Relu(r) => {
            let (c, h, w) = out.dims();
            let selected = r.channels.as_ref().map_or(c, |ch| ch.len());
            ((selected * h * w) as u64, 0)
        }
        Op::Conv2d(conv) => {
            let (c_out, h, w) = out.dims();
            let per_output = (conv.c_in / conv.groups) * conv.kernel[0] * conv.kernel[1];
            (0, (c_out * h * w * per_output) as u64)
        }
        Op::Linear(lin) => (0, (lin.in_features * lin.out_features) as u64),
        _ => (0, 0),
    }
}
