//! How the client reaches the server: address and timeouts (transport options live here).

use std::time::Duration;

use clap::Args;

/// Where the server is and how long to wait for it.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:4433", value_name = "HOST:PORT")]
    pub connect: String,
    /// Seconds a read may block before giving up on the server.
    #[arg(long, default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub read_timeout: u64,
}

impl ConnectArgs {
    /// The read timeout as a duration.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout)
    }
}
