//! What one private inference of a compiled model costs, counted from the protocol's own
//! choices (the HE block planner's plan of every linear layer, the garbled circuits of every
//! nonlinear layer, the server's kernel cache, the client's memory budget for garbled material)
//! and priced with figures measured on the host ([`HostModel`]): `pi-opt count` prints the
//! [`Estimate`].

mod estimate;
mod host;
mod probe;

use pi_he::PlanCost;
use serde::Serialize;

use crate::program::Program;
use crate::ProtocolError;

pub use estimate::{Estimate, COLD_TOUCH_NS_PER_BYTE};
pub use host::{
    build_stamp, cache_dir, host_name, measure_host_model, process_cpu_seconds, HostModel,
};

/// The HE exchange of one linear layer.
#[derive(Clone, Debug, Serialize)]
pub struct HeLayerCost {
    /// Node name.
    pub name: String,
    /// Multiply-accumulates of the layer.
    pub macs: u64,
    /// The block plan's counts (ciphertexts, products, replies, key switches, kernels, bytes).
    pub plan: PlanCost,
    /// Kernels the server transforms in every session (beyond its kernel cache).
    pub uncached_kernels: usize,
}

/// Counts of one inference.
#[derive(Clone, Debug, Serialize)]
pub struct CostProfile {
    /// Every linear layer's HE exchange, in order.
    pub he_layers: Vec<HeLayerCost>,
    /// Garbled circuits.
    pub circuits: u64,
    /// AND gates over all circuits (32 B of table each).
    pub and_gates: u64,
    /// Client input bits (one OT each).
    pub client_input_bits: u64,
    /// Server input bits (one online label each).
    pub server_input_bits: u64,
    /// Bytes of garbled material the client keeps between its offline and online phases (tables
    /// and its input labels).
    pub gc_stored_bytes: u64,
    /// ReLUs and comparisons.
    pub relus: u64,
    /// Comparisons beyond ReLU sign tests.
    pub comparisons: u64,
    /// MACs of all linear layers (evaluated in the clear on the server's share online).
    pub macs: u64,
}

impl CostProfile {
    /// HE bytes both ways.
    pub fn he_bytes(&self) -> u64 {
        self.he_layers
            .iter()
            .map(|l| l.plan.bytes_up + l.plan.bytes_down)
            .sum()
    }

    /// Kernels transformed in every session, over all layers.
    pub fn uncached_kernels(&self) -> usize {
        self.he_layers.iter().map(|l| l.uncached_kernels).sum()
    }
}

/// The circuit of one ReLU in the default fixed-point format (for per-ReLU costs).
pub fn default_relu() -> pi_gc::CircuitSpec {
    pi_gc::CircuitSpec::Relu(pi_gc::ReluParams::DEFAULT)
}

impl Program {
    /// The protocol's own counts for one inference (planner plans, circuit gate counts), with a
    /// server whose kernel cache holds `kernel_cache_bytes`.
    pub fn cost_profile(&self, kernel_cache_bytes: usize) -> Result<CostProfile, ProtocolError> {
        let params = self.he_params()?;
        let cache = self.kernel_cache_plan(kernel_cache_bytes)?;
        let mut he_layers = Vec::new();
        for ((name, shape, _), (kernels, cached)) in self.linear_layers().zip(cache) {
            he_layers.push(HeLayerCost {
                name: name.to_string(),
                macs: shape.macs(),
                plan: pi_he::plan_cost(params, shape)?,
                uncached_kernels: kernels - cached,
            });
        }
        let mut and_gates = 0u64;
        let (mut cin, mut sin, mut stored) = (0u64, 0u64, 0u64);
        let mut cache: Option<(pi_gc::CircuitSpec, u64, u64)> = None;
        for s in self.circuit_specs() {
            let (ands, table) = match cache {
                Some((q, a, t)) if q == *s => (a, t),
                _ => {
                    let (a, t) = (s.and_gates() as u64, s.table_bytes() as u64);
                    cache = Some((*s, a, t));
                    (a, t)
                }
            };
            and_gates += ands;
            cin += s.client_input_bits() as u64;
            sin += s.server_input_bits() as u64;
            stored += table + 16 * s.client_input_bits() as u64;
        }
        Ok(CostProfile {
            he_layers,
            circuits: self.circuit_count() as u64,
            and_gates,
            client_input_bits: cin,
            server_input_bits: sin,
            gc_stored_bytes: stored,
            relus: self.relus(),
            comparisons: self.comparisons(),
            macs: self.macs(),
        })
    }
}
