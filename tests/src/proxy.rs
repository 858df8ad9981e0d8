//! A frame-aware mutating proxy between a client and a server: it forwards one connection
//! frame by frame in both directions and applies one mutation (a bit flip, a truncation, a
//! duplicated, dropped or reordered frame) to one frame of one direction. Frames are pi-net
//! frames of a plaintext connection, or TLS records.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rand::{Rng, SeedableRng};

/// A direction of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client → server.
    Up,
    /// Server → client.
    Down,
}

/// What the proxy counts as a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// pi-net plaintext frames: length word, payload, 16-byte check (abort frames: no check).
    PiNet,
    /// TLS records: 5-byte header with a big-endian length.
    TlsRecords,
}

/// One change to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Forward everything unchanged.
    None,
    /// Flip bit `bit` of byte `offset` (modulo the frame's length, header included).
    Flip {
        dir: Dir,
        frame: usize,
        offset: usize,
        bit: u8,
    },
    /// Forward the first `keep` bytes (modulo the length) of the frame, then cut the connection.
    Truncate { dir: Dir, frame: usize, keep: usize },
    /// Send the frame twice.
    Duplicate { dir: Dir, frame: usize },
    /// Send the frame after the next one (or, if none follows within 300 ms, unchanged).
    Reorder { dir: Dir, frame: usize },
    /// Do not send the frame.
    Drop { dir: Dir, frame: usize },
}

impl Mutation {
    fn target(&self) -> Option<(Dir, usize)> {
        match *self {
            Mutation::None => None,
            Mutation::Flip { dir, frame, .. }
            | Mutation::Truncate { dir, frame, .. }
            | Mutation::Duplicate { dir, frame }
            | Mutation::Reorder { dir, frame }
            | Mutation::Drop { dir, frame } => Some((dir, frame)),
        }
    }

    /// `n` mutations drawn from `seed`: directions alternate (up first), kinds cycle every two
    /// (flip, truncate, duplicate, reorder, drop), each at a random frame among the `frames`
    /// [up, down] a clean session has, with a random offset, bit or cut.
    pub fn list(seed: u64, n: usize, frames: [usize; 2]) -> Vec<Mutation> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let dir = if i.is_multiple_of(2) {
                    Dir::Up
                } else {
                    Dir::Down
                };
                let frame = rng.gen_range(0..frames[i % 2].max(1));
                match (i / 2) % 5 {
                    0 => Mutation::Flip {
                        dir,
                        frame,
                        offset: rng.gen(),
                        bit: rng.gen(),
                    },
                    1 => Mutation::Truncate {
                        dir,
                        frame,
                        keep: rng.gen(),
                    },
                    2 => Mutation::Duplicate { dir, frame },
                    3 => Mutation::Reorder { dir, frame },
                    _ => Mutation::Drop { dir, frame },
                }
            })
            .collect()
    }

    /// A short name of the kind of mutation.
    pub fn kind(&self) -> &'static str {
        match self {
            Mutation::None => "none",
            Mutation::Flip { .. } => "flip",
            Mutation::Truncate { .. } => "truncate",
            Mutation::Duplicate { .. } => "duplicate",
            Mutation::Reorder { .. } => "reorder",
            Mutation::Drop { .. } => "drop",
        }
    }
}

/// What the proxy saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyReport {
    /// Frames forwarded client → server and server → client.
    pub frames: [usize; 2],
    /// Whether the mutation was applied (its frame existed and, for a reorder, a next frame came).
    pub applied: bool,
}

fn read_frame(src: &mut TcpStream, framing: Framing) -> io::Result<Option<Vec<u8>>> {
    let hdr = match framing {
        Framing::PiNet => 4,
        Framing::TlsRecords => 5,
    };
    let mut frame = vec![0u8; hdr];
    match src.read_exact(&mut frame) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let body = match framing {
        Framing::PiNet => {
            let w = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
            if w & (1 << 31) != 0 {
                (w & !(1 << 31)) as usize
            } else {
                w as usize + pi_net::check::TAG_BYTES
            }
        }
        Framing::TlsRecords => u16::from_be_bytes([frame[3], frame[4]]) as usize,
    };
    frame.resize(hdr + body, 0);
    src.read_exact(&mut frame[hdr..])?;
    Ok(Some(frame))
}

struct Pump {
    dir: Dir,
    framing: Framing,
    mutation: Mutation,
    applied: Arc<AtomicBool>,
    cut: Arc<AtomicBool>,
}

