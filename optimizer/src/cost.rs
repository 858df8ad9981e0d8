//! Estimated private-inference cost of a network: ReLUs × per-ReLU garbled-circuit cost plus
//! MACs × per-MAC homomorphic-encryption cost.
//!
//! The defaults were measured with `pi-server`/`pi-client` on the default model (HRN-2x5x3x, m=8,
//! 26,112 ReLUs, 44.5M MACs) on the 2-core development machine: 16 µs per ReLU (server garbling + OT
//! 0.31 s offline plus 0.11 s online GC) and 20 ns per MAC (HE 0.93 s; larger layers amortise better:
//! HRN-5x5x3x measures 10 ns/MAC). Both are flags of every `pi-opt` subcommand that prints costs.

use serde::Serialize;

/// Measured default: total GC cost per ReLU, in microseconds.
pub const DEFAULT_US_PER_RELU: f64 = 16.0;
/// Measured default: HE cost per multiply-accumulate, in nanoseconds.
pub const DEFAULT_NS_PER_MAC: f64 = 20.0;

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
        assert!((c.gc_seconds - 26_112.0 * 16e-6).abs() < 1e-9);
        assert!((c.he_seconds - 44_535_232.0 * 20e-9).abs() < 1e-9);
        assert!((c.total_seconds - (c.gc_seconds + c.he_seconds)).abs() < 1e-12);
    }
}
