//! Latency and traffic figures of a session, as seen by the client.

use serde::{Deserialize, Serialize};

/// Offline (input-independent) phase of one inference.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OfflineReport {
    pub seconds: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Client-side wall time of the HE linear-layer correlations.
    pub he_seconds: f64,
    /// Client-side wall time of receiving the garbled circuits.
    pub garble_seconds: f64,
    /// Client-side wall time of the oblivious transfers.
    pub ot_seconds: f64,
    /// Server-side compute time for HE, as reported by the server.
    pub server_he_seconds: f64,
    /// Server-side garbling + OT time, as reported by the server.
    pub server_garble_seconds: f64,
}

/// Online (input-dependent) phase of one inference.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OnlineReport {
    pub seconds: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Server-side time on linear layers in the clear, as reported by the server.
    pub linear_seconds: f64,
    /// Client-side wall time of the ReLU layers (label transfer, evaluation, output bits).
    pub gc_seconds: f64,
}

/// One private inference.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InferenceReport {
    pub prediction: usize,
    pub logits: Vec<f32>,
    pub offline: OfflineReport,
    pub online: OnlineReport,
    pub total_seconds: f64,
}
