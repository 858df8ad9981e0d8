//! `pi-server`'s command line: what to serve, where, how connections are secured, and the
//! limits every connection runs under. Every flag is checked at startup.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use pi_net::{ServerSecurity, ServerTls};
use protocol::{Link, ReluChoice, SessionLimits};

/// Serve private inference of one CNN: clients learn the prediction, never the weights;
/// the server never sees the client's image.
#[derive(Parser, Debug)]
#[command(name = "pi-server", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// ONNX model to serve (default: the embedded HybReNet-2x5x3x, m=8, 32×32×3 input, Stage 1 culled,
    /// Stages 2–4 thinned: 26,112 ReLUs, trained on MNIST digits, 10 classes).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// The graph output to serve when the model has several (default: the first).
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    /// Calibrate the fixed-point format at load on these sample inputs (.npy image or batch, or a
    /// directory); the model is refused if no format fits. Without it, the format stored by
    /// `pi-opt calibrate` is used, or the defaults.
    #[arg(long, value_name = "DIR|FILE.npy")]
    pub calibration_data: Option<PathBuf>,
    /// Address to listen on (a host name such as localhost is resolved).
    #[arg(long, default_value = "127.0.0.1:4433", value_name = "HOST:PORT")]
    pub listen: String,

    /// TLS certificate chain (PEM) the server presents. `pi-server dev-cert` makes a throwaway one.
    #[arg(long, value_name = "CERT.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): only those clients can make the
    /// server spend CPU.
    #[arg(long, value_name = "CA.pem", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Serve plain TCP without TLS: no server authentication and no protection against anyone
    /// on the path (frames carry checks against accidental corruption only). For tests and
    /// trusted networks, e.g. behind a TLS-terminating proxy.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_client_ca"])]
    pub insecure_plaintext: bool,

    /// Sessions served concurrently. Connections that have not yet sent their hello, or wait
    /// for a free slot, do not hold one.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_sessions: u32,
    /// Connections at once that are still in their TLS handshake or hello (further ones are closed).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_pending: u32,
    /// Connections at once (pending and in session) from one client IP address; 0: no limit.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=65536))]
    pub max_per_peer: u32,
    /// Seconds a client that sent its hello may wait for a free slot before it is told the
    /// server is busy.
    #[arg(long, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub queue_timeout: u64,

    /// Seconds a new connection has to finish its TLS handshake and send its hello; also the
    /// slack added to every phase's deadline.
    #[arg(long, default_value_t = 5, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub handshake_timeout: u64,
    /// Seconds one read or write may wait without moving a byte before the session is dropped.
    #[arg(long, alias = "read-timeout", default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// Slowest data rate (KiB/s, both directions together) a session may run at: every phase's
    /// deadline allows its bytes at this rate plus its compute, so a trickling client is cut.
    #[arg(long, default_value_t = 1024, value_name = "KIB_PER_S",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub min_rate_kib: u64,
    /// Upper bound on any session's length in seconds (below the one derived from the model
    /// and the batch).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub max_session_seconds: Option<u64>,
    /// On Ctrl-C or SIGTERM: seconds running sessions get to finish before they are cut (each
    /// client is told the server is shutting down).
    #[arg(long, default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace: u64,

    /// Cap in MiB on any frame from a client, over the per-phase limits derived from the model
    /// (must not be below the model's largest message; checked at startup).
    #[arg(long, default_value_t = 64, value_name = "MIB",
          value_parser = clap::value_parser!(u64).range(1..=2047))]
    pub max_frame_mib: u64,
    /// Most inferences one client may preprocess in one session (--batch on the client).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_batch: u32,
    /// Most sets one `pi-client preprocess` session may bank (--count on the client).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_bank: u32,
    /// Bound declared to clients on every logit (default 2^M of the fixed-point format, 1024);
    /// clients refuse results outside it.
    #[arg(long, value_name = "BOUND")]
    pub logit_bound: Option<f32>,
    /// Link bandwidth (Mbit/s) the whole protocol plans for: the HE block planner weighs compute
    /// against traffic with it (around 100 it packs replies with key switches, on a fast LAN,
    /// e.g. 10000, it uses fewer switches), and `--relu-protocol auto` weighs the ReLU protocols
    /// with it. Clients follow the server. `--he-link-mbps` is the old name.
    #[arg(long, alias = "he-link-mbps", default_value_t = protocol::DEFAULT_HE_LINK_MBPS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub link_mbps: u32,
    /// Link round-trip time (ms) for `--relu-protocol auto`: OT ReLUs take ~15 round trips per
    /// layer, garbled ReLUs one.
    #[arg(long, default_value_t = 1.0)]
    pub link_rtt_ms: f64,
    /// ReLU protocol: `gc` (garbled circuits: one round trip per layer, ~3.8 KB per ReLU), `ot`
    /// (OT-based comparisons on silent OT: ~40 B per ReLU, ~15 round trips per layer) or `auto`
    /// (per layer, from compute costs measured on this host at start and the declared link).
    /// Results are identical either way.
    #[arg(long, value_enum, default_value_t = ReluArg::Auto)]
    pub relu_protocol: ReluArg,
    /// Where the host's measured compute costs are cached (the ReLU protocols' for `auto`, the
    /// HE planner's speed relative to its reference machine); measured again (a few seconds) when
    /// missing or written on another CPU, HE kernel path or pi-server build. Default:
    /// $XDG_CACHE_HOME or ~/.cache, `pi-server/host-costs-v1.json`.
    #[arg(long, value_name = "FILE.json", env = "PI_SERVER_HOST_COSTS")]
    pub host_costs: Option<PathBuf>,
    /// Serve this many sessions (connections that sent a hello), then exit (for scripts and
    /// tests; default: forever).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub sessions: Option<u64>,
    #[command(flatten)]
    pub bank: crate::bank::BankArgs,
}

