//! Estimated private-inference cost of a network: ReLUs × per-ReLU garbled-circuit cost plus
//! MACs × per-MAC homomorphic-encryption cost.
//!
//! The defaults are **provisional** placeholders until the protocol's benchmarks give measured
//! constants: 25 µs per ReLU (offline garbling + OT + online evaluation, all in) and 40 ns per MAC
//! (BFV linear layers). Both are flags of every `pi-opt` subcommand that prints costs.

use serde::Serialize;

/// Provisional default: total GC cost per ReLU, in microseconds.
pub const DEFAULT_US_PER_RELU: f64 = 25.0;
/// Provisional default: HE cost per multiply-accumulate, in nanoseconds.
pub const DEFAULT_NS_PER_MAC: f64 = 40.0;

/// The per-operation constants of the cost model.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct CostModel {
    /// Microseconds per ReLU (garbled circuits, OT, evaluation).
    pub us_per_relu: f64,
    /// Nanoseconds per MAC (homomorphic linear layers).
    pub ns_per_mac: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            us_per_relu: DEFAULT_US_PER_RELU,
            ns_per_mac: DEFAULT_NS_PER_MAC,
        }
    }
}

/// An estimated PI cost.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PiCost {
    /// Microseconds per ReLU used.
    pub us_per_relu: f64,
    /// Nanoseconds per MAC used.
    pub ns_per_mac: f64,
    /// ReLUs × per-ReLU cost, in seconds.
    pub gc_seconds: f64,
    /// MACs × per-MAC cost, in seconds.
    pub he_seconds: f64,
    /// The sum, in seconds.
    pub total_seconds: f64,
}

impl CostModel {
    /// The estimated cost of a network with `relus` ReLUs and `macs` MACs.
    pub fn estimate(&self, relus: u64, macs: u64) -> PiCost {
        let gc = relus as f64 * self.us_per_relu * 1e-6;
        let he = macs as f64 * self.ns_per_mac * 1e-9;
        PiCost {
            us_per_relu: self.us_per_relu,
            ns_per_mac: self.ns_per_mac,
            gc_seconds: gc,
            he_seconds: he,
            total_seconds: gc + he,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_is_linear() {
        let c = CostModel::default().estimate(26_112, 44_535_232);
        assert!((c.gc_seconds - 0.6528).abs() < 1e-9);
        assert!((c.he_seconds - 1.78140928).abs() < 1e-9);
        assert!((c.total_seconds - (c.gc_seconds + c.he_seconds)).abs() < 1e-12);
    }
}
