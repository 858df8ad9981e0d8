//! `pi-bench e2e`: real `pi-server` and `pi-client` processes, on loopback or across a Linux
//! network namespace pair whose veth link is shaped with `tc netem` (rate and delay), measuring
//! the one-shot inference (offline inline) against a banked one (preprocess, then infer).
//!
//! With `--rate` or `--rtt` the run needs root and iproute2: it creates two namespaces joined by
//! a veth pair with private addresses, puts half the RTT and the rate limit on each direction,
//! runs the server in one namespace and the clients in the other, and removes everything on
//! exit (also on error). Without them it runs on loopback (compute-only view). Prints one JSON
//! line: inline total, banked online latency, bytes each way, per phase.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::link::{parse_rate, Netns, Shaper};

/// Options of the `e2e` subcommand.
#[derive(clap::Args, Debug)]
pub struct E2eArgs {
    /// ONNX model the server serves (default: pi-server's embedded default model).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Input image (float32 .npy); default: pi-client's embedded sample (default model only).
    #[arg(long, value_name = "X.npy")]
    pub input: Option<PathBuf>,
    /// Link rate in tc syntax (100mbit, 1gbit); shapes each direction. Implies namespaces.
    #[arg(long)]
    pub rate: Option<String>,
    /// Round-trip time (20ms, 1ms); half of it is added on each direction. Implies namespaces.
    #[arg(long)]
    pub rtt: Option<String>,
    /// Directory holding pi-server and pi-client (default: next to pi-bench).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Extra arguments for pi-server (e.g. "--relu-protocol gc"), split on spaces. With
    /// `--rate`/`--rtt` the server is told the link (`--link-mbps`, `--link-rtt-ms`) unless
    /// these arguments name one.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub server_args: String,
    /// Seconds allowed to each client process.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Plain TCP (`--insecure-plaintext` on both sides) instead of TLS 1.3 with a throwaway CA.
    #[arg(long)]
    pub plaintext: bool,
    /// How to shape the link: netem when the kernel has it, else the TUN emulator (auto).
    #[arg(long, default_value = "auto", value_parser = ["auto", "netem", "tun"])]
    pub shaper: String,
}

/// Parses a duration in ms: "20ms", "1.5ms", "1s", or a bare number of milliseconds.
fn parse_ms(s: &str) -> anyhow::Result<f64> {
    let s = s.trim();
    let (num, scale) = if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().with_context(|| format!("RTT `{s}`"))?;
    if !(0.0..=10_000.0).contains(&(v * scale)) {
        bail!("RTT `{s}` outside 0..10 s");
    }
    Ok(v * scale)
}

