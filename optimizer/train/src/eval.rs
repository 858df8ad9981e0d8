//! Test accuracy of a model three ways: the float model (batched, through burn, cross-checked
//! against `models::float`), the fixed-point reference (`models::fixed`, the arithmetic the
//! protocol reproduces) and real private inferences on a subset through a pluggable predictor.

use crate::data::{Dataset, Normalizer};
use crate::error::{Error, Result};
use crate::net::Net;
use crate::private::{BoxError, Predictor};
use crate::trainer::{argmax_rows, predict};
use models::Model;
use serde::Serialize;
use std::time::Instant;

/// Accuracy on (a prefix of) the test set through some predictor.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubsetAccuracy {
    /// Images evaluated (the first `images` of the test set).
    pub images: usize,
    /// Accuracy on them, percent.
    pub accuracy: f64,
    /// Percentage of them where the prediction equals the float model's.
    pub agreement_with_float: f64,
    /// Mean wall-clock seconds per image.
    pub seconds_per_image: f64,
    /// For private inference: percentage of images predicted as the fixed-point reference does
    /// (on the images both evaluated).
    pub agreement_with_fixed: Option<f64>,
    /// For private inference: largest |logit difference| to the fixed-point reference.
    pub max_logit_diff_vs_fixed: Option<f32>,
}

/// The evaluation of one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// Model name.
    pub model: String,
    /// Test images.
    pub images: usize,
    /// ReLUs of the model.
    pub relus: u64,
    /// MACs of the model.
    pub macs: u64,
    /// Float accuracy on the whole test set, percent.
    pub float_accuracy: f64,
    /// Largest |logit difference| between the batched float run and `models::float::infer`
    /// on the first images (a check that training and the engine agree on the graph).
    pub float_reference_max_diff: f32,
    /// Fixed-point reference accuracy.
    pub fixed: Option<SubsetAccuracy>,
    /// Private-inference accuracy.
    pub private: Option<SubsetAccuracy>,
}

/// Run `predictor` on the first `limit` test images; returns the accuracy and every logit vector.
pub fn subset_accuracy(
    test: &Dataset,
    norm: &Normalizer,
    limit: usize,
    float_pred: &[usize],
    predictor: &mut Predictor,
) -> Result<(SubsetAccuracy, Vec<Vec<f32>>)> {
    let n = limit.min(test.len()).min(float_pred.len());
    let (mut correct, mut agree) = (0, 0);
    let mut all = Vec::with_capacity(n);
    let t0 = Instant::now();
    for (i, &float) in float_pred.iter().enumerate().take(n) {
        let logits = predictor(&norm.image(test, i))
            .map_err(|e| Error::Private(format!("image {i}: {e}")))?;
        let p = top1(&logits);
        correct += usize::from(p == test.labels[i] as usize);
        agree += usize::from(p == float);
        all.push(logits);
    }
    let n_f = n.max(1) as f64;
    let acc = SubsetAccuracy {
        images: n,
        accuracy: 100.0 * correct as f64 / n_f,
        agreement_with_float: 100.0 * agree as f64 / n_f,
        seconds_per_image: t0.elapsed().as_secs_f64() / n_f,
        agreement_with_fixed: None,
        max_logit_diff_vs_fixed: None,
    };
    Ok((acc, all))
}

fn top1(logits: &[f32]) -> usize {
    argmax_rows(logits, logits.len().max(1))
        .first()
        .copied()
        .unwrap_or(usize::MAX)
}

/// How much of the test set each mode sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// Images for the fixed-point reference (`None`: all; `Some(0)`: skip).
    pub fixed_limit: Option<usize>,
    /// Images for private inference (when a predictor is given).
    pub private_limit: usize,
    /// Images cross-checked against `models::float::infer`.
    pub reference_check: usize,
    /// Batch size of the float run.
    pub batch: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            fixed_limit: None,
            private_limit: 20,
            reference_check: 4,
            batch: 256,
        }
    }
}

/// Evaluate `model` on `test` (normalised with `norm`): float always, fixed point through
/// `fixed` when given, private inference through `private` when given.
pub fn evaluate(
    model: &Model,
    test: &Dataset,
    norm: &Normalizer,
    opts: &EvalOptions,
    fixed: Option<&mut Predictor>,
    private: Option<&mut Predictor>,
) -> Result<EvalReport> {
    let counts = models::count::count(model)?;
    let net = Net::frozen(model)?;
    let float_pred = predict(&net, test, norm, opts.batch)?;
    let correct = float_pred
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    let float_accuracy = 100.0 * correct as f64 / test.len().max(1) as f64;

    let mut max_diff = 0f32;
    for i in 0..opts.reference_check.min(test.len()) {
        let img = norm.image(test, i);
        let reference = models::float::infer(model, &img)?;
        let x = net.input_tensor(img, 1, false);
        let ours = crate::net::values(net.forward_eval(x))?;
        for (a, b) in reference.iter().zip(&ours) {
            max_diff = max_diff.max((a - b).abs());
        }
    }

    let (fixed, fixed_logits) = match (fixed, opts.fixed_limit) {
        (Some(_), Some(0)) | (None, _) => (None, Vec::new()),
        (Some(f), limit) => {
            let (a, l) = subset_accuracy(test, norm, limit.unwrap_or(usize::MAX), &float_pred, f)?;
            (Some(a), l)
        }
    };
    let private = match private {
        Some(p) if opts.private_limit > 0 => {
            let (mut a, logits) = subset_accuracy(test, norm, opts.private_limit, &float_pred, p)?;
            let both = logits.len().min(fixed_logits.len());
            if both > 0 {
                let same = (0..both)
                    .filter(|&i| top1(&logits[i]) == top1(&fixed_logits[i]))
                    .count();
                a.agreement_with_fixed = Some(100.0 * same as f64 / both as f64);
                let diff = (0..both)
                    .flat_map(|i| {
                        logits[i]
                            .iter()
                            .zip(&fixed_logits[i])
                            .map(|(x, y)| (x - y).abs())
                    })
                    .fold(0f32, f32::max);
                a.max_logit_diff_vs_fixed = Some(diff);
            }
            Some(a)
        }
        _ => None,
    };
    Ok(EvalReport {
        model: model.name.clone(),
        images: test.len(),
        relus: counts.relus,
        macs: counts.macs,
        float_accuracy,
        float_reference_max_diff: max_diff,
        fixed,
        private,
    })
}

/// Wrap `models::float::infer` as a predictor (used in tests and as a stand-in).
pub fn float_predictor(
    model: &Model,
) -> impl FnMut(&[f32]) -> std::result::Result<Vec<f32>, BoxError> + '_ {
    move |x: &[f32]| models::float::infer(model, x).map_err(|e| e.into())
}

/// The fixed-point reference (`models::fixed` with `config`) as a predictor: the arithmetic
/// the private protocol reproduces bit for bit.
pub fn fixed_predictor(
    model: &Model,
    config: models::fixed::FixedConfig,
) -> Result<Box<Predictor<'_>>> {
    let plan = models::fixed::plan(model, &config)?;
    Ok(Box::new(move |x: &[f32]| {
        models::fixed::infer(model, &plan, x).map_err(|e| e.into())
    }))
}
