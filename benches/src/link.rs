//! A shaped link between two network namespaces: `tc netem` on a veth pair when the kernel has
//! it, otherwise a packet-level link emulator over two TUN devices (one per namespace) that
//! delays every IP packet by half the RTT and serialises it at the link rate, per direction —
//! what netem's `delay` and `rate` do, in user space. TCP sees a real path either way (its
//! windows, slow start and queueing), not a proxy.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// MTU of the emulated link (jumbo frames keep the emulator's packet rate low at 1 Gbit/s).
const TUN_MTU: u32 = 9000;

/// Runs a command and fails with its output when it fails.
pub fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Parses a tc-style rate ("100mbit", "1gbit", "500kbit") into bits per second.
pub fn parse_rate(s: &str) -> anyhow::Result<f64> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.to_string(), *m)))
        .with_context(|| format!("rate `{s}`: use tc units, e.g. 100mbit or 1gbit"))?;
    let v: f64 = num.parse().with_context(|| format!("rate `{s}`"))?;
    if !(v * mul >= 1e3 && v * mul <= 1e11) {
        bail!("rate `{s}` outside 1kbit..100gbit");
    }
    Ok(v * mul)
}

/// How the link is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shaper {
    /// `tc qdisc … netem delay RTT/2 rate R` on each end of a veth pair.
    Netem,
    /// The TUN link emulator of this module.
    Tun,
}

impl Shaper {
    pub fn name(self) -> &'static str {
        match self {
            Shaper::Netem => "tc netem on a veth pair",
            Shaper::Tun => "pi-bench TUN link emulator (per-packet delay and rate, as netem)",
        }
    }
}