/// The server process; killed (by PID) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one client command with a timeout; returns its wall time.
fn run_client(mut cmd: Command, timeout: u64, what: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting pi-client ({what})"))?;
    let deadline = t + Duration::from_secs(timeout);
    loop {
        if let Some(status) = child.try_wait()? {
            let wall = t.elapsed().as_secs_f64();
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                bail!("pi-client ({what}) failed: {}", err.trim());
            }
            return Ok(wall);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("pi-client ({what}) did not finish within {timeout} s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Runs the benchmark and prints one JSON line.
pub fn run(args: &E2eArgs) -> anyhow::Result<()> {
    let bin = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("pi-bench has no directory")?
            .to_path_buf(),
    };
    let (server_bin, client_bin) = (bin.join("pi-server"), bin.join("pi-client"));
    for b in [&server_bin, &client_bin] {
        if !b.exists() {
            bail!(
                "{} not found: build it (cargo build --release -p server -p client) or pass --bin-dir",
                b.display()
            );
        }
    }
    let shaped = args.rate.is_some() || args.rtt.is_some();
    let rtt_ms = args
        .rtt
        .as_deref()
        .map(parse_ms)
        .transpose()?
        .unwrap_or(0.0);
    let rate_bps = args.rate.as_deref().map(parse_rate).transpose()?;
    let prefer = match args.shaper.as_str() {
        "netem" => Some(Shaper::Netem),
        "tun" => Some(Shaper::Tun),
        _ => None,
    };
    let net = if shaped {
        Some(Netns::create(
            rate_bps,
            args.rate.as_deref(),
            rtt_ms,
            prefer,
        )?)
    } else {
        None
    };
    let work = std::env::temp_dir().join(format!("pi-bench-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = measure(args, net.as_ref(), &server_bin, &client_bin, &work, rtt_ms);
    let _ = std::fs::remove_dir_all(&work);
    drop(net);
    println!("{}", serde_json::to_string(&result?)?);
    Ok(())
}

fn measure(
    args: &E2eArgs,
    net: Option<&Netns>,
    server_bin: &Path,
    client_bin: &Path,
    work: &Path,
    rtt_ms: f64,
) -> anyhow::Result<Value> {
    let addr = match net {
        Some(n) => format!("{}:4433", n.server_ip),
        None => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.to_string()
        }
    };
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
    let pki = work.join("pki");
    let (server_tls, client_tls): (Vec<String>, Vec<String>) = if args.plaintext {
        (
            vec!["--insecure-plaintext".into()],
            vec!["--insecure-plaintext".into()],
        )
    } else {
        let out = Command::new(server_bin)
            .args(["dev-cert", "--dir"])
            .arg(&pki)
            .args(["--name", host])
            .output()
            .context("pi-server dev-cert")?;
        if !out.status.success() {
            bail!(
                "pi-server dev-cert failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let p = |f: &str| pki.join(f).display().to_string();
        (
            vec![
                "--tls-cert".into(),
                p("server.pem"),
                "--tls-key".into(),
                p("server.key"),
            ],
            vec!["--tls-ca".into(), p("ca.pem")],
        )
    };
    let mut cmd = match net {
        Some(n) => n.exec(&n.server, server_bin),
        None => Command::new(server_bin),
    };
    cmd.args(["--listen", &addr, "--ticket-key"])
        .arg(work.join("ticket.key"))
        .args(&server_tls);
    // A shaped link is declared to the server (its HE planner and ReLU protocol choice plan for
    // it), unless the server arguments declare one themselves.
    if net.is_some() && !args.server_args.contains("--link-") {
        if let Some(bps) = args.rate.as_deref().map(parse_rate).transpose()? {
            let mbps = ((bps / 1e6).round() as u64).clamp(1, 100_000);
            cmd.args(["--link-mbps", &mbps.to_string()]);
        }
        if args.rtt.is_some() {
            cmd.args(["--link-rtt-ms", &format!("{rtt_ms}")]);
        }
    }
    if let Some(m) = &args.model {
        cmd.arg("--model").arg(m);
    }
    cmd.args(args.server_args.split_whitespace());
    let log = work.join("server.log");
    let server = Server(
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting pi-server")?,
    );
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") {
            break;
        }
        if start.elapsed() > Duration::from_secs(600) || text.contains("Error") {
            bail!("pi-server did not start: {}", text.trim());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = |sub: &[&str]| -> Command {
        let mut c = match net {
            Some(n) => n.exec(&n.client, client_bin),
            None => Command::new(client_bin),
        };
        c.args(sub)
            .args(["--connect", &addr, "--quiet"])
            .args(&client_tls);
        c
    };
    let input: Vec<String> = match &args.input {
        Some(p) => vec!["--input".into(), p.display().to_string()],
        None => vec!["--sample".into()],
    };
    let store = work.join("bank");
    let (inline_r, pre_r, infer_r) = (
        work.join("inline.json"),
        work.join("pre.json"),
        work.join("infer.json"),
    );
    let mut c = client(&[]);
    c.args(&input).arg("--report").arg(&inline_r);
    let inline_wall = run_client(c, args.timeout, "one-shot")?;
    let mut c = client(&["preprocess"]);
    c.arg("--store").arg(&store).arg("--report").arg(&pre_r);
    let pre_wall = run_client(c, args.timeout, "preprocess")?;
    let disk: u64 = std::fs::read_dir(&store)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mut c = client(&["infer"]);
    c.arg("--store")
        .arg(&store)
        .args(&input)
        .arg("--report")
        .arg(&infer_r);
    let infer_wall = run_client(c, args.timeout, "infer")?;
    drop(server);

    let inline = read_json(&inline_r)?;
    let pre = read_json(&pre_r)?;
    let banked = read_json(&infer_r)?;
    let set = &pre["sets"][0];
    if banked["prediction"] != inline["prediction"] {
        bail!(
            "banked prediction {} differs from the one-shot prediction {}",
            banked["prediction"],
            inline["prediction"]
        );
    }
    let off = &inline["offline"];
    let on = &inline["online"];
    let bon = &banked["online"];
    Ok(json!({
        "model": inline["model"],
        "relus": inline["relus"],
        "macs": inline["macs"],
        "link": match net {
            Some(n) => json!({"netns": true, "rate": args.rate, "rtt_ms": rtt_ms, "shaper": n.shaper.name()}),
            None => json!({"netns": false, "loopback": true}),
        },
        "tls": !args.plaintext,
        "server_args": args.server_args,
        "prediction": inline["prediction"],
        "inline": {
            "total_seconds": inline["total_seconds"],
            "wall_seconds": inline_wall,
            "offline": off,
            "online": on,
            "bytes_sent": off["bytes_sent"].as_u64().unwrap_or(0) + on["bytes_sent"].as_u64().unwrap_or(0),
            "bytes_received": off["bytes_received"].as_u64().unwrap_or(0) + on["bytes_received"].as_u64().unwrap_or(0),
        },
        "preprocess": {
            "wall_seconds": pre_wall,
            "offline": set["offline"],
            "ticket_bytes": set["ticket_bytes"],
            "disk_bytes": disk,
        },
        "banked": {
            "online_seconds": bon["seconds"],
            "wait_seconds": banked["total_seconds"],
            "wall_seconds": infer_wall,
            "bytes_sent": bon["bytes_sent"],
            "bytes_received": bon["bytes_received"],
            "online": bon,
        },
        "cpu": protocol::cpu_model().unwrap_or_else(|| "unknown".into()),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtts_parse_in_milliseconds() {
        assert_eq!(parse_ms("20ms").unwrap(), 20.0);
        assert_eq!(parse_ms("1s").unwrap(), 1000.0);
        assert_eq!(parse_ms("500us").unwrap(), 0.5);
        assert_eq!(parse_ms("3").unwrap(), 3.0);
        assert!(parse_ms("fast").is_err());
        assert!(parse_ms("20000s").is_err());
    }
}
