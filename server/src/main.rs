//! `pi-server`: holds a model and serves private inferences to many clients at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use protocol::{ServedModel, SessionLimits};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

/// Serve private inference of one CNN: clients learn the prediction, never the weights;
/// the server never sees the client's image.
/// The default model: HybReNet-2x5x3x, m=8, 32×32×3 input, Stage 1 culled, Stages 2–4 thinned, trained on
/// MNIST-5k (see server/assets/README.md).
const DEFAULT_MODEL: &[u8] = include_bytes!("../assets/default.onnx");

#[derive(Parser, Debug)]
#[command(name = "pi-server", version, about, long_about = None)]
struct Args {
    /// ONNX model to serve (default: the embedded HybReNet-2x5x3x, m=8, 32×32×3 input, Stage 1 culled,
    /// Stages 2–4 thinned: 26,112 ReLUs, trained on MNIST digits, 10 classes).
    #[arg(long, value_name = "FILE.onnx")]
    model: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4433", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Sessions served concurrently; further clients wait in the accept queue.
    #[arg(long, default_value_t = 8)]
    max_sessions: usize,
    /// Seconds a read may block before the session is dropped (a vanished client).
    #[arg(long, default_value_t = 120)]
    read_timeout: u64,
    /// Largest message accepted from a client, in MiB.
    #[arg(long, default_value_t = 64)]
    max_frame_mib: usize,
    /// Most inferences one client may preprocess in one session (--batch on the client).
    #[arg(long, default_value_t = 16)]
    max_batch: u32,
    /// Link speed (Mbit/s) the HE block planner assumes when it weighs compute against traffic.
    /// Around 100 it packs replies with key switches (fewer bytes, more server compute); on a
    /// fast LAN (e.g. 10000) it uses fewer switches and finishes sooner. Clients follow the server.
    #[arg(long, default_value_t = protocol::DEFAULT_HE_LINK_MBPS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    he_link_mbps: u32,
    /// Serve this many sessions, then exit (for scripts and tests; default: forever).
    #[arg(long)]
    sessions: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();

    let model = match &args.model {
        Some(path) => {
            models::onnx::load(path).with_context(|| format!("loading {}", path.display()))?
        }
        None => models::onnx::from_bytes(DEFAULT_MODEL)
            .context("decoding the embedded default model")?,
    };
    let started = std::time::Instant::now();
    let served = Arc::new(
        ServedModel::with_he_link(model, Default::default(), args.he_link_mbps)
            .context("preparing the model")?,
    );
    info!(
        model = %served.name(),
        relus = served.relus(),
        macs = served.macs(),
        prepare_s = format!("{:.2}", started.elapsed().as_secs_f64()),
        "model ready"
    );
    let limits = SessionLimits {
        read_timeout: Duration::from_secs(args.read_timeout),
        max_frame: args.max_frame_mib << 20,
        max_batch: args.max_batch,
    };

    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    info!(addr = %listener.local_addr()?, "listening");
    let slots = Arc::new(Semaphore::new(args.max_sessions.max(1)));
    let mut served_count = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if args.sessions.is_some_and(|n| served_count >= n) {
            break;
        }
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { warn!(error = %e, "accept failed"); continue; }
            },
            _ = tokio::signal::ctrl_c() => { info!("shutting down"); break; }
        };
        served_count += 1;
        let permit = slots.clone().acquire_owned().await?;
        let served = served.clone();
        let limits = limits.clone();
        tasks.spawn(async move {
            let stream = match stream
                .into_std()
                .and_then(|s| s.set_nonblocking(false).map(|_| s))
            {
                Ok(s) => s,
                Err(e) => {
                    warn!(%peer, error = %e, "cannot take over socket");
                    return;
                }
            };
            let id = served_count;
            info!(session = id, %peer, "session started");
            let result = tokio::task::spawn_blocking(move || {
                protocol::serve_session(stream, &served, &limits)
            })
            .await;
            drop(permit);
            match result {
                Ok(Ok(summary)) => info!(
                    session = id,
                    inferences = summary.inferences,
                    seconds = format!("{:.2}", summary.seconds),
                    bytes_sent = summary.bytes_sent,
                    bytes_received = summary.bytes_received,
                    "session finished"
                ),
                Ok(Err(e)) => warn!(session = id, %peer, error = %e, "session failed"),
                Err(e) => error!(session = id, %peer, error = %e, "session task crashed"),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
