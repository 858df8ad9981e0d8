//! Replay stores: where the server records used ticket ids ([`protocol::bank::replay::ReplayGuard`]).
//!
//! `--replay-store PATH` opens an embedded redb database (crash-safe: every use is committed
//! durably before the online phase starts); `--replay-store redis://HOST:PORT` uses Redis
//! (`SET key 1 NX EXAT expiry`, atomic across replicas).

mod embedded;
mod redis_store;

use std::path::Path;
use std::sync::Arc;

use protocol::bank::replay::ReplayGuard;

pub use embedded::RedbReplay;
pub use redis_store::RedisReplay;

use crate::BankError;

/// Opens the replay store named by `spec`: a `redis://` URL or a file path.
pub fn open(spec: &str) -> Result<Arc<dyn ReplayGuard>, BankError> {
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        Ok(Arc::new(RedisReplay::connect(spec)?))
    } else {
        Ok(Arc::new(RedbReplay::open(Path::new(spec))?))
    }
}
