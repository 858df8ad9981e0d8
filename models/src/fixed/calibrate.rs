//! Fixed-point calibration: chooses fa, fw, M and the ring from sample inputs so that no ReLU or
//! max-pool input overflows its circuit width and the fixed-point top-1 equals the float top-1
//! (docs/protocol.md, "Calibration"). The choice travels in the model file's metadata
//! ([`FixedConfig::to_metadata`]).

use super::infer::infer_ring_all;
use super::plan::{plan, FixedConfig, FixedPlan, Step};
use super::ring::sext;
use crate::float::{argmax, infer_all};
use crate::graph::{Model, Op};
use crate::ModelError;

/// Metadata key of the fixed-point format in an ONNX file.
pub const META_FIXED: &str = "pi.fixed";
/// Metadata key of the calibration summary in an ONNX file.
pub const META_CALIBRATION: &str = "pi.calibration";

/// How calibration searches.
#[derive(Clone, Debug)]
pub struct CalibrationOptions {
    /// (fa, fw) pairs tried in order; the first that reproduces every float top-1 wins.
    pub fractions: Vec<(u32, u32)>,
    /// Bits of headroom above the largest nonlinear input seen (M = ⌈log2 max⌉ + headroom).
    pub headroom_bits: u32,
    /// Extra ring bits above the largest value of any node, so that share-local truncation fails
    /// with probability ≤ 2^−margin per element (docs/protocol.md).
    pub truncation_margin_bits: u32,
    /// Largest ring the HE layer supports.
    pub max_ring_bits: u32,
    /// Largest |fixed − float| logit, relative to the largest |float logit|, accepted before more
    /// fractional bits are tried.
    pub max_logit_error: f32,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        CalibrationOptions {
            fractions: vec![(8, 8), (10, 10), (12, 12), (14, 14), (16, 16)],
            headroom_bits: 1,
            truncation_margin_bits: 24,
            max_ring_bits: 59,
            max_logit_error: 0.05,
        }
    }
}

/// The outcome of a calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The chosen format.
    pub config: FixedConfig,
    /// Samples used.
    pub samples: usize,
    /// Samples whose fixed-point top-1 equals the float top-1.
    pub top1_agree: usize,
    /// Largest |fixed − float| logit over the samples, relative to the largest |float logit|.
    pub max_logit_error: f32,
    /// The node whose input is the largest nonlinear (ReLU / max-pool) input, and that value.
    pub largest_nonlinear_input: (String, f32),
    /// The node with the largest |activation| of all, and that value.
    pub largest_activation: (String, f32),
}

impl FixedConfig {
    /// The `pi.fixed` metadata value: `fa=…;fw=…;M=…;k=…`.
    pub fn to_metadata(&self) -> String {
        format!(
            "fa={};fw={};M={};k={}",
            self.frac_act, self.frac_weight, self.magnitude_bits, self.ring_bits
        )
    }

    /// Reads the `pi.fixed` entry of a model's metadata (the last one wins); `None` if absent.
    pub fn from_metadata(meta: &[(String, String)]) -> Option<Result<FixedConfig, ModelError>> {
        let value = meta.iter().rev().find(|(k, _)| k == META_FIXED)?.1.clone();
        Some(Self::parse_metadata(&value))
    }

    /// Parses a `pi.fixed` value.
    fn parse_metadata(value: &str) -> Result<FixedConfig, ModelError> {
        let bad = || {
            ModelError::InvalidModel(format!(
                "metadata {META_FIXED} = `{value}` is not `fa=N;fw=N;M=N;k=N`"
            ))
        };
        let mut cfg = FixedConfig::default();
        let mut seen = 0;
        for part in value.split(';').filter(|p| !p.trim().is_empty()) {
            let (key, v) = part.split_once('=').ok_or_else(bad)?;
            let v: u32 = v.trim().parse().map_err(|_| bad())?;
            match key.trim() {
                "fa" => cfg.frac_act = v,
                "fw" => cfg.frac_weight = v,
                "M" => cfg.magnitude_bits = v,
                "k" => cfg.ring_bits = v,
                _ => return Err(bad()),
            }
            seen += 1;
        }
        if seen != 4 {
            return Err(bad());
        }
        Ok(cfg)
    }
}

