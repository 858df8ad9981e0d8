//! Banked preprocessing on disk, for the `pi-client` and `pi-server` binaries (`protocol` itself
//! never touches files):
//! * [`store`]: the client's bank, a directory of set files written as a stream, claimed before
//!   use, deleted before the online phase sends anything;
//! * [`key`]: the server's ticket key file, generated when absent;
//! * [`replay`]: where the server records used ticket ids — an embedded crash-safe database on
//!   local disk (redb) or Redis, shared by replicas.

pub mod key;
pub mod replay;
pub mod store;

pub use store::{DirBank, SetStatus, StoreStatus};

/// Errors of the on-disk bank, the key file and the replay stores.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file holds something other than what it should.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// A replay store could not be opened.
    #[error("replay store {store}: {reason}")]
    Replay { store: String, reason: String },
}

impl From<BankError> for protocol::ProtocolError {
    fn from(e: BankError) -> Self {
        protocol::ProtocolError::Bank(e.to_string())
    }
}
