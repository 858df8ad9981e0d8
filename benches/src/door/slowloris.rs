//! Time for a legitimate client to be served while 2 × max-sessions hostile connections are open.

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use pi_tests::hostile::Horde;
use serde_json::json;

use super::{cpu, median, session, Bed, Common};

/// Options of `pi-bench door slowloris`.
#[derive(Args, Debug)]
pub struct SlowlorisArgs {
    #[command(flatten)]
    common: Common,
    /// The server's --max-sessions (hostile connections: twice this).
    #[arg(long, default_value_t = 8)]
    max_sessions: u32,
    /// Legitimate sessions timed per scenario (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// Runs the figure.
pub fn run(a: &SlowlorisArgs) -> anyhow::Result<()> {
    let bed = Bed::new(&a.common, "slowloris", false)?;
    let m = a.max_sessions as usize;
    let ms = a.max_sessions.to_string();
    let opts = bed.client(true, false, Duration::from_secs(60))?;
    let image = bed.image(1);
    let (want, _) = pi_tests::references(&bed.model, &image);
    let time = |addr: &str| -> anyhow::Result<f64> {
        let mut v = Vec::new();
        for _ in 0..a.runs.max(1) {
            let (r, secs) = session(addr, bed.shape(), &image, &opts);
            if !super::agrees(&r?, &want) {
                anyhow::bail!("a served session disagrees with the reference");
            }
            v.push(secs);
        }
        Ok(median(&mut v))
    };

    // A: M trickling + M silent connections; no per-address limit, so only admission protects.
    let server = bed.server(true, false, &["--max-sessions", &ms, "--max-per-peer", "0"])?;
    session(&server.addr, bed.shape(), &image, &opts).0?; // warm-up
    let baseline = time(&server.addr)?;
    let mut horde = Horde::new();
    horde.trickle(
        &server.addr,
        ip("127.0.0.2"),
        m,
        Duration::from_millis(500),
        true,
    );
    horde.silent(&server.addr, ip("127.0.0.2"), m);
    std::thread::sleep(Duration::from_millis(500));
    let open_a = horde.open();
    let under_a = time(&server.addr)?;
    drop(horde);
    drop(server);

    // B: 2M clients from one address send a valid hello and stall (default per-address limit 4).
    let server = bed.server(true, false, &["--max-sessions", &ms])?;
    let mut horde = Horde::new();
    horde.stall_after_hello(&server.addr, ip("127.0.0.3"), 2 * m, &opts.connect);
    std::thread::sleep(Duration::from_millis(1000));
    let open_b = horde.open();
    let under_b = time(&server.addr)?;
    drop(horde);

    println!(
        "{}",
        json!({
            "figure": "door slowloris",
            "model": bed.model.name,
            "max_sessions": m,
            "baseline_seconds": baseline,
            "trickling_and_silent": {"hostile_connections": open_a, "seconds": under_a,
                                     "ratio_to_baseline": under_a / baseline},
            "stalled_after_hello_one_address": {"hostile_connections": open_b, "seconds": under_b,
                                                "ratio_to_baseline": under_b / baseline},
            "cpu": cpu(),
        })
    );
    Ok(())
}
