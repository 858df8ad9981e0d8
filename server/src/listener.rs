//! The accept loop: one blocking worker per session, at most `max_sessions` at once.

use std::sync::Arc;

use protocol::{Banking, ServedModel, SessionLimits};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, info, warn};

/// Serves clients until Ctrl-C, or until `sessions` connections have been served.
pub async fn serve(
    listener: TcpListener,
    served: Arc<ServedModel>,
    banking: Arc<Banking>,
    limits: SessionLimits,
    max_sessions: usize,
    sessions: Option<u64>,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(max_sessions.max(1)));
    let mut served_count = 0u64;
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        if sessions.is_some_and(|n| served_count >= n) {
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
        let banking = banking.clone();
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
                protocol::serve_session_with(stream, &served, &limits, Some(&banking))
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
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
