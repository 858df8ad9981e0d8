//! Banked preprocessing on the server: the ticket key, the ticket lifetime and the replay store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use protocol::bank::replay::MemoryReplay;
use protocol::bank::ticket::TicketKey;
use protocol::Banking;
use tracing::{info, warn};

/// How the server seals tickets for banked sets and remembers the used ones.
#[derive(Args, Debug, Clone)]
pub struct BankArgs {
    /// Ticket key file (64 hex digits, mode 0600), generated when absent. Replicas that share it
    /// accept each other's tickets; a new file (rotation) invalidates every earlier ticket.
    /// Without it the key lives in memory only: tickets die with the process.
    #[arg(long, value_name = "FILE")]
    pub ticket_key: Option<PathBuf>,
    /// Where used ticket ids are recorded: a file path (embedded redb database) or
    /// redis://HOST:PORT (shared by replicas). Default: FILE.replay.redb next to --ticket-key, or
    /// memory when there is no key file.
    #[arg(long, value_name = "PATH|redis://HOST:PORT")]
    pub replay_store: Option<String>,
    /// Hours a banked set's ticket stays valid.
    #[arg(long, default_value_t = 168, value_name = "HOURS",
          value_parser = clap::value_parser!(u64).range(1..=24 * 366))]
    pub ticket_ttl_hours: u64,
}

impl BankArgs {
    /// The key, the lifetime and the replay store, as configured.
    pub fn banking(&self) -> anyhow::Result<Banking> {
        let ttl = Duration::from_secs(self.ticket_ttl_hours * 3600);
        let (key, default_store) = match &self.ticket_key {
            Some(path) => {
                let (key, generated) = pi_bank::key::load_or_generate(path)
                    .with_context(|| format!("ticket key {}", path.display()))?;
                if generated {
                    info!(path = %path.display(), key_id = %key.id_hex(), "generated a new ticket key");
                }
                let mut store = path.clone().into_os_string();
                store.push(".replay.redb");
                (key, Some(store.to_string_lossy().into_owned()))
            }
            None => (TicketKey::generate(), None),
        };
        let replay: Arc<dyn protocol::bank::replay::ReplayGuard> =
            match self.replay_store.clone().or(default_store) {
                Some(spec) => pi_bank::replay::open(&spec)
                    .with_context(|| format!("opening the replay store {spec}"))?,
                None => {
                    if self.ticket_key.is_none() {
                        warn!("no --ticket-key: banked sets are valid until this server stops");
                    }
                    Arc::new(MemoryReplay::default())
                }
            };
        Ok(Banking::new(key, ttl, replay))
    }
}
