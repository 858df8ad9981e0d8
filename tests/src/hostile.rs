//! Hostile connections for slow-loris tests and figures: silent ones, ones that trickle a byte
//! at a time, and ones that send a valid hello and then stall. Each can come from its own
//! loopback address (127.0.0.2, ...) so per-address limits can be exercised on one machine.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use protocol::messages::{ClientHello, SessionMode, PROTOCOL_VERSION};
use socket2::{Domain, Socket, Type};

/// Connects to `addr` from the local address `from` (any port).
pub fn connect_from(addr: &str, from: IpAddr) -> std::io::Result<TcpStream> {
    let target: SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("{addr}: {e}")))?;
    let sock = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(from, 0).into())?;
    sock.connect_timeout(&target.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

/// A set of hostile connections, closed when dropped.
#[derive(Default)]
pub struct Horde {
    stop: Arc<AtomicBool>,
    silent: Vec<TcpStream>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Horde {
    /// An empty horde.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens `n` connections that send nothing.
    pub fn silent(&mut self, addr: &str, from: IpAddr, n: usize) {
        for _ in 0..n {
            if let Ok(s) = connect_from(addr, from) {
                self.silent.push(s);
            }
        }
    }

    /// Opens `n` connections that send one byte every `every` (the start of a TLS
    /// ClientHello, or of a pi-net hello frame in plaintext) and never finish.
    pub fn trickle(&mut self, addr: &str, from: IpAddr, n: usize, every: Duration, tls: bool) {
        let bytes: Vec<u8> = if tls {
            vec![
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
            ]
        } else {
            let hello = bincode::serialize(&ClientHello {
                version: PROTOCOL_VERSION,
                batch: 1,
                mode: SessionMode::Inline,
                bank_model: None,
            })
            .unwrap_or_default();
            let mut v = (hello.len() as u32).to_le_bytes().to_vec();
            v.extend_from_slice(&hello);
            v
        };
        for _ in 0..n {
            let Ok(mut s) = connect_from(addr, from) else {
                continue;
            };
            let stop = self.stop.clone();
            let bytes = bytes.clone();
            self.threads.push(thread::spawn(move || {
                for b in bytes.iter().cycle() {
                    if stop.load(Ordering::SeqCst) || s.write_all(&[*b]).is_err() {
                        break;
                    }
                    let mut slept = Duration::ZERO;
                    while slept < every && !stop.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(20));
                        slept += Duration::from_millis(20);
                    }
                }
            }));
        }
    }

    /// Opens `n` connections that complete the handshake, send a valid hello and then stall
    /// without reading or writing (each holds a session slot until its phase deadline).
    pub fn stall_after_hello(
        &mut self,
        addr: &str,
        from: IpAddr,
        n: usize,
        opts: &pi_net::ConnectOptions,
    ) {
        for _ in 0..n {
            let opts = opts.clone();
            let addr = addr.to_string();
            let stop = self.stop.clone();
            self.threads.push(thread::spawn(move || {
                let Ok(sock) = connect_from(&addr, from) else {
                    return;
                };
                let Ok(mut ch) = pi_net::stream::connect_socket(sock, &addr, &opts) else {
                    return;
                };
                let hello = ClientHello {
                    version: PROTOCOL_VERSION,
                    batch: 1,
                    mode: SessionMode::Inline,
                    bank_model: None,
                };
                if ch.send(&hello).and_then(|_| ch.flush()).is_err() {
                    return;
                }
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
            }));
        }
    }

    /// Connections open right now (silent ones; the threads' own are not counted).
    pub fn open(&self) -> usize {
        self.silent.len() + self.threads.len()
    }
}

impl Drop for Horde {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