impl Pump {
    /// Forwards `src` to `dst` frame by frame; returns the number of frames forwarded.
    fn run(&self, mut src: TcpStream, mut dst: TcpStream) -> usize {
        let target = self.mutation.target().filter(|(d, _)| *d == self.dir);
        let mut count = 0usize;
        let mut held: Option<Vec<u8>> = None;
        loop {
            if held.is_some() {
                let _ = src.set_read_timeout(Some(Duration::from_millis(300)));
            } else {
                let _ = src.set_read_timeout(Some(Duration::from_secs(60)));
            }
            let frame = match read_frame(&mut src, self.framing) {
                Ok(Some(f)) => f,
                Err(e)
                    if held.is_some()
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    // Nothing follows the held frame: send it as it was.
                    if let Some(h) = held.take() {
                        if dst.write_all(&h).is_err() {
                            break;
                        }
                    }
                    continue;
                }
                _ => break,
            };
            let index = count;
            count += 1;
            if let Some(h) = held.take() {
                self.applied.store(true, Ordering::SeqCst);
                if dst
                    .write_all(&frame)
                    .and_then(|_| dst.write_all(&h))
                    .is_err()
                {
                    break;
                }
                continue;
            }
            let mut frame = frame;
            if target.is_some_and(|(_, f)| f == index) {
                match self.mutation {
                    Mutation::Flip { offset, bit, .. } => {
                        let at = offset % frame.len();
                        frame[at] ^= 1 << (bit % 8);
                        self.applied.store(true, Ordering::SeqCst);
                    }
                    Mutation::Truncate { keep, .. } => {
                        let keep = keep % frame.len();
                        let _ = dst.write_all(&frame[..keep]);
                        self.applied.store(true, Ordering::SeqCst);
                        self.cut.store(true, Ordering::SeqCst);
                        let _ = dst.shutdown(Shutdown::Both);
                        let _ = src.shutdown(Shutdown::Both);
                        return count;
                    }
                    Mutation::Duplicate { .. } => {
                        self.applied.store(true, Ordering::SeqCst);
                        if dst.write_all(&frame).is_err() {
                            break;
                        }
                    }
                    Mutation::Reorder { .. } => {
                        held = Some(frame);
                        continue;
                    }
                    Mutation::Drop { .. } => {
                        self.applied.store(true, Ordering::SeqCst);
                        continue;
                    }
                    Mutation::None => {}
                }
            }
            if dst.write_all(&frame).is_err() {
                break;
            }
        }
        if let Some(h) = held {
            let _ = dst.write_all(&h);
        }
        if self.cut.load(Ordering::SeqCst) {
            let _ = src.shutdown(Shutdown::Both);
            let _ = dst.shutdown(Shutdown::Both);
        } else {
            let _ = dst.shutdown(Shutdown::Write);
        }
        count
    }
}

/// Starts a proxy for one connection to `upstream`; returns its address and a handle that
/// yields what it saw once both directions have ended.
pub fn spawn(
    upstream: &str,
    framing: Framing,
    mutation: Mutation,
) -> io::Result<(String, thread::JoinHandle<ProxyReport>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let upstream = upstream.to_string();
    let h = thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return ProxyReport::default();
        };
        let Ok(server) = TcpStream::connect(&upstream) else {
            return ProxyReport::default();
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let applied = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicBool::new(false));
        let pump = |dir| Pump {
            dir,
            framing,
            mutation,
            applied: applied.clone(),
            cut: cut.clone(),
        };
        let (up, down) = (pump(Dir::Up), pump(Dir::Down));
        let (c2, s2) = match (client.try_clone(), server.try_clone()) {
            (Ok(c), Ok(s)) => (c, s),
            _ => return ProxyReport::default(),
        };
        let t = thread::spawn(move || down.run(s2, c2));
        let n_up = up.run(client, server);
        let n_down = t.join().unwrap_or(0);
        ProxyReport {
            frames: [n_up, n_down],
            applied: applied.load(Ordering::SeqCst),
        }
    });
    Ok((addr, h))
}

/// Forwards one connection to `upstream` unchanged and records every byte the client sent
/// (for replay figures); the handle yields the recording once the connection has ended.
pub fn record(upstream: &str) -> io::Result<(String, thread::JoinHandle<Vec<u8>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let upstream = upstream.to_string();
    let h = thread::spawn(move || {
        let Ok((mut client, _)) = listener.accept() else {
            return Vec::new();
        };
        let Ok(mut server) = TcpStream::connect(&upstream) else {
            return Vec::new();
        };
        let (mut c2, mut s2) = match (client.try_clone(), server.try_clone()) {
            (Ok(c), Ok(s)) => (c, s),
            _ => return Vec::new(),
        };
        let back = thread::spawn(move || {
            let _ = io::copy(&mut s2, &mut c2);
            let _ = c2.shutdown(Shutdown::Write);
        });
        let mut log = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.extend_from_slice(&buf[..n]);
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server.shutdown(Shutdown::Write);
        let _ = back.join();
        log
    });
    Ok((addr, h))
}
