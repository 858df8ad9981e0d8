//! Estimated private-inference cost of a network.
//!
//! * [`Timing`] (the default): the protocol's own counts ([`protocol::cost::CostProfile`]): every
//!   linear layer's HE cost as the HE block planner plans it for that shape, every garbled
//!   circuit's AND gates and OTs (ReLUs, max-pool comparisons, caps), and the online evaluation of
//!   the linear layers in the clear, priced with constants measured end to end with `pi-server` and
//!   `pi-client` over loopback on the 2-core development machine (`scripts/zoo-table.sh`).
//! * [`CostModel`] (flat, `--us-per-relu` / `--ns-per-mac`): ReLUs × per-ReLU cost plus MACs ×
//!   per-MAC cost, for quick what-ifs on architectures that are never built.

use models::fixed::FixedConfig;
use models::Model;
use protocol::cost::CostProfile;
use protocol::Program;
use serde::Serialize;

use crate::error::OptError;

/// Flat default: total GC cost per ReLU, in microseconds.
pub const DEFAULT_US_PER_RELU: f64 = 16.0;
/// Flat default: HE cost per multiply-accumulate, in nanoseconds.
pub const DEFAULT_NS_PER_MAC: f64 = 20.0;

/// The per-operation constants of the flat cost model.
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
    /// Microseconds per ReLU used (planned: GC seconds per ReLU-or-comparison circuit).
    pub us_per_relu: f64,
    /// Nanoseconds per MAC used (planned: HE and online linear seconds per MAC).
    pub ns_per_mac: f64,
    /// Garbled circuits (garbling, OT, evaluation, transfer), in seconds.
    pub gc_seconds: f64,
    /// Homomorphic encryption for the linear layers (and, planned, their online evaluation).
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

/// Constants that turn the protocol's counts into seconds (measured; see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Seconds of wall time per second of the HE planner's one-core compute estimate (both
    /// parties, both cores, this machine).
    pub he_scale: f64,
    /// Fixed per-session cost: HE key setup, base OT (seconds).
    pub session_seconds: f64,
    /// Garbling + evaluating + moving one AND gate's table (ns, wall).
    pub ns_per_and: f64,
    /// One OT-extended client input bit (ns, wall).
    pub ns_per_ot: f64,
    /// One server input label online (ns, wall).
    pub ns_per_label: f64,
    /// Online evaluation of the linear layers on the server's share in the clear (ns per MAC).
    pub ns_per_clear_mac: f64,
}

impl Default for Timing {
    fn default() -> Self {
        // Fitted (minimax relative error) to one batch of 23 models run with pi-server/pi-client
        // on the shared 2-core machine (load 2–10): 16 torchvision classifiers at 64×64 and 7
        // CIFAR models (ResNet-18/32/56, VGG-16, three HRNs), `PI_ZOO_NICE="nice -n -20"
        // scripts/zoo-table.sh`: 15 of 23 within ±25%, all within ±45%. The machine's load moves
        // single runs by up to 2×, and HE measures 0.3–0.9× the planner's one-core constants
        // (wide 3×3 convolutions ≈ 0.3×, depthwise and fully connected layers ≈ 0.9×).
        Timing {
            he_scale: 0.4,
            session_seconds: 0.0,
            ns_per_and: 45.0,
            ns_per_ot: 0.0,
            ns_per_label: 250.0,
            ns_per_clear_mac: 1.0,
        }
    }
}

/// The planned estimate with its parts.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedCost {
    /// HE seconds (planner compute × scale + session setup).
    pub he_seconds: f64,
    /// Garbled-circuit seconds (AND gates, OTs, online labels).
    pub gc_seconds: f64,
    /// Online linear layers in the clear.
    pub online_linear_seconds: f64,
    /// The sum.
    pub total_seconds: f64,
    /// The counts it was priced from.
    pub profile: CostProfile,
    /// The constants used.
    pub timing: Timing,
}

