//! The embedded replay store: a redb database on local disk.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::bank::replay::{ReplayError, ReplayGuard};
use redb::{Database, ReadableDatabase, TableDefinition};

use crate::BankError;

/// Used ticket id → unix second until which it must be kept.
const USED: TableDefinition<[u8; 16], u64> = TableDefinition::new("used_tickets");
/// Expired ids are dropped every this many uses.
const PURGE_EVERY: u64 = 256;

/// Used ticket ids in a redb file (ACID, crash-safe, one writer at a time).
pub struct RedbReplay {
    db: Database,
    path: String,
    uses: AtomicU64,
}

impl RedbReplay {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, BankError> {
        let p = path.display().to_string();
        let err = |reason: String| BankError::Replay {
            store: p.clone(),
            reason,
        };
        let db = Database::create(path).map_err(|e| err(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| err(e.to_string()))?;
        txn.open_table(USED).map_err(|e| err(e.to_string()))?;
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(RedbReplay {
            db,
            path: p,
            uses: AtomicU64::new(0),
        })
    }

    /// Ids currently recorded (tests and diagnostics).
    pub fn len(&self) -> Result<u64, BankError> {
        use redb::ReadableTableMetadata;
        let err = |e: String| BankError::Replay {
            store: self.path.clone(),
            reason: e,
        };
        let txn = self.db.begin_read().map_err(|e| err(e.to_string()))?;
        let t = txn.open_table(USED).map_err(|e| err(e.to_string()))?;
        t.len().map_err(|e| err(e.to_string()))
    }

    /// Whether no id is recorded.
    pub fn is_empty(&self) -> Result<bool, BankError> {
        Ok(self.len()? == 0)
    }
}

impl ReplayGuard for RedbReplay {
    fn consume(&self, id: &[u8; 16], expires: u64, now: u64) -> Result<bool, ReplayError> {
        let err = |e: String| ReplayError {
            store: self.path.clone(),
            reason: e,
        };
        let txn = self.db.begin_write().map_err(|e| err(e.to_string()))?;
        let fresh = {
            let mut t = txn.open_table(USED).map_err(|e| err(e.to_string()))?;
            let old = t
                .insert(id, expires)
                .map_err(|e| err(e.to_string()))?
                .map(|g| g.value());
            if self.uses.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
                t.retain(|_, e| e > now).map_err(|e| err(e.to_string()))?;
            }
            // An id whose expiry passed could only come with an expired ticket, which is refused
            // before this point; any recorded id is a reuse.
            old.is_none()
        };
        // Durable (fsync) before the online phase starts.
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(fresh)
    }

    fn describe(&self) -> String {
        format!("redb:{}", self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_reopen_and_expired_ones_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.redb");
        {
            let r = RedbReplay::open(&path).unwrap();
            assert!(r.consume(&[1; 16], 1000, 10).unwrap());
            assert!(!r.consume(&[1; 16], 1000, 10).unwrap());
            assert!(r.consume(&[2; 16], 20, 10).unwrap());
        }
        let r = RedbReplay::open(&path).unwrap();
        assert!(
            !r.consume(&[1; 16], 1000, 11).unwrap(),
            "a restart forgot a used id"
        );
        assert_eq!(r.len().unwrap(), 2);
        for i in 0..PURGE_EVERY as u8 {
            r.consume(&[100u8.wrapping_add(i); 16], 30, 25).unwrap();
        }
        // id 2 expired at 20 and was purged at some use after that; id 1 is kept.
        assert!(r.len().unwrap() < 2 + PURGE_EVERY);
        assert!(!r.consume(&[1; 16], 1000, 26).unwrap());
    }
}
