//! Sessions through a frame-aware mutating proxy: how each ends, and that none reports a
//! wrong answer as a success.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use clap::Args;
use pi_tests::proxy::{self, Framing, Mutation};
use serde_json::json;

use super::{cpu, session, Bed, Common};

/// Options of `pi-bench door mutate`.
#[derive(Args, Debug)]
pub struct MutateArgs {
    #[command(flatten)]
    common: Common,
    /// Mutated sessions to run.
    #[arg(long, default_value_t = 640)]
    sessions: usize,
    /// Sessions at a time.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Seed of the mutation list.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Mutate TLS records of a TLS session instead of pi-net frames of a plaintext one.
    #[arg(long)]
    tls: bool,
}

/// The kind of error a refused session ended with.
fn category(e: &str) -> &'static str {
    if e.contains("TLS") {
        "TLS error"
    } else if e.contains("integrity check") {
        "frame check failed"
    } else if e.contains("timed out") {
        "deadline / idle timeout"
    } else if e.contains("closed") {
        "connection closed"
    } else if e.contains("exceeds") {
        "frame too large"
    } else if e.contains("implausible") {
        "implausible logits"
    } else {
        "other protocol error"
    }
}

/// Runs the figure.
pub fn run(a: &MutateArgs) -> anyhow::Result<()> {
    let bed = Bed::new(&a.common, "mutate", true)?;
    let server = bed.server(
        a.tls,
        false,
        &[
            "--max-sessions",
            "16",
            "--max-per-peer",
            "0",
            "--handshake-timeout",
            "2",
            "--idle-timeout",
            "2",
        ],
    )?;
    let framing = if a.tls {
        Framing::TlsRecords
    } else {
        Framing::PiNet
    };
    let mut opts = bed.client(a.tls, false, Duration::from_secs(3))?;
    if let pi_net::ClientSecurity::Tls { server_name, .. } = &mut opts.connect.security {
        *server_name = Some("127.0.0.1".into());
    }
    opts.session_timeout = Some(Duration::from_secs(60));
    let image = bed.image(7);
    let (want, _) = pi_tests::references(&bed.model, &image);
    // Bit for bit where the protocol is exact; otherwise within the documented bound.
    let exact = !pi_tests::has_local_truncation(&bed.model);
    let agrees = move |got: &[f32], want: &[f32]| {
        if exact {
            got == want
        } else {
            super::agrees(got, want)
        }
    };
    let (addr, p) = proxy::spawn(&server.addr, framing, Mutation::None)?;
    let (clean, _) = session(&addr, bed.shape(), &image, &opts);
    if !agrees(&clean?, &want) {
        anyhow::bail!("the clean session does not match the reference");
    }
    let frames = p
        .join()
        .map_err(|_| anyhow::anyhow!("proxy thread"))?
        .frames;
    let list = Mutation::list(a.seed, a.sessions, frames);
    let outcomes: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let wrong = Arc::new(Mutex::new(Vec::new()));
    let longest = Arc::new(Mutex::new(0f64));
    for chunk in list.chunks(a.parallel.max(1)) {
        let hs: Vec<_> = chunk
            .iter()
            .map(|&m| {
                let (opts, image, want, up) = (
                    opts.clone(),
                    image.clone(),
                    want.clone(),
                    server.addr.clone(),
                );
                let (outcomes, wrong, longest, shape) = (
                    outcomes.clone(),
                    wrong.clone(),
                    longest.clone(),
                    bed.shape(),
                );
                thread::spawn(move || {
                    let Ok((addr, p)) = proxy::spawn(&up, framing, m) else {
                        return;
                    };
                    let (r, secs) = session(&addr, shape, &image, &opts);
                    let applied = p.join().map(|r| r.applied).unwrap_or(false);
                    let key = match &r {
                        Ok(l) if agrees(l, &want) && applied => {
                            format!("{}: correct answer", m.kind())
                        }
                        Ok(l) if agrees(l, &want) => {
                            format!("{}: not applied (no next frame)", m.kind())
                        }
                        Ok(_) => {
                            wrong.lock().map(|mut w| w.push(format!("{m:?}"))).ok();
                            format!("{}: WRONG ANSWER REPORTED", m.kind())
                        }
                        Err(e) => format!("{}: refused ({})", m.kind(), category(&e.to_string())),
                    };
                    if let Ok(mut o) = outcomes.lock() {
                        *o.entry(key).or_default() += 1;
                    }
                    if let Ok(mut l) = longest.lock() {
                        *l = l.max(secs);
                    }
                })
            })
            .collect();
        for h in hs {
            let _ = h.join();
        }
    }
    let outcomes = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    let wrong = wrong.lock().map(|w| w.clone()).unwrap_or_default();
    let longest = *longest.lock().map_err(|_| anyhow::anyhow!("lock"))?;
    let log = server.log();
    let server_alive = log
        .lines()
        .all(|l| !l.contains("panicked") && !l.contains("crashed"));
    println!(
        "{}",
        json!({
            "figure": "door mutate",
            "framing": if a.tls { "TLS records" } else { "pi-net plaintext frames" },
            "model": bed.model.name,
            "sessions": a.sessions,
            "compared": if exact { "bit for bit" } else { "within 2% of the largest logit" },
            "frames_per_clean_session": {"up": frames[0], "down": frames[1]},
            "outcomes": outcomes,
            "wrong_answers_reported_as_success": wrong.len(),
            "wrong": wrong,
            "longest_session_seconds": longest,
            "server_panics": !server_alive,
            "cpu": cpu(),
        })
    );
    Ok(())
}
