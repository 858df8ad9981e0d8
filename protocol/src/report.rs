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
    /// The ReLU layers' share of this phase (both protocols).
    pub relu: ReluPhase,
    /// Bytes of garbled material beyond the client's memory budget (`--gc-memory-mib`), kept in
    /// a temporary file until the online phase.
    #[serde(default)]
    pub gc_spilled_bytes: u64,
}

/// ReLU traffic and time of one phase, with the number of ReLUs each protocol ran.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct ReluPhase {
    /// ReLUs run as garbled circuits.
    pub gc_relus: u64,
    /// ReLUs run with OT-based comparisons.
    pub ot_relus: u64,
    /// Bytes of the ReLU protocols at the client's socket, both directions.
    pub bytes: u64,
    /// Client-side wall time of the ReLU protocols.
    pub seconds: f64,
}

impl ReluPhase {
    /// Bytes per ReLU (0 without ReLUs).
    pub fn bytes_per_relu(&self) -> f64 {
        let n = self.gc_relus + self.ot_relus;
        if n == 0 {
            0.0
        } else {
            self.bytes as f64 / n as f64
        }
    }

    /// Microseconds per ReLU (0 without ReLUs).
    pub fn us_per_relu(&self) -> f64 {
        let n = self.gc_relus + self.ot_relus;
        if n == 0 {
            0.0
        } else {
            self.seconds * 1e6 / n as f64
        }
    }
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
    /// The ReLU layers' share of this phase (both protocols).
    pub relu: ReluPhase,
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
