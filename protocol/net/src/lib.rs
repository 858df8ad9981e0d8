//! Framed, byte-counted transport shared by every protocol phase.
//!
//! A frame is a 4-byte little-endian length followed by that many bytes. Every
//! read is bounded by a maximum frame size so a peer cannot make us allocate
//! without limit, and every byte crossing the channel is counted so reports can
//! state traffic per phase.

mod channel;
mod error;

pub use channel::{loopback_pair, Channel, Counters, TcpChannel, DEFAULT_MAX_FRAME};
pub use error::NetError;
