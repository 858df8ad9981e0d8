//! Session-level messages (the garbling and HE layers frame their own).

use serde::{Deserialize, Serialize};

use crate::public_model::PublicModel;

/// Version of the wire protocol; both sides must agree.
pub const PROTOCOL_VERSION: u32 = 5;

/// First message of a session, client → server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientHello {
    pub version: u32,
    /// Number of inferences this session will preprocess and then run.
    pub batch: u32,
}

/// Server → client reply: the public architecture (no weights) and the fixed-point configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ServerHello {
    Accept { version: u32, model: PublicModel },
    Reject { reason: String },
}

/// Online, client → server: the quantised input minus the client's input mask.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaskedInput {
    pub values: Vec<u64>,
}

/// Online, server → client: the server's share of the logits and its own timings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputShare {
    pub values: Vec<u64>,
    /// Seconds the server spent on linear layers in the clear.
    pub linear_seconds: f64,
    /// Seconds the server spent in the online garbled-circuit phase.
    pub gc_seconds: f64,
}

/// Offline, server → client: the server finished preprocessing one inference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineDone {
    pub he_seconds: f64,
    /// Garbling (GC layers).
    pub garble_seconds: f64,
    /// OT extension and silent OT (both protocols' OTs).
    pub ot_seconds: f64,
}
