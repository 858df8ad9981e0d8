//! `pi-server`'s command line: what to serve, where, and the limits every session runs under.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use protocol::SessionLimits;

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
    /// Most sets one `pi-client preprocess` session may bank (--count on the client).
    #[arg(long, default_value_t = 256)]
    pub max_bank: u32,
    /// Link speed (Mbit/s) the HE block planner assumes when it weighs compute against traffic.
    /// Around 100 it packs replies with key switches (fewer bytes, more server compute); on a
    /// fast LAN (e.g. 10000) it uses fewer switches and finishes sooner. Clients follow the server.
    #[arg(long, default_value_t = protocol::DEFAULT_HE_LINK_MBPS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub he_link_mbps: u32,
    /// Serve this many sessions, then exit (for scripts and tests; default: forever).
    #[arg(long)]
    pub sessions: Option<u64>,
    #[command(flatten)]
    pub bank: crate::bank::BankArgs,
}

impl Args {
    /// The limits every session runs under.
    pub fn limits(&self) -> SessionLimits {
        SessionLimits {
            read_timeout: Duration::from_secs(self.read_timeout),
            max_frame: self.max_frame_mib << 20,
            max_batch: self.max_batch,
            max_bank: self.max_bank,
        }
    }
}
