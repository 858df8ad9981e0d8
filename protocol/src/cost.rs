//! What one private inference of a compiled model costs, counted from the protocol's own
//! choices: the HE block planner's plan of every linear layer and the garbled circuits of every
//! nonlinear layer. `pi-opt count` turns these counts into seconds with measured constants.

use pi_he::PlanCost;
use serde::Serialize;

use crate::program::Program;
use crate::ProtocolError;

/// The HE exchange of one linear layer.
#[derive(Clone, Debug, Serialize)]
pub struct HeLayerCost {
    /// Node name.
    pub name: String,
    /// Multiply-accumulates of the layer.
    pub macs: u64,
    /// Input ciphertexts, products, replies, key switches.
    pub inputs: usize,
    /// Plaintext–ciphertext products.
    pub products: usize,
    /// Reply ciphertexts.
    pub replies: usize,
    /// Key switches.
    pub key_switches: usize,
    /// Bytes client → server and server → client.
    pub bytes_up: u64,
    /// Bytes server → client.
    pub bytes_down: u64,
    /// One-core compute of both parties (ns) at the planner's constants.
    pub compute_ns: f64,
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
    /// ReLUs and comparisons.
    pub relus: u64,
    /// Comparisons beyond ReLU sign tests.
    pub comparisons: u64,
    /// MACs of all linear layers (evaluated in the clear on the server's share online).
    pub macs: u64,
}

impl CostProfile {
    /// Planner compute over all layers (ns, one core).
    pub fn he_compute_ns(&self) -> f64 {
        self.he_layers.iter().map(|l| l.compute_ns).sum()
    }

    /// HE bytes both ways.
    pub fn he_bytes(&self) -> u64 {
        self.he_layers
            .iter()
            .map(|l| l.bytes_up + l.bytes_down)
            .sum()
    }
}

/// The circuit of one ReLU in the default fixed-point format (for per-ReLU costs).
pub fn default_relu() -> pi_gc::CircuitSpec {
    pi_gc::CircuitSpec::Relu(pi_gc::ReluParams::DEFAULT)
}

impl Program {
    /// The protocol's own counts for one inference (planner plans, circuit gate counts).
    pub fn cost_profile(&self) -> Result<CostProfile, ProtocolError> {
        let mut he_layers = Vec::new();
        for (name, shape, _) in self.linear_layers() {
            let p: PlanCost = pi_he::plan_cost(self.he_params()?, shape)?;
            he_layers.push(HeLayerCost {
                name: name.to_string(),
                macs: shape.macs(),
                inputs: p.inputs,
                products: p.products,
                replies: p.replies,
                key_switches: p.key_switches,
                bytes_up: p.bytes_up,
                bytes_down: p.bytes_down,
                compute_ns: p.compute_ns,
            });
        }
        let mut and_gates = 0u64;
        let (mut cin, mut sin) = (0u64, 0u64);
        let mut cache: Option<(pi_gc::CircuitSpec, u64)> = None;
        for s in self.circuit_specs() {
            let ands = match cache {
                Some((q, a)) if q == *s => a,
                _ => {
                    let a = s.and_gates() as u64;
                    cache = Some((*s, a));
                    a
                }
            };
            and_gates += ands;
            cin += s.client_input_bits() as u64;
            sin += s.server_input_bits() as u64;
        }
        Ok(CostProfile {
            he_layers,
            circuits: self.circuit_count() as u64,
            and_gates,
            client_input_bits: cin,
            server_input_bits: sin,
            relus: self.relus(),
            comparisons: self.comparisons(),
            macs: self.macs(),
        })
    }
}
