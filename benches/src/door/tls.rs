//! End-to-end time of the same sessions over TLS and over --insecure-plaintext, interleaved in
//! one run against two servers of the same model.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::{cpu, median, session, Bed, Common};

/// Options of `pi-bench door tls`.
#[derive(Args, Debug)]
pub struct TlsArgs {
    #[command(flatten)]
    common: Common,
    /// Sessions per transport (alternating; medians reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Runs the figure.
pub fn run(a: &TlsArgs) -> anyhow::Result<()> {
    let bed = Bed::new(&a.common, "tlscost", false)?;
    let tls_server = bed.server(true, false, &[])?;
    let plain_server = bed.server(false, false, &[])?;
    let tls = bed.client(true, false, Duration::from_secs(120))?;
    let plain = bed.client(false, false, Duration::from_secs(120))?;
    let image = bed.image(3);
    let (want, _) = pi_tests::references(&bed.model, &image);
    let (mut t, mut p) = (Vec::new(), Vec::new());
    // One warm-up each, then alternate.
    session(&tls_server.addr, bed.shape(), &image, &tls).0?;
    session(&plain_server.addr, bed.shape(), &image, &plain).0?;
    for _ in 0..a.runs.max(1) {
        let (r, s) = session(&tls_server.addr, bed.shape(), &image, &tls);
        if !super::agrees(&r?, &want) {
            anyhow::bail!("TLS session disagrees with the reference");
        }
        t.push(s);
        let (r, s) = session(&plain_server.addr, bed.shape(), &image, &plain);
        if !super::agrees(&r?, &want) {
            anyhow::bail!("plaintext session disagrees with the reference");
        }
        p.push(s);
    }
    let (mt, mp) = (median(&mut t), median(&mut p));
    println!(
        "{}",
        json!({
            "figure": "door tls",
            "model": bed.model.name,
            "runs": a.runs,
            "tls_seconds": mt,
            "plaintext_seconds": mp,
            "tls_over_plaintext": mt / mp,
            "tls_runs": t,
            "plaintext_runs": p,
            "cpu": cpu(),
        })
    );
    Ok(())
}
