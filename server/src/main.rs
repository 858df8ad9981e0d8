//! `pi-server`: holds a model and serves private inferences to many clients at once.

mod args;
mod bank;
mod listener;
mod model;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use protocol::ServedModel;
use tokio::net::TcpListener;
use tracing::info;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = args::Args::parse();

    let model = model::load(args.model.as_deref())?;
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
        he_kernels = protocol::he_kernel_path(),
        "model ready"
    );
    let banking = Arc::new(args.bank.banking()?);
    info!(
        key_id = %banking.key_id(),
        replay_store = %banking.replay_store(),
        "banking ready"
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    info!(addr = %listener.local_addr()?, "listening");
    listener::serve(
        listener,
        served,
        banking,
        args.limits(),
        args.max_sessions,
        args.sessions,
    )
    .await
}
