//! The Redis replay store against a real `redis-server` started on a free loopback port, stopped
//! by its PID, all bounded in time: ids are single-use across two stores (two replicas), an
//! unreachable Redis is an error (the server then refuses online work), and a restarted Redis
//! is picked up again.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pi_bank::replay::RedisReplay;
use protocol::bank::replay::ReplayGuard;

/// A redis-server child process, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Option<Redis> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on port {port} within 10 s");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn have_redis() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        // CI installs it (scripts/setup.sh test); elsewhere say why nothing ran.
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is missing; run `bash scripts/setup.sh test`"
        );
        eprintln!("skipped: redis-server not installed (bash scripts/setup.sh test)");
    }
    found
}

#[test]
fn ids_are_single_use_across_replicas_and_an_outage_is_an_error() {
    if !have_redis() {
        return;
    }
    let port = free_port();
    let redis = Redis::start(port).expect("start redis-server");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let a = RedisReplay::connect(&redis.url()).unwrap();
    let b = RedisReplay::connect(&redis.url()).unwrap();
    assert!(a.consume(&[1; 16], now + 60, now).unwrap());
    assert!(!a.consume(&[1; 16], now + 60, now).unwrap());
    assert!(
        !b.consume(&[1; 16], now + 60, now).unwrap(),
        "the other replica sees it used"
    );
    assert!(b.consume(&[2; 16], now + 60, now).unwrap());
    // An id is kept until its expiry and then forgotten by Redis itself.
    assert!(a.consume(&[3; 16], now + 1, now).unwrap());
    std::thread::sleep(Duration::from_millis(2100));
    assert!(a.consume(&[3; 16], now + 60, now).unwrap());

    // Redis down: an error, never a "fresh" answer.
    drop(redis);
    let e = a.consume(&[4; 16], now + 60, now).unwrap_err();
    assert!(e.to_string().contains("unavailable"), "{e}");
    assert!(b.consume(&[4; 16], now + 60, now).is_err());
    // Back (empty, as a restarted Redis without persistence is): served again on a new connection.
    let _redis = Redis::start(port).expect("restart redis-server");
    assert!(a.consume(&[4; 16], now + 60, now).unwrap());
    assert!(!b.consume(&[4; 16], now + 60, now).unwrap());
}
