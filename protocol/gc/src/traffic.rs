//! What the garbled-circuit protocol puts on the wire, computed from the circuit list alone, so
//! a session can bound each phase's frames and time before any byte arrives.

use crate::msg::{DIGEST, HEADER};
use crate::session::{HELLO_LEN, ONLINE_FRAME};
use crate::{CircuitSpec, OfflineConfig};

/// Payload bytes, frames and largest frame of one direction of one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Payload bytes (frame headers excluded).
    pub bytes: u64,
    /// Number of frames.
    pub frames: u64,
    /// The largest single frame.
    pub max_frame: usize,
}

impl Flow {
    fn add(&mut self, len: usize) {
        self.bytes += len as u64;
        self.frames += 1;
        self.max_frame = self.max_frame.max(len);
    }
}

/// Traffic of one offline phase and of its online phase (client → server is "up").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcTraffic {
    pub offline_up: Flow,
    pub offline_down: Flow,
    /// Online, when all circuits run in one call (a session that splits them into several
    /// calls sends a few more, smaller frames: at most one more frame each way per call).
    pub online_up: Flow,
    pub online_down: Flow,
}

/// The traffic of garbling and evaluating one circuit per entry of `params`.
pub fn traffic(params: &[CircuitSpec], cfg: &OfflineConfig) -> GcTraffic {
    let mut t = GcTraffic::default();
    t.offline_down.add(1 + HELLO_LEN);
    if params.is_empty() {
        return t;
    }
    // Base OT (the client is its sender) and the SoftSpoken GGM level sums.
    t.offline_up.add(1 + 32);
    t.offline_down.add(1 + 128 * 32);
    t.offline_up.add(1 + 128 * 32);
    let blocks = 128 / cfg.ot_k.clamp(1, 128) as usize;
    for chunk in params.chunks(cfg.chunk_circuits.max(1)) {
        let client_bits: usize = chunk.iter().map(|p| p.client_input_bits()).sum();
        let words = client_bits.div_ceil(128);
        t.offline_up.add(HEADER + blocks * words * 16 + DIGEST);
        let tables: usize = chunk.iter().map(|p| p.table_bytes()).sum();
        t.offline_down.add(HEADER + tables + DIGEST);
    }
    for frame in params.chunks(ONLINE_FRAME) {
        let labels: usize = frame.iter().map(|p| p.server_input_bits() * 16).sum();
        t.online_down.add(HEADER + labels + DIGEST);
        let bits: usize = frame.iter().map(|p| p.output_bits()).sum();
        t.online_up.add(HEADER + bits.div_ceil(8) + DIGEST);
    }
    t
}
