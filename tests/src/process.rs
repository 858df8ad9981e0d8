//! A real `pi-server` process for tests and figures: started on a free port, ready when it logs
//! "listening", stopped by its PID, every wait bounded.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A running `pi-server`; killed when dropped.
pub struct ServerProcess {
    child: Child,
    log: Arc<Mutex<String>>,
    /// The address it listens on (read from its log).
    pub addr: String,
}

/// Where a test server keeps its measured host costs: a cache of the tests' own (see
/// [`test_host_costs`]), or the user's (`~/.cache/pi-server/`, for figures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostCostCache {
    /// [`test_host_costs`]: figures measured under test load stay out of the user's cache.
    Tests,
    /// The server's default (the user's cache).
    User,
}

/// The host-cost cache the tests' servers share (`PI_SERVER_HOST_COSTS`): outside the user's
/// `~/.cache/pi-server/`, so a measurement taken while the suite loads the machine never skews
/// the plans of a real server; shared by the suite so each run measures once.
pub fn test_host_costs() -> PathBuf {
    std::env::temp_dir()
        .join(format!("pi-tests-{}", user_tag()))
        .join("host-costs.json")
}

/// A `pi-server` command whose host costs go to [`test_host_costs`].
pub fn server_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("PI_SERVER_HOST_COSTS", test_host_costs());
    cmd
}

fn user_tag() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "user".into())
}

impl ServerProcess {
    /// Starts `bin` with `args` plus `--listen 127.0.0.1:0` and waits (≤ 60 s) until it listens;
    /// its host costs are cached in [`test_host_costs`].
    pub fn start(bin: &Path, args: &[&str]) -> Result<Self, String> {
        Self::start_with(bin, args, HostCostCache::Tests)
    }

    /// [`ServerProcess::start`] with a choice of host-cost cache.
    pub fn start_with(bin: &Path, args: &[&str], cache: HostCostCache) -> Result<Self, String> {
        let mut cmd = match cache {
            HostCostCache::Tests => server_command(bin),
            HostCostCache::User => Command::new(bin),
        };
        let mut child = cmd
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let start = Instant::now();
        let mut server = ServerProcess {
            child,
            log,
            addr: String::new(),
        };
        loop {
            if let Some(addr) = listening_addr(&server.log()) {
                server.addr = addr;
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("pi-server exited with {status}:\n{}", server.log()));
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "pi-server did not listen within 60 s:\n{}",
                    server.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds (user + system) it has used so far (Linux `/proc`).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks())
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) -> Result<(), String> {
        let st = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        st.success()
            .then_some(())
            .ok_or_else(|| format!("kill -TERM failed: {st}"))
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The address in a "listening addr=..." log line.
fn listening_addr(log: &str) -> Option<String> {
    let line = log.lines().find(|l| l.contains("listening"))?;
    let at = line.find("addr=")? + 5;
    Some(line[at..].split_whitespace().next()?.to_string())
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("pi-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_address_is_read_from_the_log() {
        let log = "x\n2026 INFO pi_server: listening addr=127.0.0.1:4242 security=\"TLS 1.3\"\n";
        assert_eq!(listening_addr(log).as_deref(), Some("127.0.0.1:4242"));
    }
}
