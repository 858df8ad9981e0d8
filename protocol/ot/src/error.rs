use pi_gc::GcError;
use pi_net::NetError;

/// Everything that can go wrong in silent OT or the OT-based ReLU.
#[derive(Debug, thiserror::Error)]
pub enum OtError {
    /// The transport failed, the peer closed, or a frame did not decode.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The base OT or the SoftSpoken bootstrap (in `pi-gc`) failed.
    #[error("OT bootstrap: {0}")]
    Bootstrap(#[from] GcError),
    /// A parameter is outside what the protocol supports.
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A message had the wrong length.
    #[error("length mismatch in {what}: expected {expected} bytes, got {got}; the peer runs a different protocol version or parameter list")]
    Length {
        /// Which message.
        what: &'static str,
        /// The length this side derived from the public parameters.
        expected: usize,
        /// The length that arrived.
        got: usize,
    },
    /// A frame carried a different message kind than this step expects.
    #[error(
        "unexpected message: expected {expected}, got tag {got:#04x}; the parties are out of step"
    )]
    UnexpectedMessage {
        /// The message this step waits for.
        expected: &'static str,
        /// The tag byte that arrived.
        got: u8,
    },
    /// The parties disagree on the parameter list, a position or a counter.
    #[error("parties out of step: {0}")]
    Desync(String),
    /// A frame's digest does not match its contents (corrupted or tampered in transit).
    #[error("integrity check failed for {what} {index}: the frame was corrupted in transit")]
    Integrity {
        /// Which kind of frame.
        what: &'static str,
        /// The frame's index.
        index: u64,
    },
    /// More ReLUs were requested online than remain preprocessed (never reused).
    #[error("preprocessed OT ReLUs exhausted: requested {requested}, remaining {remaining}; run another offline phase")]
    Exhausted {
        /// ReLUs asked for.
        requested: usize,
        /// ReLUs left.
        remaining: usize,
    },
}
