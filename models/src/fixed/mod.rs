//! Fixed-point reference inference: computes bit for bit what the private protocol computes
//! (docs/protocol.md, "Share ring and fixed point"): ring Z_2^k, per-node scales, truncation,
//! rounding. [`plan`] derives a [`FixedPlan`] from the graph; the protocol runs the same plan.
//!
//! Measured against [`crate::float`] (defaults fa = fw = 8, k = 52) on `zoo::random_resnet`
//! models with inputs in [−1, 1]: every logit within 3.4 % of the largest |float logit| (asserted
//! ≤ 5 % in `tests/fixed_reference.rs`), top-1 equal in 199/200 runs; see docs/protocol.md.

mod calibrate;
mod infer;
mod plan;
mod ring;
mod shared;

pub use calibrate::{calibrate, Calibration, CalibrationOptions, META_CALIBRATION, META_FIXED};
pub use infer::{
    add_constants, dequantize, infer, infer_ring, infer_ring_all, max_window, quantize_input, relu,
    relu_capped, truncate,
};
pub use plan::{
    plan, plan_weightless, quantize, FixedConfig, FixedPlan, LinearPlan, NodePlan, Step, Truncation,
};
pub use ring::{sext, Ring};
pub use shared::{eval_shared, RingWeights};
