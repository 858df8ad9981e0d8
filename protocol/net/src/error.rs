use std::io;

/// Errors raised while moving frames between the parties.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The underlying socket failed (includes read timeouts).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The peer announced a frame larger than this side accepts.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// The peer closed the connection.
    #[error("peer closed the connection")]
    Closed,
    /// A frame did not decode as the expected message.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A frame decoded, but was not the message this phase expects.
    #[error("unexpected message: expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
}