impl PlannedCost {
    /// As the flat report type (for tables that print ReLUs, MACs and seconds).
    pub fn pi_cost(&self) -> PiCost {
        let p = &self.profile;
        let circuits = (p.relus + p.comparisons).max(1) as f64;
        let he = self.he_seconds + self.online_linear_seconds;
        PiCost {
            us_per_relu: self.gc_seconds / circuits * 1e6,
            ns_per_mac: if p.macs == 0 {
                0.0
            } else {
                he / p.macs as f64 * 1e9
            },
            gc_seconds: self.gc_seconds,
            he_seconds: he,
            total_seconds: self.total_seconds,
        }
    }
}

impl Timing {
    /// Prices a cost profile.
    pub fn estimate(&self, profile: CostProfile) -> PlannedCost {
        let he = profile.he_compute_ns() * 1e-9 * self.he_scale + self.session_seconds;
        let gc = (profile.and_gates as f64 * self.ns_per_and
            + profile.client_input_bits as f64 * self.ns_per_ot
            + profile.server_input_bits as f64 * self.ns_per_label)
            * 1e-9;
        let online = profile.macs as f64 * self.ns_per_clear_mac * 1e-9;
        PlannedCost {
            he_seconds: he,
            gc_seconds: gc,
            online_linear_seconds: online,
            total_seconds: he + gc + online,
            profile,
            timing: *self,
        }
    }

    /// Compiles `model` as the protocol would (format `config`) and prices one inference.
    pub fn estimate_model(
        &self,
        model: &Model,
        config: &FixedConfig,
    ) -> Result<PlannedCost, OptError> {
        let program = Program::for_client(model.clone(), *config)
            .map_err(|e| OptError::Invalid(format!("compiling {}: {e}", model.name)))?;
        let profile = program
            .cost_profile()
            .map_err(|e| OptError::Invalid(format!("planning {}: {e}", model.name)))?;
        Ok(self.estimate(profile))
    }
}

/// How reports price a network: flat constants, or the protocol's plan with measured timing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pricing {
    /// ReLUs × µs + MACs × ns.
    Flat(CostModel),
    /// Build the network, compile it as the protocol does, price its plan.
    Planned(Timing),
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing::Planned(Timing::default())
    }
}

impl Pricing {
    /// The cost of a built `model` with `relus` ReLUs and `macs` MACs (the default fixed-point
    /// format when planned).
    pub fn price_model(&self, model: &Model, relus: u64, macs: u64) -> Result<PiCost, OptError> {
        match self {
            Pricing::Flat(c) => Ok(c.estimate(relus, macs)),
            Pricing::Planned(t) => Ok(t.estimate_model(model, &FixedConfig::default())?.pi_cost()),
        }
    }

    /// Microseconds per default ReLU (for ReLU budgets from latency targets).
    pub fn us_per_relu(&self) -> f64 {
        match self {
            Pricing::Flat(c) => c.us_per_relu,
            Pricing::Planned(t) => {
                let s = protocol::cost::default_relu();
                (s.and_gates() as f64 * t.ns_per_and
                    + s.client_input_bits() as f64 * t.ns_per_ot
                    + s.server_input_bits() as f64 * t.ns_per_label)
                    * 1e-3
            }
        }
    }

    /// One line describing the constants in use.
    pub fn describe(&self) -> String {
        match self {
            Pricing::Flat(c) => format!(
                "est. PI = ReLUs × {} µs + MACs × {} ns (flat constants: --us-per-relu / --ns-per-mac)",
                c.us_per_relu, c.ns_per_mac
            ),
            Pricing::Planned(t) => format!(
                "est. PI = HE block planner's per-layer cost × {} + {} s setup + {} ns per AND gate,                  {} ns per OT, {} ns per label + {} ns per MAC online (measured; --us-per-relu /                  --ns-per-mac switch to flat constants)",
                t.he_scale, t.session_seconds, t.ns_per_and, t.ns_per_ot, t.ns_per_label,
                t.ns_per_clear_mac
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_model_is_linear() {
        let c = CostModel::default().estimate(26_112, 44_535_232);
        assert!((c.gc_seconds - 26_112.0 * 16e-6).abs() < 1e-9);
        assert!((c.he_seconds - 44_535_232.0 * 20e-9).abs() < 1e-9);
        assert!((c.total_seconds - (c.gc_seconds + c.he_seconds)).abs() < 1e-12);
    }
}
