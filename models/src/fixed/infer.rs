//! Bit-exact fixed-point reference inference in Z_2^k.

use super::plan::{quantize, FixedPlan, Step, Truncation};
use super::ring::{sext, Ring};
use super::shared::{eval_shared, RingWeights};
use crate::graph::{Model, Op};
use crate::kernel::run;
use crate::ModelError;

/// `sext_width(y) >> shift` as a ring element (Identity / local truncation semantics).
pub fn truncate(ring: Ring, y: u64, t: Truncation) -> u64 {
    ring.from_i64(sext(y, t.width) >> t.shift.min(63))
}

/// `max(0, sext_width(y) >> shift)` as a ring element (what the ReLU circuit outputs).
pub fn relu(ring: Ring, y: u64, t: Truncation) -> u64 {
    ring.from_i64((sext(y, t.width) >> t.shift.min(63)).max(0))
}

/// `q(x, fa) mod 2^k` of a CHW input; non-finite values and a wrong length are refused.
pub fn quantize_input(
    model: &Model,
    plan: &FixedPlan,
    input: &[f32],
) -> Result<Vec<u64>, ModelError> {
    let [c, h, w] = model.input;
    if input.len() != c * h * w {
        return Err(ModelError::BadInput(format!(
            "input has {} values, the model takes {}",
            input.len(),
            c * h * w
        )));
    }
    if let Some(i) = input.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::BadInput(format!(
            "input value {i} is not finite"
        )));
    }
    let fa = plan
        .nodes
        .first()
        .map(|n| n.scale)
        .unwrap_or(plan.config.frac_act);
    Ok(input
        .iter()
        .map(|&x| plan.ring.from_i64(quantize(x, fa)))
        .collect())
}

/// Ring values of the output node for a float input (quantised with [`quantize_input`]).
pub fn infer_ring(model: &Model, plan: &FixedPlan, input: &[f32]) -> Result<Vec<u64>, ModelError> {
    let q = quantize_input(model, plan, input)?;
    let mut all = eval(model, plan, q, false)?;
    Ok(all.pop().unwrap_or_default())
}

/// Ring values of every node (index = node id) for an already quantised input.
pub fn infer_ring_all(
    model: &Model,
    plan: &FixedPlan,
    input: &[u64],
) -> Result<Vec<Vec<u64>>, ModelError> {
    let [c, h, w] = model.input;
    if input.len() != c * h * w {
        return Err(ModelError::BadInput(format!(
            "input has {} values, the model takes {}",
            input.len(),
            c * h * w
        )));
    }
    let q: Vec<u64> = input.iter().map(|&v| plan.ring.reduce(v)).collect();
    eval(model, plan, q, true)
}

/// Dequantised output (logits): `sext_k(y) / 2^s_out` as f32.
pub fn infer(model: &Model, plan: &FixedPlan, input: &[f32]) -> Result<Vec<f32>, ModelError> {
    let y = infer_ring(model, plan, input)?;
    Ok(dequantize(plan.ring, plan.output_scale, &y))
}

/// `sext_k(v) / 2^scale` for every value (computed in f64, rounded to f32).
pub fn dequantize(ring: Ring, scale: u32, values: &[u64]) -> Vec<f32> {
    let inv = (-(scale as f64)).exp2();
    values
        .iter()
        .map(|&v| (ring.to_i64(v) as f64 * inv) as f32)
        .collect()
}

/// Runs the plan node by node: ReLU / Identity / implicit truncations here, every other node
/// through [`eval_shared`] (the code the protocol uses on shares).
fn eval(
    model: &Model,
    plan: &FixedPlan,
    input: Vec<u64>,
    keep_all: bool,
) -> Result<Vec<Vec<u64>>, ModelError> {
    let shapes = model.shapes()?;
    if plan.nodes.len() != model.nodes.len() {
        return Err(ModelError::InvalidModel(format!(
            "plan has {} nodes, model has {}",
            plan.nodes.len(),
            model.nodes.len()
        )));
    }
    let ring = plan.ring;
    run(model, input, keep_all, |id, node, ins| {
        match (&node.op, &plan.nodes[id].step) {
            (Op::Relu(r), Step::Relu { relu: rt, pass }) => {
                let (c, h, w) = shapes[node.inputs[0]].dims();
                let hw = h * w;
                let mut selected = vec![r.channels.is_none(); c];
                if let Some(chans) = &r.channels {
                    chans
                        .iter()
                        .filter(|&&ch| ch < c)
                        .for_each(|&ch| selected[ch] = true);
                }
                let mut out = Vec::with_capacity(c * hw);
                for (ch, &sel) in selected.iter().enumerate() {
                    let src = &ins[0][ch * hw..(ch + 1) * hw];
                    if sel {
                        out.extend(src.iter().map(|&v| relu(ring, v, *rt)));
                    } else {
                        out.extend(src.iter().map(|&v| truncate(ring, v, *pass)));
                    }
                }
                Ok(out)
            }
            (Op::Identity, Step::Identity(t)) => {
                Ok(ins[0].iter().map(|&v| truncate(ring, v, *t)).collect())
            }
            (Op::Conv2d(_) | Op::Linear(_), Step::Linear(lp)) => {
                let weights = RingWeights::new(plan, id, true)?;
                match lp.input_trunc {
                    Some(t) => {
                        let x: Vec<u64> = ins[0].iter().map(|&v| truncate(ring, v, t)).collect();
                        eval_shared(model, plan, &shapes, id, &[&x], Some(&weights))
                    }
                    None => eval_shared(model, plan, &shapes, id, ins, Some(&weights)),
                }
            }
            _ => eval_shared(model, plan, &shapes, id, ins, None),
        }
    })
}