impl Calibration {
    /// The metadata entries to store in the model file.
    pub fn metadata(&self) -> Vec<(String, String)> {
        vec![
            (META_FIXED.to_string(), self.config.to_metadata()),
            (
                META_CALIBRATION.to_string(),
                format!(
                    "samples={};top1_agree={};max_logit_error={:.4};largest_nonlinear_input={}:{};largest_activation={}:{}",
                    self.samples,
                    self.top1_agree,
                    self.max_logit_error,
                    self.largest_nonlinear_input.0,
                    self.largest_nonlinear_input.1,
                    self.largest_activation.0,
                    self.largest_activation.1,
                ),
            ),
        ]
    }
}

/// ⌈log2 v⌉ for v > 0 (0 for v ≤ 1).
fn bits_for(v: f64) -> u32 {
    if v <= 1.0 {
        0
    } else {
        v.log2().ceil() as u32
    }
}

/// Largest |value| per node over the samples, and each sample's float logits.
fn float_ranges(
    model: &Model,
    samples: &[Vec<f32>],
) -> Result<(Vec<f32>, Vec<Vec<f32>>), ModelError> {
    let mut maxabs = vec![0f32; model.nodes.len()];
    let mut logits = Vec::with_capacity(samples.len());
    for x in samples {
        let all = infer_all(model, x)?;
        for (m, t) in maxabs.iter_mut().zip(&all) {
            *m = t.iter().fold(*m, |a, v| a.max(v.abs()));
        }
        logits.push(all.get(model.output).cloned().unwrap_or_default());
    }
    if maxabs.iter().any(|v| !v.is_finite()) {
        return Err(ModelError::InvalidModel(
            "a calibration sample produces a non-finite activation".into(),
        ));
    }
    Ok((maxabs, logits))
}

/// The smallest ring for `(fa, fw, M)` given the node scales of `plan` and the value ranges;
/// `Err((node, needed))` when even the smallest exceeds `max`.
fn ring_for(
    p: &FixedPlan,
    maxabs: &[f32],
    cfg: &FixedConfig,
    opts: &CalibrationOptions,
) -> Result<u32, (usize, u32)> {
    let (fa, fw, m) = (cfg.frac_act, cfg.frac_weight, cfg.magnitude_bits);
    let mut need = (fa + fw + m + 1).max(fa + 2 * fw + 1).max(20);
    let mut worst = (0usize, 0u32);
    for (id, np) in p.nodes.iter().enumerate() {
        // The value must fit as a signed integer at its scale, with one spare bit.
        let bits = np.scale + bits_for(maxabs[id] as f64 * 2.0) + 1;
        need = need.max(bits + 1);
        if bits > worst.1 {
            worst = (id, bits);
        }
    }
    if need > opts.max_ring_bits {
        return Err((worst.0, need));
    }
    Ok((worst.1 + opts.truncation_margin_bits)
        .max(need)
        .min(opts.max_ring_bits))
}

/// Whether every ReLU / max-pool input of `ring` values (from `infer_ring_all`) fits its
/// circuit's width (`|y| < 2^(w−1)`).
fn nonlinear_inputs_fit(model: &Model, p: &FixedPlan, ring: &[Vec<u64>]) -> Option<usize> {
    for (id, node) in model.nodes.iter().enumerate() {
        let t = match &p.nodes[id].step {
            Step::Relu { relu, .. } => *relu,
            Step::Max { trunc, .. } => *trunc,
            _ => continue,
        };
        let Some(&input) = node.inputs.first() else {
            continue;
        };
        let limit = 1i64 << (t.width - 1).min(62);
        if ring[input]
            .iter()
            .any(|&y| sext(y, p.ring.bits).abs() >= limit)
        {
            return Some(id);
        }
    }
    None
}

