use pi_net::NetError;

/// Everything that can go wrong while garbling, transferring or evaluating ReLU circuits.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// The transport failed, the peer closed, or a frame did not decode.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A `ReluParams` (or another parameter) is outside what the circuits support.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A buffer, list or message had the wrong length or count.
    #[error("length mismatch in {what}: expected {expected}, got {got}")]
    Length {
        /// Which buffer or list.
        what: &'static str,
        /// The length this side derived from the circuit description.
        expected: usize,
        /// The length that arrived.
        got: usize,
    },
    /// A frame carried a different message kind than this phase expects.
    #[error("unexpected message: expected {expected}, got tag {got:#04x}")]
    UnexpectedMessage {
        /// The message this phase waits for.
        expected: &'static str,
        /// The tag byte that arrived.
        got: u8,
    },
    /// The two parties disagree on the circuit list, a chunk index or the online position.
    #[error("parties out of step: {0}")]
    Desync(String),
    /// A chunk's digest does not match its contents (corrupted or tampered in transit).
    #[error("integrity check failed for {what} {index}")]
    Integrity {
        /// Which kind of chunk.
        what: &'static str,
        /// The chunk's index (chunk number or first circuit).
        index: u64,
    },
    /// A base-OT message held bytes that are not a valid group element.
    #[error("invalid curve point in base OT message {0}")]
    BadPoint(usize),
    /// Stored (banked) material is missing, truncated or damaged.
    #[error("stored material: {0}")]
    Storage(String),
    /// More circuits were requested online than remain preprocessed (never reused).
    #[error("preprocessed ReLU circuits exhausted: requested {requested}, remaining {remaining}")]
    Exhausted {
        /// Circuits asked for.
        requested: usize,
        /// Circuits left.
        remaining: usize,
    },
}
