//! `pi-server`: holds a model and serves private inferences to many clients at once.

mod admit;
mod args;
mod bank;
mod host_costs;
mod listener;
mod model;
mod peers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use protocol::{ServeOptions, ServedModel};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::args::{Args, Command};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let result = match &args.command {
        Some(Command::DevCert { dir, names }) => dev_cert(dir, names),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the runtime")
            .and_then(|rt| rt.block_on(serve(args))),
    };
    // Exit without waiting for session workers the shutdown already cut.
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::exit(1)
        }
    }
}

fn dev_cert(dir: &std::path::Path, names: &[String]) -> anyhow::Result<()> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let pki = pi_net::devcert::DevPki::generate(&names)?;
    let paths = pki.write(dir)?;
    for p in &paths {
        println!("{}", p.display());
    }
    eprintln!(
        "throwaway CA and certificates for {} written to {} (tests and demos only)",
        names.join(", "),
        dir.display()
    );
    Ok(())
}

/// Binds the first address `listen` resolves to that accepts a bind.
async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .with_context(|| {
            format!("--listen {listen}: expected HOST:PORT (e.g. 127.0.0.1:4433 or localhost:4433)")
        })?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some((a, e)),
        }
    }
    match last {
        Some((a, e)) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("cannot listen on {listen} ({a}): the port is in use (another pi-server?); choose another port")
        }
        Some((a, e)) => bail!("cannot listen on {listen} ({a}): {e}"),
        None => bail!("--listen {listen} resolves to no address"),
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    // Flags that need no model first, so a mistake is reported at once.
    let security = args.security()?;
    if let Some(b) = args.logit_bound {
        if !(b.is_finite() && b > 0.0) {
            bail!("--logit-bound {b}: must be a positive number");
        }
    }
    let (model, fixed, fixed_source) = model::load(
        args.model.as_deref(),
        args.output.as_deref(),
        args.calibration_data.as_deref(),
    )?;
    let host = host_costs::load_or_measure(args.host_costs.as_deref());
    let options = ServeOptions {
        link: args.link(),
        relu: args.relu_choice(),
        costs: host.relu,
        he_costs: host.he_ops.unwrap_or_default(),
        kernel_cache_bytes: args.kernel_cache_bytes(),
    };
    let started = std::time::Instant::now();
    let mut served =
        ServedModel::with_options(model, fixed, &options).context("preparing the model")?;
    if let Some(b) = args.logit_bound {
        served = served.with_logit_bound(b)?;
    }
    args.check_against(&served)?;
    if args.model.is_some() && fixed_source.starts_with("defaults") {
        warn!(
            "the model carries no calibrated fixed-point format: the defaults (fa = fw = 8, M = 10) \
             may overflow or flip its top-1; run `pi-opt calibrate MODEL --data SAMPLES.npy` or pass \
             --calibration-data"
        );
    }
    let served = Arc::new(served);
    let limits = args.limits();
    let budget = served.budget();
    let protocols: Vec<&str> = served.relu_protocols().iter().map(|p| p.name()).collect();
    let cache = served.kernel_cache();
    info!(
        model = %served.name(),
        fixed_point = %fixed.to_metadata(),
        fixed_source = %fixed_source,
        relus = served.relus(),
        comparisons = served.program().comparisons(),
        macs = served.macs(),
        logit_bound = served.logit_bound(),
        relu_protocols = protocols.join(","),
        link_mbps = args.link_mbps,
        he_compute_milli = host.he_compute_milli,
        prepare_s = format!("{:.2}", started.elapsed().as_secs_f64()),
        offline_deadline_s = limits.phase_time(&budget.offline).as_secs(),
        online_deadline_s = limits.phase_time(&budget.online).as_secs(),
        he_kernels = protocol::he_kernel_path(),
        kernels = cache.kernels,
        kernels_cached = cache.cached,
        kernel_cache_mib = cache.bytes >> 20,
        "model ready"
    );
    let banking = Arc::new(args.bank.banking()?);
    let bank_protocols: Vec<&str> = served
        .bank_relu_protocols()
        .iter()
        .map(|p| p.name())
        .collect();
    info!(
        relu_protocols = bank_protocols.join(","),
        key_id = %banking.key_id(),
        replay_store = %banking.replay_store(),
        "banking ready"
    );
    let listener = bind(&args.listen).await?;
    let tls = match &security {
        pi_net::ServerSecurity::Tls(t) if t.requires_client_cert() => {
            "TLS 1.3, client certificates required"
        }
        pi_net::ServerSecurity::Tls(_) => "TLS 1.3",
        pi_net::ServerSecurity::Plaintext => "PLAINTEXT (--insecure-plaintext)",
    };
    if security.is_plaintext() {
        warn!("serving without TLS: the server is not authenticated and traffic is not protected");
    }
    info!(addr = %listener.local_addr()?, security = tls, "listening");
    let cfg = listener::Config {
        security,
        banking,
        limits,
        handshake_timeout: args.handshake_timeout(),
        queue_timeout: Duration::from_secs(args.queue_timeout),
        max_sessions: args.max_sessions,
        max_pending: args.max_pending,
        max_per_peer: args.max_per_peer,
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        sessions: args.sessions,
    };
    listener::serve(listener, served, cfg).await
}
