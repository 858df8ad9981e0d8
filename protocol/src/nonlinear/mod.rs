//! One interface for the two ReLU protocols, chosen per ReLU layer (docs/protocol.md, "Choosing
//! the ReLU protocol"):
//! * garbled circuits (`pi-gc`): 3.8 KB per ReLU, one round trip per layer online;
//! * OT-based comparisons on silent OT (`pi-ot`): ~40 B per ReLU, ~15 round trips per layer.
//!
//! The server decides (`gc`, `ot`, or `auto` from host-measured compute costs and the declared
//! link) and announces one protocol per ReLU layer in the public model; the client follows.
//! Both protocols compute the same function bit for bit, so the choice never changes a result.

mod auto;
mod banked;
mod calibrate;
mod relus;

use serde::{Deserialize, Serialize};

pub use auto::{estimate_online, plan_layers, plan_layers_banked, LayerEstimate, Link, ReluCosts};
pub use banked::plan_digest;
pub(crate) use banked::{check_stored_ot, plan_counts, BankedClientRelus};
pub(crate) use calibrate::gc_seconds as gc_pipeline_seconds;
pub use calibrate::measure_relu_costs;
pub(crate) use relus::{ClientRelus, ReluOfflineTimes, ServerRelus};

/// The protocol that runs one ReLU layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReluProtocol {
    /// Garbled circuits (`pi-gc`).
    Gc,
    /// OT-based comparisons on Ferret silent OT (`pi-ot`).
    Ot,
}

impl ReluProtocol {
    /// Lower-case name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            ReluProtocol::Gc => "gc",
            ReluProtocol::Ot => "ot",
        }
    }
}

/// The server's deployment choice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReluChoice {
    /// Every layer with garbled circuits.
    Gc,
    /// Every layer with OT-based comparisons.
    Ot,
    /// Per layer, whichever the cost model expects to finish sooner on the declared link.
    Auto,
    /// An explicit protocol for each ReLU layer (experiments and tests).
    PerLayer(Vec<ReluProtocol>),
}
