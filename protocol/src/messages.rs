//! Session-level messages (the garbling and HE layers frame their own).

use serde::{Deserialize, Serialize};

use crate::public_model::PublicModel;

/// Version of the wire protocol; both sides must agree.
pub const PROTOCOL_VERSION: u32 = 8;

/// What a session does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionMode {
    /// `batch` offline phases, then `batch` online phases (the one-shot client).
    Inline,
    /// `batch` offline phases, each ending with a sealed ticket; nothing online.
    Preprocess,
    /// One online phase on banked material, after the server accepted its ticket.
    Redeem,
}

/// First message of a session, client → server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientHello {
    pub version: u32,
    /// Number of inferences this session will preprocess (Inline, Preprocess); 1 for Redeem.
    pub batch: u32,
    pub mode: SessionMode,
    /// Redeem: the public-model fingerprint the client's banked set was made for; the server
    /// rejects the hello (and reads no ticket) when it serves another model.
    pub bank_model: Option<[u8; 32]>,
}

/// Preprocess, server → client after `OfflineDone`: the set's sealed ticket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TicketIssued {
    pub ticket: Vec<u8>,
}

/// Redeem, client → server: the ticket of the banked set it wants to use, and the ReLU plan the
/// set was made with (its ticket seals the plan's digest; the online phase runs that plan).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TicketOffer {
    pub ticket: Vec<u8>,
    pub relu_protocols: Vec<crate::nonlinear::ReluProtocol>,
}

/// Redeem, server → client: whether the online phase runs on that set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TicketVerdict {
    /// The ticket is recorded as used; the online phase follows.
    Accepted,
    /// Refused. `retry`: the ticket was not consumed and is still good (e.g. the replay store
    /// was unreachable), so the client keeps the set; otherwise the set is dead.
    Refused { reason: String, retry: bool },
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