/// `--relu-protocol` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReluArg {
    /// Garbled circuits.
    Gc,
    /// OT-based comparisons on silent OT.
    Ot,
    /// Per layer, from host-measured costs and the link.
    Auto,
}

/// Tools that do not serve.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a throwaway CA, a server certificate and a client certificate (PEM) for tests and
    /// the demo: ca.pem, server.pem, server.key, client.pem, client.key. Never use them in
    /// production; the keys are not encrypted.
    DevCert {
        /// Directory to write into (created if needed).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Names the server certificate is valid for (DNS names or IP addresses).
        #[arg(long = "name", value_name = "NAME", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        names: Vec<String>,
    },
}

impl Args {
    /// The link both the HE planner and the ReLU choice assume.
    pub fn link(&self) -> Link {
        Link {
            mbps: self.link_mbps,
            rtt_ms: self.link_rtt_ms.max(0.0),
        }
    }

    /// The ReLU protocol choice.
    pub fn relu_choice(&self) -> ReluChoice {
        match self.relu_protocol {
            ReluArg::Gc => ReluChoice::Gc,
            ReluArg::Ot => ReluChoice::Ot,
            ReluArg::Auto => ReluChoice::Auto,
        }
    }

    /// How connections are secured, from the TLS flags (files are read and checked here).
    pub fn security(&self) -> anyhow::Result<ServerSecurity> {
        match (&self.tls_cert, &self.tls_key, self.insecure_plaintext) {
            (Some(cert), Some(key), false) => Ok(ServerSecurity::Tls(
                ServerTls::from_files(cert, key, self.tls_client_ca.as_deref())
                    .context("setting up TLS")?,
            )),
            (None, None, true) => Ok(ServerSecurity::Plaintext),
            _ => bail!(
                "pi-server needs --tls-cert CERT.pem and --tls-key KEY.pem (`pi-server dev-cert \
                 --dir DIR` writes a throwaway pair), or --insecure-plaintext to serve plain TCP"
            ),
        }
    }

    /// The limits every session runs under.
    pub fn limits(&self) -> SessionLimits {
        SessionLimits {
            idle_timeout: Duration::from_secs(self.idle_timeout),
            phase_slack: self.handshake_timeout(),
            min_rate: self.min_rate_kib << 10,
            max_frame: (self.max_frame_mib as usize) << 20,
            max_batch: self.max_batch,
            max_bank: self.max_bank,
            max_session: self.max_session_seconds.map(Duration::from_secs),
            ..SessionLimits::default()
        }
    }

    /// Time for the TLS handshake and the hello.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout)
    }

    /// Checks the flags that depend on the model: the frame cap must admit its largest message,
    /// and a logit bound must be usable.
    pub fn check_against(&self, served: &protocol::ServedModel) -> anyhow::Result<()> {
        let need = SessionLimits::largest_client_frame(served.budget());
        let cap = (self.max_frame_mib as usize) << 20;
        if cap < need {
            bail!(
                "--max-frame-mib {} is below the largest message this model needs from a client \
                 ({:.1} MiB); raise it to at least {} or leave the default",
                self.max_frame_mib,
                need as f64 / (1u64 << 20) as f64,
                need.div_ceil(1 << 20)
            );
        }
        Ok(())
    }
}
