//! Estimated private-inference cost of a network.
//!
//! * [`Timing`] (the default): the protocol's own counts ([`protocol::cost::CostProfile`]): every
//!   linear layer's HE block plan for that shape (ciphertexts, products, key switches, replies,
//!   uncached kernels), every garbled circuit's AND gates (ReLUs, max-pool comparisons, caps), the
//!   online evaluation of the linear layers in the clear, priced with the figures measured on this
//!   host ([`protocol::cost::HostModel`]: the same HE operation costs the HE planner weighs).
//! * [`CostModel`] (flat, `--us-per-relu` / `--ns-per-mac`): ReLUs × per-ReLU cost plus MACs ×
//!   per-MAC cost, for quick what-ifs on architectures that are never built.

use models::fixed::FixedConfig;
use models::Model;
use protocol::cost::{CostProfile, Estimate, HostModel};
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

/// How a planned estimate is priced: the host's measured figures, the server's kernel cache and
/// the client's memory budget for garbled material (both as the binaries default to on this host
/// unless set).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// The host's measured costs (`protocol::cost::measure_host_model`, cached by `pi-opt`).
    pub host: HostModel,
    /// Bytes of NTT-form kernels the server caches across sessions (`pi-server --kernel-cache-mib`).
    pub kernel_cache_bytes: usize,
    /// Bytes of garbled material the client keeps in memory (`pi-client --gc-memory-mib`).
    pub gc_memory_bytes: u64,
}

impl Default for Timing {
    /// The development machine's figures and this host's default budgets (tests, library use).
    fn default() -> Self {
        Timing::for_host(HostModel::default())
    }
}

/// The planned estimate with its parts.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedCost {
    /// HE seconds (key setup and every layer's exchange, wall).
    pub he_seconds: f64,
    /// Garbled-circuit seconds (OT, garbling, transfer, evaluation, online labels, wall).
    pub gc_seconds: f64,
    /// Online linear layers in the clear.
    pub online_linear_seconds: f64,
    /// Garbled material through the client's temporary file.
    pub spill_seconds: f64,
    /// The sum (wall seconds, both parties on this host).
    pub total_seconds: f64,
    /// CPU seconds of both parties.
    pub cpu_seconds: f64,
    /// The estimate with its per-layer times.
    pub estimate: Estimate,
    /// The counts it was priced from.
    pub profile: CostProfile,
    /// The figures used.
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
            gc_seconds: self.gc_seconds + self.spill_seconds,
            he_seconds: he,
            total_seconds: self.total_seconds,
        }
    }
}

impl Timing {
    /// `host`'s figures with the binaries' default budgets on this host.
    pub fn for_host(host: HostModel) -> Self {
        Timing {
            host,
            kernel_cache_bytes: protocol::default_kernel_cache_bytes(),
            gc_memory_bytes: protocol::default_gc_spill().memory_bytes,
        }
    }

    /// Prices a cost profile.
    pub fn estimate(&self, profile: CostProfile) -> PlannedCost {
        let e = self.host.estimate(&profile, self.gc_memory_bytes);
        PlannedCost {
            he_seconds: e.he_seconds,
            gc_seconds: e.gc_seconds,
            online_linear_seconds: e.online_linear_seconds,
            spill_seconds: e.spill_seconds,
            total_seconds: e.total_seconds,
            cpu_seconds: e.cpu_seconds,
            estimate: e,
            profile,
            timing: self.clone(),
        }
    }

    /// Compiles `model` as the protocol would (format `config`, planned with this host's HE
    /// operation costs as a server here announces them) and prices one inference.
    pub fn estimate_model(
        &self,
        model: &Model,
        config: &FixedConfig,
    ) -> Result<PlannedCost, OptError> {
        let program = Program::for_client(model.clone(), *config)
            .and_then(|p| p.with_he_costs(self.host.he))
            .map_err(|e| OptError::Invalid(format!("compiling {}: {e}", model.name)))?;
        let profile = program
            .cost_profile(self.kernel_cache_bytes)
            .map_err(|e| OptError::Invalid(format!("planning {}: {e}", model.name)))?;
        Ok(self.estimate(profile))
    }
}

/// How reports price a network: flat constants, or the protocol's plan with measured timing.
#[derive(Clone, Debug, PartialEq)]
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
                protocol::cost::default_relu().and_gates() as f64 * t.host.relu.gc_us_per_and
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
            Pricing::Planned(t) => {
                let h = &t.host;
                format!(
                    "est. PI = each layer's HE block plan at this host's operation costs (product {:.1} µs, \
                     key switch {:.0} µs, input {:.0} µs, {} threads) + {:.0} ns per AND gate + {:.2} ns \
                     per MAC online [{}; --host-costs, or --us-per-relu / --ns-per-mac for flat constants]",
                    h.he.product_ns as f64 / 1e3,
                    h.he.key_switch_ns as f64 / 1e3,
                    (h.he.encrypt_ns + h.he.parse_ns) as f64 / 1e3,
                    h.threads,
                    h.relu.gc_us_per_and * 1e3,
                    h.clear_ns_per_mac,
                    h.source
                )
            }
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