/// Two network namespaces joined by a shaped link; removed on drop.
pub struct Netns {
    pub server: String,
    pub client: String,
    pub server_ip: String,
    pub shaper: Shaper,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Netns {
    /// Creates the namespaces and the link. `prefer`: a shaper to insist on, or `None` for
    /// netem when the kernel has it and the TUN emulator otherwise.
    pub fn create(
        rate_bps: Option<f64>,
        rate: Option<&str>,
        rtt_ms: f64,
        prefer: Option<Shaper>,
    ) -> anyhow::Result<Netns> {
        if !is_root() {
            bail!("--rate/--rtt need root (network namespaces); run without them for loopback");
        }
        if Command::new("ip").arg("-V").output().is_err() {
            bail!("`ip` not found: install iproute2 (bash scripts/setup.sh test)");
        }
        let id = std::process::id();
        let mut net = Netns {
            server: format!("pi-e2e-{id}-s"),
            client: format!("pi-e2e-{id}-c"),
            server_ip: format!("10.231.{}.1", id % 250),
            shaper: Shaper::Netem,
        };
        sh(Command::new("ip").args(["netns", "add", &net.server]))?;
        sh(Command::new("ip").args(["netns", "add", &net.client]))?;
        for ns in [&net.server, &net.client] {
            sh(Command::new("ip").args(["netns", "exec", ns, "ip", "link", "set", "lo", "up"]))?;
        }
        let client_ip = format!("10.231.{}.2", id % 250);
        let netem = match prefer {
            Some(Shaper::Tun) => false,
            _ => match net.veth_netem(id, &client_ip, rate, rtt_ms) {
                Ok(()) => true,
                Err(_) => {
                    // Deleting one end of the pair deletes both.
                    let pis = format!("pis{id}");
                    let _ = net.in_ns(&net.server, &["ip", "link", "del", &pis]);
                    let _ = Command::new("ip").args(["link", "del", &pis]).output();
                    false
                }
            },
        };
        if !netem {
            if prefer == Some(Shaper::Netem) {
                bail!("tc netem is not available in this kernel (CONFIG_NET_SCH_NETEM)");
            }
            net.shaper = Shaper::Tun;
            net.tun_link(id, &client_ip, rate_bps, rtt_ms)?;
        }
        Ok(net)
    }

    /// `program` run inside namespace `ns`.
    pub fn exec(&self, ns: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    fn in_ns(&self, ns: &str, args: &[&str]) -> anyhow::Result<()> {
        sh(Command::new("ip").args(["netns", "exec", ns]).args(args))
    }

    fn veth_netem(
        &self,
        id: u32,
        client_ip: &str,
        rate: Option<&str>,
        rtt_ms: f64,
    ) -> anyhow::Result<()> {
        let (vs, vc) = (format!("pis{id}"), format!("pic{id}"));
        sh(Command::new("ip").args(["link", "add", &vs, "type", "veth", "peer", "name", &vc]))?;
        sh(Command::new("ip").args(["link", "set", &vs, "netns", &self.server]))?;
        sh(Command::new("ip").args(["link", "set", &vc, "netns", &self.client]))?;
        for (ns, dev, ip) in [
            (&self.server, &vs, &self.server_ip),
            (&self.client, &vc, &client_ip.to_string()),
        ] {
            self.in_ns(ns, &["ip", "addr", "add", &format!("{ip}/30"), "dev", dev])?;
            self.in_ns(ns, &["ip", "link", "set", dev, "up"])?;
            let delay = format!("{:.3}ms", rtt_ms / 2.0);
            let mut q = vec![
                "tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", &delay,
            ];
            if let Some(r) = rate {
                q.extend(["rate", r]);
            }
            // A queue deep enough that netem drops nothing.
            q.extend(["limit", "100000"]);
            self.in_ns(ns, &q)?;
        }
        Ok(())
    }

    fn tun_link(
        &self,
        id: u32,
        client_ip: &str,
        rate_bps: Option<f64>,
        rtt_ms: f64,
    ) -> anyhow::Result<()> {
        let (ts, tc) = (format!("pts{id}"), format!("ptc{id}"));
        let fs = open_tun(&ts).context("opening a TUN device (/dev/net/tun)")?;
        let fc = open_tun(&tc).context("opening a TUN device (/dev/net/tun)")?;
        for (dev, ns, ip, peer) in [
            (&ts, &self.server, self.server_ip.as_str(), client_ip),
            (&tc, &self.client, client_ip, self.server_ip.as_str()),
        ] {
            sh(Command::new("ip").args(["link", "set", dev, "netns", ns]))?;
            self.in_ns(ns, &["ip", "addr", "add", ip, "peer", peer, "dev", dev])?;
            self.in_ns(
                ns,
                &["ip", "link", "set", dev, "mtu", &TUN_MTU.to_string(), "up"],
            )?;
            // TCP's initial window is 10 segments: with jumbo frames that would be 6× the bytes
            // of a 1500-byte link, so the route starts with 2 (≈ 18 KB, as 10 × 1460 B would).
            self.in_ns(
                ns,
                &[
                    "ip", "route", "replace", peer, "dev", dev, "src", ip, "initcwnd", "2",
                ],
            )?;
        }
        let one_way = Duration::from_secs_f64(rtt_ms / 2000.0);
        let (fs2, fc2) = (fs.try_clone()?, fc.try_clone()?);
        spawn_direction(fc, fs2, rate_bps, one_way); // client → server
        spawn_direction(fs, fc2, rate_bps, one_way); // server → client
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace removes its devices (the veth pair, or the TUN end; the emulator's
        // threads end with the process).
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Opens TUN device `name` (IFF_TUN | IFF_NO_PI: raw IP packets).
fn open_tun(name: &str) -> std::io::Result<File> {
    const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: libc::c_short,
        pad: [u8; 22],
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; 16],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        pad: [0; 22],
    };
    let n = name.len().min(15);
    req.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: TUNSETIFF reads and writes an ifreq-sized struct at the pointer, which lives here.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// One direction of the link: packets read from `from` are serialised at `rate_bps` behind the
/// ones before them (an unbounded FIFO: nothing is dropped, as with netem's large limit) and
/// written to `to` one-way delay later.
fn spawn_direction(mut from: File, mut to: File, rate_bps: Option<f64>, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut free_at = Instant::now();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match from.read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            let now = Instant::now();
            let start = free_at.max(now);
            let tx_time = rate_bps
                .map(|r| Duration::from_secs_f64(n as f64 * 8.0 / r))
                .unwrap_or_default();
            free_at = start + tx_time;
            if tx.send((free_at + delay, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((at, pkt)) = rx.recv() {
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            if to.write(&pkt).is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_tc_units() {
        assert_eq!(parse_rate("100mbit").unwrap(), 1e8);
        assert_eq!(parse_rate("1gbit").unwrap(), 1e9);
        assert_eq!(parse_rate("1.5Mbit").unwrap(), 1.5e6);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("100mb").is_err());
    }
}