/// Chooses the fixed-point format of `model` from `samples` (CHW float inputs).
pub fn calibrate(
    model: &Model,
    samples: &[Vec<f32>],
    opts: &CalibrationOptions,
) -> Result<Calibration, ModelError> {
    if samples.is_empty() {
        return Err(ModelError::BadInput(
            "calibration needs at least one sample".into(),
        ));
    }
    let (maxabs, float_logits) = float_ranges(model, samples)?;
    let name = |id: usize| model.nodes[id].name.clone();
    let mut nl = (0usize, 0f32);
    for node in &model.nodes {
        if matches!(node.op, Op::Relu(_) | Op::MaxPool(_)) {
            if let Some(&i) = node.inputs.first() {
                if maxabs[i] >= nl.1 {
                    nl = (i, maxabs[i]);
                }
            }
        }
    }
    let big = maxabs.iter().enumerate().fold(
        (0usize, 0f32),
        |b, (i, &v)| if v > b.1 { (i, v) } else { b },
    );
    // M covers the largest nonlinear input (with headroom), every ReLU cap, and the model's input
    // and logits: clients refuse inputs and logits outside |x| < 2^M (protocol::plausible).
    let io = maxabs[0].max(maxabs[model.output]);
    let caps = model.nodes.iter().filter_map(|n| match &n.op {
        Op::Relu(r) => r.cap,
        Op::MaxPool(mp) => mp.cap,
        _ => None,
    });
    let m = caps
        .map(|c| bits_for(c as f64) + 1)
        .fold(bits_for(nl.1 as f64) + opts.headroom_bits, u32::max)
        .max(bits_for(io as f64) + opts.headroom_bits)
        .max(1);
    let mut best: Option<Calibration> = None;
    let mut refusal = None;
    for &(fa, fw) in &opts.fractions {
        let provisional = FixedConfig {
            frac_act: fa,
            frac_weight: fw,
            magnitude_bits: m,
            ring_bits: 64,
        };
        let p64 = match plan(model, &provisional) {
            Ok(p) => p,
            Err(e) => {
                refusal.get_or_insert(e);
                continue;
            }
        };
        let k = match ring_for(&p64, &maxabs, &provisional, opts) {
            Ok(k) => k,
            Err((node, need)) => {
                refusal.get_or_insert(ModelError::Unsupported {
                    node: name(node),
                    reason: format!(
                        "activation up to {:.4e} at scale 2^{} needs a {need}-bit ring, more than \
                         the {} bits the HE layer supports (largest nonlinear input: `{}` up to \
                         {:.4e}); normalise the input or add BatchNorm so activations stay small",
                        maxabs[node],
                        p64.nodes[node].scale,
                        opts.max_ring_bits,
                        name(nl.0),
                        nl.1
                    ),
                });
                continue;
            }
        };
        let config = FixedConfig {
            ring_bits: k,
            ..provisional
        };
        let p = plan(model, &config)?;
        let mut agree = 0;
        let mut err = 0f32;
        let mut overflow = None;
        for (x, fl) in samples.iter().zip(&float_logits) {
            let q = super::infer::quantize_input(model, &p, x)?;
            let ring = infer_ring_all(model, &p, &q)?;
            if overflow.is_none() {
                overflow = nonlinear_inputs_fit(model, &p, &ring);
            }
            let fx = super::infer::dequantize(p.ring, p.output_scale, &ring[model.output]);
            agree += (argmax(&fx) == argmax(fl)) as usize;
            let scale = fl.iter().fold(1e-6f32, |a, v| a.max(v.abs()));
            err = fx
                .iter()
                .zip(fl)
                .fold(err, |a, (u, v)| a.max((u - v).abs() / scale));
        }
        if let Some(node) = overflow {
            refusal.get_or_insert(ModelError::Unsupported {
                node: name(node),
                reason: format!("a nonlinear input overflows 2^M with M = {m}"),
            });
            continue;
        }
        let cal = Calibration {
            config,
            samples: samples.len(),
            top1_agree: agree,
            max_logit_error: err,
            largest_nonlinear_input: (name(nl.0), nl.1),
            largest_activation: (name(big.0), big.1),
        };
        // Done once every top-1 agrees and the logits are close; otherwise keep the best so far
        // (most agreement, then smallest error) and try more fractional bits.
        let done = agree == samples.len() && err <= opts.max_logit_error;
        let better = best.as_ref().is_none_or(|b| {
            agree > b.top1_agree || (agree == b.top1_agree && err < b.max_logit_error)
        });
        if better {
            best = Some(cal);
        }
        if done {
            break;
        }
    }
    best.ok_or_else(|| {
        refusal.unwrap_or_else(|| ModelError::InvalidModel("no fixed-point format fits".into()))
    })
}
