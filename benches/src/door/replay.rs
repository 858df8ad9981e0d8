//! Server CPU seconds spent on a replayed client stream: a recorded session's client bytes sent
//! again by someone who cannot take part in the key exchange.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::{cpu, session, Bed, Common};

/// Options of `pi-bench door replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    common: Common,
}

/// Records one honest session's client bytes through a proxy, replays them to the server on a
/// fresh connection (reading and discarding its answers), and returns the server's CPU seconds
/// for the replay and the replaying side's own CPU seconds.
fn replay_cost(bed: &Bed, tls: bool, client_ca: bool) -> anyhow::Result<(f64, f64, usize, String)> {
    let server = bed.server(tls, client_ca, &[])?;
    let opts = bed.client(tls, client_ca, Duration::from_secs(60))?;
    let (addr, rec) = pi_tests::proxy::record(&server.addr)?;
    let mut opts = opts;
    if let pi_net::ClientSecurity::Tls { server_name, .. } = &mut opts.connect.security {
        *server_name = Some("127.0.0.1".into());
    }
    session(&addr, bed.shape(), &bed.image(2), &opts).0?;
    let stream = rec.join().map_err(|_| anyhow::anyhow!("recorder"))?;
    std::thread::sleep(Duration::from_millis(300));
    let before = server.cpu_seconds().unwrap_or(0.0);
    let me_before = self_cpu();
    let mut sock = TcpStream::connect(&server.addr)?;
    let mut reader = sock.try_clone()?;
    let drain = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let t = Instant::now();
        let _ = reader.set_read_timeout(Some(Duration::from_secs(120)));
        while t.elapsed() < Duration::from_secs(120) {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let _ = sock.write_all(&stream);
    let _ = sock.shutdown(std::net::Shutdown::Write);
    let _ = drain.join();
    std::thread::sleep(Duration::from_millis(300));
    let after = server.cpu_seconds().unwrap_or(0.0);
    // How the server ended the replayed connection: its last log line about it.
    let outcome = server
        .log()
        .lines()
        .rev()
        .find(|l| l.contains("session") || l.contains("refused"))
        .map(|l| l.split("pi_server").nth(1).unwrap_or(l).trim().to_string())
        .unwrap_or_default();
    Ok((
        after - before,
        self_cpu() - me_before,
        stream.len(),
        outcome,
    ))
}

fn self_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of the file (11 and 12 after the state field).
    (f.get(10).copied().unwrap_or(0.0) + f.get(11).copied().unwrap_or(0.0)) / 100.0
}

/// Runs the figure.
pub fn run(a: &ReplayArgs) -> anyhow::Result<()> {
    let bed = Bed::new(&a.common, "replay", false)?;
    let (plain, plain_me, plain_bytes, plain_end) = replay_cost(&bed, false, false)?;
    let (tls, tls_me, tls_bytes, tls_end) = replay_cost(&bed, true, false)?;
    let (mtls, mtls_me, mtls_bytes, mtls_end) = replay_cost(&bed, true, true)?;
    println!(
        "{}",
        json!({
            "figure": "door replay",
            "model": bed.model.name,
            "plaintext": {"server_cpu_seconds": plain, "replayer_cpu_seconds": plain_me,
                          "bytes_replayed": plain_bytes, "server_log": plain_end},
            "tls": {"server_cpu_seconds": tls, "replayer_cpu_seconds": tls_me,
                    "bytes_replayed": tls_bytes, "server_log": tls_end},
            "tls_client_certificates": {"server_cpu_seconds": mtls, "replayer_cpu_seconds": mtls_me,
                                        "bytes_replayed": mtls_bytes, "server_log": mtls_end},
            "cpu": cpu(),
        })
    );
    Ok(())
}
