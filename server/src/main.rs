//! `pi-server`: holds a model and serves private inferences to many clients at once.

mod args;
mod host_costs;
mod listener;
mod model;

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use protocol::{ServeOptions, ServedModel};
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
    let host = host_costs::load_or_measure(args.host_costs.as_deref());
    let options = ServeOptions {
        link: args.link(),
        relu: args.relu_choice(),
        costs: host.relu,
        he_compute_milli: host.he_compute_milli,
    };
    let started = std::time::Instant::now();
    let served = Arc::new(
        ServedModel::with_options(model, Default::default(), &options)
            .context("preparing the model")?,
    );
    let protocols: Vec<&str> = served.relu_protocols().iter().map(|p| p.name()).collect();
    info!(
        model = %served.name(),
        relus = served.relus(),
        macs = served.macs(),
        relu_protocols = protocols.join(","),
        link_mbps = args.link_mbps,
        he_compute_milli = host.he_compute_milli,
        prepare_s = format!("{:.2}", started.elapsed().as_secs_f64()),
        he_kernels = protocol::he_kernel_path(),
        "model ready"
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    info!(addr = %listener.local_addr()?, "listening");
    listener::serve(
        listener,
        served,
        args.limits(),
        args.max_sessions,
        args.sessions,
    )
    .await
}
