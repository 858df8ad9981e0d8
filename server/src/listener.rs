//! The accept loop. A connection goes through three stages, and only the last holds a slot:
//! 1. **admission** (async, under `--handshake-timeout`): TLS handshake and the client's hello;
//!    at most `--max-pending` connections at once and `--max-per-peer` per client address;
//! 2. **queue** (async, up to `--queue-timeout`): waits for one of `--max-sessions` slots;
//! 3. **session** (one blocking worker): every read and write under the idle timeout and the
//!    phase and session deadlines derived from the model.
//!
//! On Ctrl-C or SIGTERM the server stops accepting, gives running sessions `--shutdown-grace`
//! to finish, then cancels them (each client is told why) and exits within a few seconds more.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pi_net::{Cancel, Deadlines, ServerSecurity};
use protocol::{Banking, ServedModel, SessionLimits};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{error, info, warn};

use crate::admit::{admit, Admitted};
use crate::peers::{PeerGuard, Peers};

/// How the listener runs (from the command line).
pub struct Config {
    pub security: ServerSecurity,
    /// Ticket key, lifetime and replay store of banked sets.
    pub banking: Arc<Banking>,
    pub limits: SessionLimits,
    pub handshake_timeout: Duration,
    pub queue_timeout: Duration,
    pub max_sessions: u32,
    pub max_pending: u32,
    pub max_per_peer: u32,
    pub shutdown_grace: Duration,
    /// Exit after this many admitted sessions have ended.
    pub sessions: Option<u64>,
}

/// Time after the cancel for sessions to notice it, tell their clients and close.
const CANCEL_DRAIN: Duration = Duration::from_secs(4);

struct Shared {
    served: Arc<ServedModel>,
    cfg: Config,
    acceptor: Option<TlsAcceptor>,
    slots: Arc<Semaphore>,
    cancel: Cancel,
    admitted: AtomicU64,
    stopping: watch::Receiver<bool>,
}

