//! How the client reaches the server: address, TLS (or explicit plaintext) and timeouts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use pi_net::{ClientSecurity, ClientTls, ConnectOptions};

/// Where the server is, how to authenticate it, and how long to wait for it.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Server address (a host name is resolved).
    #[arg(long, default_value = "127.0.0.1:4433", value_name = "HOST:PORT")]
    pub connect: String,
    /// CA certificate (PEM) that signed the server's certificate: the server is authenticated
    /// against it over TLS 1.3.
    #[arg(long, value_name = "CA.pem")]
    pub tls_ca: Option<PathBuf>,
    /// Name the server's certificate must carry (default: the host part of --connect).
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_server_name: Option<String>,
    /// Client certificate (PEM) for servers that require one (--tls-client-ca on the server).
    #[arg(long, value_name = "CERT.pem", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connect over plain TCP without TLS: the server is not authenticated and anyone on the
    /// path can read or alter the session (frames carry checks against accidents only).
    #[arg(long, conflicts_with_all = ["tls_ca", "tls_server_name", "tls_cert", "tls_key"])]
    pub insecure_plaintext: bool,
    /// Seconds to connect and finish the TLS handshake.
    #[arg(long, default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub connect_timeout: u64,
    /// Seconds one read or write may wait for the server without moving a byte.
    #[arg(long, alias = "read-timeout", default_value_t = 120, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout: u64,
    /// Seconds the whole session may take (default: no limit beyond the idle timeout).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub session_timeout: Option<u64>,
}

impl ConnectArgs {
    /// The transport options, with the TLS files read and checked.
    pub fn options(&self) -> anyhow::Result<ConnectOptions> {
        let security = match (&self.tls_ca, self.insecure_plaintext) {
            (Some(ca), false) => {
                let identity = match (&self.tls_cert, &self.tls_key) {
                    (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                    _ => None,
                };
                ClientSecurity::Tls {
                    tls: ClientTls::from_files(ca, identity).context("setting up TLS")?,
                    server_name: self.tls_server_name.clone(),
                }
            }
            (None, true) => ClientSecurity::Plaintext,
            _ => bail!(
                "pi-client needs --tls-ca CA.pem (the CA that signed the server's certificate), \
                 or --insecure-plaintext for a server started with --insecure-plaintext"
            ),
        };
        Ok(ConnectOptions {
            security,
            connect_timeout: Duration::from_secs(self.connect_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
        })
    }

    /// The session timeout, if any.
    pub fn session_timeout(&self) -> Option<Duration> {
        self.session_timeout.map(Duration::from_secs)
    }
}
