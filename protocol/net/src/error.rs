use std::io;

use crate::deadline::Expired;

/// Errors raised while moving frames between the parties.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The underlying socket failed.
    #[error("i/o error: {0}")]
    Io(io::Error),
    /// A deadline or the idle timeout passed (the message says which).
    #[error("{0}")]
    Timeout(String),
    /// This side cancelled the connection (e.g. the server is shutting down).
    #[error("connection cancelled: {0}")]
    Cancelled(String),
    /// The peer announced a frame larger than this side accepts in the current phase.
    #[error("frame of {len} bytes exceeds this phase's limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Closed,
    /// The peer ended the session and said why.
    #[error("the peer ended the session: {0}")]
    Aborted(String),
    /// A plaintext frame failed its integrity check, or a frame was malformed.
    #[error("corrupted stream: {0}")]
    Corrupt(String),
    /// A frame did not decode as the expected message.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A frame decoded, but was not the message this phase expects.
    #[error("unexpected message: expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
    /// The TLS handshake or a TLS record failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// This side runs plaintext and the peer answered with TLS.
    #[error(
        "the peer speaks TLS while this side runs with --insecure-plaintext: use TLS on both \
         sides (pi-client --tls-ca CA.pem; pi-server --tls-cert/--tls-key) or \
         --insecure-plaintext on both"
    )]
    PeerSpeaksTls,
    /// The address could not be resolved or connected to.
    #[error("{0}")]
    Connect(String),
    /// A certificate, key or option is unusable.
    #[error("{0}")]
    Config(String),
}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        if let Some(inner) = e.get_ref() {
            if let Some(x) = inner.downcast_ref::<Expired>() {
                return match x {
                    Expired::Cancelled(r) => NetError::Cancelled(r.clone()),
                    other => NetError::Timeout(other.to_string()),
                };
            }
            if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                return NetError::Tls(crate::tls::explain(t));
            }
        }
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                NetError::Timeout("timed out: no data within the socket timeout".into())
            }
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => NetError::Closed,
            _ => NetError::Io(e),
        }
    }
}

impl NetError {
    /// Whether the error is a deadline or timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, NetError::Timeout(_))
    }
}
