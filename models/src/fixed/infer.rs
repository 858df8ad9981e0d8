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

/// `min(max(0, sext_width(y) >> shift), cap)` as a ring element (the capped ReLU circuit).
pub fn relu_capped(ring: Ring, y: u64, t: Truncation, cap: Option<u64>) -> u64 {
    let v = (sext(y, t.width) >> t.shift.min(63)).max(0);
    ring.from_i64(cap.map_or(v, |c| v.min(c as i64)))
}

/// What the max circuit outputs for one window: `m = max_i(sext_width(y_i) >> shift)`, then
/// `max(0, m)` when `relu`, then `min(m, cap)` when capped.
pub fn max_window(
    ring: Ring,
    ys: impl IntoIterator<Item = u64>,
    t: Truncation,
    relu: bool,
    cap: Option<u64>,
) -> u64 {
    let mut m = ys
        .into_iter()
        .map(|y| sext(y, t.width) >> t.shift.min(63))
        .max()
        .unwrap_or(0);
    if relu {
        m = m.max(0);
    }
    if let Some(c) = cap {
        m = m.min(c as i64);
    }
    ring.from_i64(m)
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
            (
                Op::Relu(r),
                Step::Relu {
                    relu: rt,
                    pass,
                    cap,
                },
            ) => {
                let (c, h, w) = shapes[node.inputs[0]].dims();
                let sel = r.selection(c, h * w);
                Ok(ins[0]
                    .iter()
                    .zip(sel)
                    .map(|(&v, s)| {
                        if s {
                            relu_capped(ring, v, *rt, *cap)
                        } else {
                            truncate(ring, v, *pass)
                        }
                    })
                    .collect())
            }
            (Op::MaxPool(mp), Step::Max { trunc, relu, cap }) => {
                let (c, h, w) = shapes[node.inputs[0]].dims();
                let windows = mp.pool.windows(h, w);
                let mut out = Vec::with_capacity(c * windows.len());
                for ch in 0..c {
                    let plane = &ins[0][ch * h * w..(ch + 1) * h * w];
                    for win in &windows {
                        out.push(max_window(
                            ring,
                            win.indices(w).map(|i| plane[i]),
                            *trunc,
                            *relu,
                            *cap,
                        ));
                    }
                }
                Ok(out)
            }
            (Op::Affine(_), Step::AddConst(values)) => {
                let (c, h, w) = shapes[node.inputs[0]].dims();
                Ok(add_constants(ring, ins[0], values, c, h * w))
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

/// `x + values` in the ring, `values` broadcast per tensor, channel or element (the server's part
/// of a shift-only Affine node).
pub fn add_constants(ring: Ring, x: &[u64], values: &[u64], c: usize, hw: usize) -> Vec<u64> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let add = match values.len() {
                0 => 0,
                1 => values[0],
                n if n == c * hw => values[i],
                n if n == c && hw > 0 => values[i / hw],
                _ => 0,
            };
            ring.add(v, add)
        })
        .collect()
}