/// Serves clients until Ctrl-C / SIGTERM, or until `cfg.sessions` sessions have been served.
pub async fn serve(
    listener: TcpListener,
    served: Arc<ServedModel>,
    cfg: Config,
) -> anyhow::Result<()> {
    let acceptor = match &cfg.security {
        ServerSecurity::Tls(t) => Some(TlsAcceptor::from(t.config())),
        ServerSecurity::Plaintext => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let pending = Arc::new(Semaphore::new(cfg.max_pending as usize));
    let peers = Peers::new(cfg.max_per_peer);
    let shared = Arc::new(Shared {
        served,
        slots: Arc::new(Semaphore::new(cfg.max_sessions as usize)),
        acceptor,
        cancel: Cancel::new(),
        admitted: AtomicU64::new(0),
        stopping: stop_rx,
        cfg,
    });
    let finished = Arc::new(tokio::sync::Notify::new());
    let mut tasks = JoinSet::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut signalled = false;
    loop {
        if shared
            .cfg
            .sessions
            .is_some_and(|n| shared.admitted.load(Ordering::SeqCst) >= n)
        {
            break;
        }
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => { warn!(error = %e, "accept failed"); continue; }
            },
            _ = finished.notified() => continue,
            _ = &mut shutdown => { signalled = true; break; }
        };
        while tasks.try_join_next().is_some() {}
        let Some(guard) = peers.admit(peer.ip()) else {
            info!(%peer, limit = shared.cfg.max_per_peer, "connection refused: too many from this address");
            continue;
        };
        let Ok(pending_permit) = pending.clone().try_acquire_owned() else {
            warn!(%peer, limit = shared.cfg.max_pending, "connection refused: too many connections in their handshake");
            continue;
        };
        let shared = shared.clone();
        let finished = finished.clone();
        tasks.spawn(async move {
            handle(stream, peer, shared, pending_permit, guard).await;
            finished.notify_one();
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    if signalled {
        info!(
            grace_s = shared.cfg.shutdown_grace.as_secs(),
            "shutting down: no new connections; running sessions get the grace period"
        );
        let drained = tokio::time::timeout(shared.cfg.shutdown_grace, drain(&mut tasks)).await;
        if drained.is_err() {
            warn!("grace period over: cutting the remaining sessions");
            shared.cancel.cancel("the server is shutting down");
            if tokio::time::timeout(CANCEL_DRAIN, drain(&mut tasks))
                .await
                .is_err()
            {
                error!("some sessions did not end after the cancel; exiting anyway");
            }
        }
    } else {
        drain(&mut tasks).await;
    }
    Ok(())
}

async fn drain(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn handle(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    pending_permit: tokio::sync::OwnedSemaphorePermit,
    _guard: PeerGuard,
) {
    let cfg = &shared.cfg;
    let mut stopping = shared.stopping.clone();
    // 1. Admission: handshake and hello, without a slot.
    let admitted = tokio::select! {
        r = tokio::time::timeout(
            cfg.handshake_timeout,
            admit(stream, shared.acceptor.as_ref(), cfg.limits.hello_max_frame),
        ) => r,
        _ = stopping.wait_for(|s| *s) => {
            info!(%peer, "connection dropped before its hello: shutting down");
            return;
        }
    };
    drop(pending_permit);
    let admitted = match admitted {
        Ok(Ok(a)) => a,
        Ok(Err(why)) => {
            info!(%peer, reason = %why, "connection refused before a session");
            return;
        }
        Err(_) => {
            info!(
                %peer,
                timeout_s = cfg.handshake_timeout.as_secs(),
                "connection refused before a session: timed out waiting for the TLS handshake and hello"
            );
            return;
        }
    };
    let id = shared.admitted.fetch_add(1, Ordering::SeqCst) + 1;
    if cfg.sessions.is_some_and(|n| id > n) {
        refuse(
            &shared,
            admitted,
            "the server is finishing its last sessions",
        )
        .await;
        return;
    }
    // 2. Queue: wait for a slot.
    let permit = tokio::select! {
        p = tokio::time::timeout(cfg.queue_timeout, shared.slots.clone().acquire_owned()) => Some(p),
        _ = stopping.wait_for(|s| *s) => None,
    };
    let Some(permit) = permit else {
        refuse(&shared, admitted, "the server is shutting down").await;
        return;
    };
    let permit = match permit {
        Ok(Ok(p)) => p,
        _ => {
            warn!(session = id, %peer, "no free slot: client told the server is busy");
            let why = format!(
                "server busy: all {} session slots stayed in use for {} s; try again later",
                cfg.max_sessions,
                cfg.queue_timeout.as_secs()
            );
            refuse(&shared, admitted, &why).await;
            return;
        }
    };
    // 3. Session, on a blocking worker.
    info!(session = id, %peer, "session started");
    let worker = shared.clone();
    let result = tokio::task::spawn_blocking(move || {
        let deadlines =
            Deadlines::new(worker.cfg.limits.idle_timeout).with_cancel(worker.cancel.clone());
        let ch =
            pi_net::stream::from_accepted(admitted.sock, admitted.tls, admitted.hello, deadlines)
                .map_err(protocol::ProtocolError::from)?;
        protocol::serve_connection_with(
            ch,
            &worker.served,
            &worker.cfg.limits,
            Some(&worker.cfg.banking),
        )
    })
    .await;
    drop(permit);
    match result {
        Ok(Ok(summary)) => {
            for reason in &summary.tickets.refused {
                warn!(session = id, %peer, %reason, "ticket refused");
            }
            info!(
                session = id,
                mode = ?summary.mode,
                inferences = summary.inferences,
                tickets_issued = summary.tickets.issued.len(),
                ticket_redeemed = summary.tickets.redeemed.as_deref().unwrap_or("-"),
                seconds = format!("{:.2}", summary.seconds),
                bytes_sent = summary.bytes_sent,
                bytes_received = summary.bytes_received,
                "session finished"
            )
        }
        Ok(Err(e)) => warn!(session = id, %peer, error = %e, "session failed"),
        Err(e) => error!(session = id, %peer, error = %e, "session task crashed"),
    }
}

/// Tells an admitted client why it will not be served, then closes.
async fn refuse(shared: &Arc<Shared>, admitted: Admitted, why: &str) {
    let why = why.to_string();
    let idle = shared.cfg.limits.idle_timeout;
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut ch) = pi_net::stream::from_accepted(
            admitted.sock,
            admitted.tls,
            Vec::new(),
            Deadlines::new(idle),
        ) {
            ch.send_abort(&format!("server: {why}"));
            ch.close(protocol::CLOSE_LINGER);
        }
    })
    .await;
}
