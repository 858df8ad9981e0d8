//! Framed transport shared by every protocol phase: TLS or plaintext, deadlines, frame limits.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes (plus a 16-byte
//! integrity check on plaintext connections, [`check`]). Every read is bounded by the current
//! phase's maximum frame size, and memory grows only as a frame's bytes arrive; every byte
//! crossing the channel is counted so reports can state traffic per phase. Connections between
//! processes ([`stream`]) run TLS 1.3 ([`tls`]) unless plaintext is asked for explicitly, and
//! every read and write honours the connection's [`Deadlines`] (idle timeout, phase deadline,
//! session deadline, cancellation). A side that ends a session can send its reason in an
//! abort frame; the peer reads it as [`NetError::Aborted`].

pub mod bulk;
mod channel;
pub mod check;
mod deadline;
#[cfg(any(test, feature = "dev-cert"))]
pub mod devcert;
mod error;
pub mod stream;
pub mod tls;

pub use channel::{
    loopback_pair, Channel, Counters, TcpChannel, DEFAULT_MAX_FRAME, MAX_ABORT_REASON,
};
pub use deadline::{Cancel, DeadlineStream, Deadlines, Expired, POLL_SLICE};
pub use error::NetError;
pub use stream::{
    accept, connect, ClientSecurity, ConnectOptions, NetChannel, NetReader, NetWriter,
    ServerSecurity,
};
pub use tls::{ClientTls, ServerTls};
#[cfg(test)]
mod tests;
