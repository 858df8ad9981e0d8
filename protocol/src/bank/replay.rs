//! The record of used ticket ids that makes every banked set single-use.
//!
//! The server calls [`ReplayGuard::consume`] after a ticket opened and before it sends anything
//! of the online phase; a second use of the same id is refused. Ids are kept until their ticket
//! expires (a ticket is refused after its expiry anyway). A guard that cannot answer is an error,
//! and the server then refuses the online phase rather than risk a reuse.

use std::collections::HashMap;
use std::sync::Mutex;

/// The replay store could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("replay store {store} unavailable: {reason}")]
pub struct ReplayError {
    /// Which store (path or URL).
    pub store: String,
    /// What failed.
    pub reason: String,
}

/// A set of used ticket ids, each kept until its expiry.
pub trait ReplayGuard: Send + Sync {
    /// Records `id` as used until `expires` (unix seconds): `Ok(true)` on its first use,
    /// `Ok(false)` when it was used before. Must be atomic across every server sharing the store
    /// and durable before it returns.
    fn consume(&self, id: &[u8; 16], expires: u64, now: u64) -> Result<bool, ReplayError>;

    /// Where the ids are kept (for logs and errors).
    fn describe(&self) -> String;
}

/// Ids in this process's memory: right for a server whose ticket key lives only in memory too
/// (its tickets die with the process, and so does the need to remember them).
#[derive(Default)]
pub struct MemoryReplay {
    ids: Mutex<HashMap<[u8; 16], u64>>,
}

impl ReplayGuard for MemoryReplay {
    fn consume(&self, id: &[u8; 16], expires: u64, now: u64) -> Result<bool, ReplayError> {
        let mut ids = self.ids.lock().map_err(|_| ReplayError {
            store: self.describe(),
            reason: "lock poisoned".into(),
        })?;
        if ids.len() > 4096 {
            ids.retain(|_, &mut e| e > now);
        }
        Ok(ids.insert(*id, expires).is_none())
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_guard_refuses_a_second_use() {
        let g = MemoryReplay::default();
        assert!(g.consume(&[1; 16], 100, 10).unwrap());
        assert!(!g.consume(&[1; 16], 100, 10).unwrap());
        assert!(g.consume(&[2; 16], 100, 10).unwrap());
    }
}
