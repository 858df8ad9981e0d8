//! ReLU, comparison and MAC accounting, in total and per stage.
//!
//! ReLUs: elements passing through a `Relu` node (a channel- or element-subset ReLU counts only its
//! selected elements; `Identity` counts 0), plus one per output element of a `MaxPool` with a fused
//! ReLU. Comparisons (the other cost driver of the nonlinear layers): a `MaxPool` output over a
//! window of n input elements costs n − 1, and a cap (ReLU6) one more per capped element. MACs
//! ("FLOPs" in the papers): convolution `c_out·h_out·w_out·(c_in/groups)·kh·kw` plus linear
//! `in·out`; everything else counts 0.

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
    /// Comparisons (max pooling, caps) in this stage.
    pub comparisons: u64,
    /// Multiply-accumulates of convolutions and linear layers in this stage.
    pub macs: u64,
}

/// ReLUs and MACs of a whole model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Total ReLU evaluations.
    pub relus: u64,
    /// Total comparisons (max pooling, caps).
    pub comparisons: u64,
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
        let input = node.inputs.first().map_or(out, |&i| &shapes[i]);
        let (relus, comparisons, macs) = node_counts(&node.op, input, out);
        let entry = match stages.iter_mut().position(|s| s.stage == node.stage) {
            Some(i) => &mut stages[i],
            None => {
                stages.push(StageCount {
                    stage: node.stage,
                    relus: 0,
                    comparisons: 0,
                    macs: 0,
                });
                stages.last_mut().expect("just pushed")
            }
        };
        entry.relus += relus;
        entry.comparisons += comparisons;
        entry.macs += macs;
    }
    stages.sort_by_key(|s| s.stage);
    Ok(Counts {
        relus: stages.iter().map(|s| s.relus).sum(),
        comparisons: stages.iter().map(|s| s.comparisons).sum(),
        macs: stages.iter().map(|s| s.macs).sum(),
        stages,
    })
}

/// `(relus, comparisons, macs)` of one node reading a tensor of shape `input` and producing `out`.
fn node_counts(op: &Op, input: &Shape, out: &Shape) -> (u64, u64, u64) {
    match op {
        Op::Relu(r) => {
            let (c, h, w) = out.dims();
            let selected = r.selected_count(c, h * w) as u64;
            (selected, if r.cap.is_some() { selected } else { 0 }, 0)
        }
        Op::MaxPool(mp) => {
            let (c, h, w) = input.dims();
            let per_channel: u64 = mp
                .pool
                .windows(h, w)
                .iter()
                .map(|win| win.len().saturating_sub(1) as u64)
                .sum();
            let outputs = out.numel() as u64;
            let relus = if mp.relu { outputs } else { 0 };
            let caps = if mp.cap.is_some() { outputs } else { 0 };
            (relus, per_channel * c as u64 + caps, 0)
        }
        Op::Conv2d(conv) => {
            let (c_out, h, w) = out.dims();
            let per_output = (conv.c_in / conv.groups) * conv.kernel[0] * conv.kernel[1];
            (0, 0, (c_out * h * w * per_output) as u64)
        }
        Op::Linear(lin) => (0, 0, (lin.in_features * lin.out_features) as u64),
        _ => (0, 0, 0),
    }
}
