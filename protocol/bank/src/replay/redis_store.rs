//! The shared replay store: Redis, for several server replicas behind a load balancer.

use std::sync::Mutex;
use std::time::Duration;

use protocol::bank::replay::{ReplayError, ReplayGuard};

use crate::BankError;

/// Time allowed to connect to Redis and for each command.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Used ticket ids as Redis keys `pi-bank:used:<id>` that expire with their ticket.
pub struct RedisReplay {
    client: redis::Client,
    url: String,
    conn: Mutex<Option<redis::Connection>>,
}

impl RedisReplay {
    /// A store at `url` (`redis://HOST:PORT[/DB]`); connecting happens on first use, so a server
    /// starts while Redis is down and refuses banked work until it is back.
    pub fn connect(url: &str) -> Result<Self, BankError> {
        let client = redis::Client::open(url).map_err(|e| BankError::Replay {
            store: url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(RedisReplay {
            client,
            url: url.to_string(),
            conn: Mutex::new(None),
        })
    }

    fn set_nx(
        &self,
        conn: &mut redis::Connection,
        key: &str,
        expires: u64,
    ) -> redis::RedisResult<bool> {
        let reply: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("EXAT")
            .arg(expires)
            .query(conn)?;
        Ok(reply.is_some())
    }

    fn fresh_connection(&self) -> redis::RedisResult<redis::Connection> {
        let c = self.client.get_connection_with_timeout(TIMEOUT)?;
        c.set_read_timeout(Some(TIMEOUT))?;
        c.set_write_timeout(Some(TIMEOUT))?;
        Ok(c)
    }
}

impl ReplayGuard for RedisReplay {
    fn consume(&self, id: &[u8; 16], expires: u64, _now: u64) -> Result<bool, ReplayError> {
        let err = |e: String| ReplayError {
            store: self.url.clone(),
            reason: e,
        };
        let key = format!("pi-bank:used:{}", protocol::bank::ticket::hex(id));
        let mut guard = self.conn.lock().map_err(|_| err("lock poisoned".into()))?;
        // One retry on a fresh connection: a cached connection may have been closed by a Redis
        // restart. Should the first SET have reached Redis and only its reply been lost, the
        // retry sees the id as used and the ticket is refused: a set may be lost, never reused.
        if let Some(conn) = guard.as_mut() {
            match self.set_nx(conn, &key, expires) {
                Ok(fresh) => return Ok(fresh),
                Err(e) if e.is_io_error() || e.is_connection_dropped() => *guard = None,
                Err(e) => return Err(err(e.to_string())),
            }
        }
        let mut conn = self.fresh_connection().map_err(|e| err(e.to_string()))?;
        let fresh = self
            .set_nx(&mut conn, &key, expires)
            .map_err(|e| err(e.to_string()));
        if fresh.is_ok() {
            *guard = Some(conn);
        }
        fresh
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}
