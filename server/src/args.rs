//! `pi-server`'s command line: what to serve, where, and the limits every session runs under.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use protocol::{Link, ReluChoice, SessionLimits};

/// Serve private inference of one CNN: clients learn the prediction, never the weights;
/// the server never sees the client's image.
#[derive(Parser, Debug)]
#[command(name = "pi-server", version, about, long_about = None)]
pub struct Args {
    /// ONNX model to serve (default: the embedded HybReNet-2x5x3x, m=8, 32×32×3 input, Stage 1 culled,
    /// Stages 2–4 thinned: 26,112 ReLUs, trained on MNIST digits, 10 classes).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4433", value_name = "HOST:PORT")]
    pub listen: SocketAddr,
    /// Sessions served concurrently; further clients wait in the accept queue.
    #[arg(long, default_value_t = 8)]
    pub max_sessions: usize,
    /// Seconds a read may block before the session is dropped (a vanished client).
    #[arg(long, default_value_t = 120)]
    pub read_timeout: u64,
    /// Largest message accepted from a client, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_frame_mib: usize,
    /// Most inferences one client may preprocess in one session (--batch on the client).
    #[arg(long, default_value_t = 16)]
    pub max_batch: u32,
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
    /// missing or written on another CPU. Default: $XDG_CACHE_HOME or ~/.cache,
    /// `pi-server/host-costs-v1.json`.
    #[arg(long, value_name = "FILE.json")]
    pub host_costs: Option<PathBuf>,
    /// Serve this many sessions, then exit (for scripts and tests; default: forever).
    #[arg(long)]
    pub sessions: Option<u64>,
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

    /// The limits every session runs under.
    pub fn limits(&self) -> SessionLimits {
        SessionLimits {
            read_timeout: Duration::from_secs(self.read_timeout),
            max_frame: self.max_frame_mib << 20,
            max_batch: self.max_batch,
        }
    }
}
