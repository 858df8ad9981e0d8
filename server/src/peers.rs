//! Connections per client address: a peer may hold at most `limit` connections at once
//! (pending and in session), so one address cannot take every slot.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts of open connections per IP address.
pub struct Peers {
    limit: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; dropping it gives the place back.
pub struct PeerGuard {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// A table allowing `limit` connections per address (0: unlimited).
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(Peers {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or refuses it when the address is at its limit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<PeerGuard> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if self.limit > 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(PeerGuard {
            peers: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        let mut open = self.peers.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_at_its_limit_is_refused_until_a_connection_ends() {
        let peers = Peers::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = peers.admit(ip).unwrap();
        let _b = peers.admit(ip).unwrap();
        assert!(peers.admit(ip).is_none());
        assert!(peers.admit("10.0.0.2".parse().unwrap()).is_some());
        drop(a);
        assert!(peers.admit(ip).is_some());
        assert!(Peers::new(0).admit(ip).is_some());
    }
}
