//! Deadlines enforced on every read and write of a socket, below the framing and below TLS.
//!
//! Three limits apply to each blocking call, whichever ends first:
//! * the **idle timeout**: the longest one read or write may wait without moving a byte;
//! * the **phase deadline**: an absolute instant by which the current protocol phase must end
//!   (set by the session code per phase, from the phase's bytes at a minimum data rate plus
//!   its compute), so a peer that trickles one byte at a time cannot stretch a phase;
//! * the **session deadline**: an absolute instant for the whole connection.
//!
//! A shared [`Cancel`] token ends every call within [`POLL_SLICE`] (graceful shutdown).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest a blocked call sleeps before it re-checks the cancel token and the deadlines.
pub const POLL_SLICE: Duration = Duration::from_millis(500);

/// A token that ends every call of every connection holding it (e.g. server shutdown).
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<OnceLock<String>>);

impl Cancel {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels with `reason` (the first reason wins); blocked calls end within [`POLL_SLICE`].
    pub fn cancel(&self, reason: &str) {
        let _ = self.0.set(reason.to_string());
    }

    /// The reason, once cancelled.
    pub fn reason(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

/// Why a call was cut short: which limit ended it (carried inside an `io::Error`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expired {
    /// No byte moved for the idle timeout.
    Idle(Duration),
    /// The named phase ran past its deadline (its allowed length is given).
    Phase { name: String, allowed: Duration },
    /// The session ran past its deadline.
    Session(Duration),
    /// The connection was cancelled (e.g. server shutdown).
    Cancelled(String),
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expired::Idle(d) => write!(
                f,
                "timed out: no data moved for {} (idle timeout)",
                secs(*d)
            ),
            Expired::Phase { name, allowed } => write!(
                f,
                "timed out: phase '{name}' ran past its deadline of {}",
                secs(*allowed)
            ),
            Expired::Session(d) => {
                write!(
                    f,
                    "timed out: the session ran past its deadline of {}",
                    secs(*d)
                )
            }
            Expired::Cancelled(reason) => write!(f, "connection cancelled: {reason}"),
        }
    }
}

impl std::error::Error for Expired {}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[derive(Debug)]
struct Phase {
    name: String,
    at: Instant,
    allowed: Duration,
}

#[derive(Debug)]
struct State {
    idle: Duration,
    phase: Option<Phase>,
    session: Option<(Instant, Duration)>,
    closing: bool,
}

/// The limits of one connection, shared by its stream (which enforces them) and the session
/// code (which moves the phase deadline). Cloning shares the same limits.
#[derive(Clone, Debug)]
pub struct Deadlines {
    state: Arc<Mutex<State>>,
    cancel: Cancel,
}

impl Deadlines {
    /// Limits with only an idle timeout (at least 1 ms).
    pub fn new(idle: Duration) -> Self {
        Deadlines {
            state: Arc::new(Mutex::new(State {
                idle: idle.max(Duration::from_millis(1)),
                phase: None,
                session: None,
                closing: false,
            })),
            cancel: Cancel::new(),
        }
    }

    /// Shares `cancel` with other connections (a server cancels them all at shutdown).
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// The cancel token of this connection.
    pub fn cancel_token(&self) -> &Cancel {
        &self.cancel
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the idle timeout.
    pub fn set_idle(&self, idle: Duration) {
        self.lock().idle = idle.max(Duration::from_millis(1));
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.lock().idle
    }

    /// Starts phase `name`, which must end within `allowed` from now (`None`: no phase limit).
    pub fn set_phase(&self, name: &str, allowed: Option<Duration>) {
        self.lock().phase = allowed.map(|allowed| Phase {
            name: name.to_string(),
            at: Instant::now() + allowed,
            allowed,
        });
    }

    /// The whole connection must end within `allowed` from now.
    pub fn set_session(&self, allowed: Duration) {
        self.lock().session = Some((Instant::now() + allowed, allowed));
    }

    /// The connection is ending: the phase and session deadlines and the cancel token no longer
    /// apply, only `allowed` from now (time to tell the peer why, then close).
    pub fn closing(&self, allowed: Duration) {
        let mut st = self.lock();
        st.closing = true;
        st.session = None;
        st.phase = Some(Phase {
            name: "closing".into(),
            at: Instant::now() + allowed,
            allowed,
        });
    }

    /// How long a call that started at `started` may still block, or why it may not.
    pub fn budget(&self, started: Instant) -> Result<Duration, Expired> {
        let now = Instant::now();
        let st = self.lock();
        if let Some(reason) = self.cancel.reason().filter(|_| !st.closing) {
            return Err(Expired::Cancelled(reason.to_string()));
        }
        let mut best = (started + st.idle, Expired::Idle(st.idle));
        if let Some(p) = &st.phase {
            if p.at < best.0 {
                best = (
                    p.at,
                    Expired::Phase {
                        name: p.name.clone(),
                        allowed: p.allowed,
                    },
                );
            }
        }
        if let Some((at, allowed)) = st.session {
            if at < best.0 {
                best = (at, Expired::Session(allowed));
            }
        }
        let (at, why) = best;
        match at.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(why),
        }
    }

    /// The error a call returns when `why` ended it.
    pub(crate) fn error(why: Expired) -> io::Error {
        let kind = match why {
            Expired::Cancelled(_) => io::ErrorKind::ConnectionAborted,
            _ => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, why)
    }
}

/// A TCP socket whose every read and write honours a connection's [`Deadlines`].
#[derive(Debug)]
pub struct DeadlineStream {
    sock: TcpStream,
    deadlines: Deadlines,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl DeadlineStream {
    /// Wraps a connected, blocking socket (Nagle disabled: the protocol flushes whole messages).
    pub fn new(sock: TcpStream, deadlines: Deadlines) -> io::Result<Self> {
        sock.set_nodelay(true)?;
        sock.set_nonblocking(false)?;
        Ok(DeadlineStream {
            sock,
            deadlines,
            read_timeout: None,
            write_timeout: None,
        })
    }

    /// The limits this stream enforces.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// The socket (for shutdown and addresses).
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// The slice the next blocking call may sleep, or the reason it may not start.
    fn slice(&self, started: Instant) -> io::Result<(Duration, bool)> {
        let left = self.deadlines.budget(started).map_err(Deadlines::error)?;
        let slice = left.min(POLL_SLICE).max(Duration::from_millis(1));
        Ok((slice, slice >= left))
    }

    fn retry<T>(
        &mut self,
        write: bool,
        mut op: impl FnMut(&mut TcpStream) -> io::Result<T>,
    ) -> io::Result<T> {
        let started = Instant::now();
        loop {
            let (slice, last) = self.slice(started)?;
            // Only touch the socket option when the slice changes noticeably.
            let cached = if write {
                &mut self.write_timeout
            } else {
                &mut self.read_timeout
            };
            let stale = cached.is_none_or(|c| c.abs_diff(slice) > Duration::from_millis(20));
            if stale {
                if write {
                    self.sock.set_write_timeout(Some(slice))?;
                } else {
                    self.sock.set_read_timeout(Some(slice))?;
                }
                *cached = Some(slice);
            }
            match op(&mut self.sock) {
                Err(e) if is_timeout(&e) => {
                    if last {
                        // Report which limit ended it (re-evaluated now that it has passed).
                        let why = self
                            .deadlines
                            .budget(started)
                            .err()
                            .unwrap_or(Expired::Idle(self.deadlines.idle()));
                        return Err(Deadlines::error(why));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.retry(false, |s| s.read(buf))
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.retry(true, |s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn a_trickling_peer_is_cut_at_the_phase_deadline_not_kept_alive_by_each_byte() {
        let (mut a, b) = pair();
        let d = Deadlines::new(Duration::from_millis(400));
        d.set_phase("hello", Some(Duration::from_millis(900)));
        let mut s = DeadlineStream::new(b, d).unwrap();
        let t = std::thread::spawn(move || {
            // One byte every 200 ms: never idle for 400 ms, but slower than the phase allows.
            for _ in 0..20 {
                if a.write_all(&[1]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let start = Instant::now();
        let mut buf = [0u8; 64];
        let err = s.read_exact(&mut buf).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("phase 'hello'"), "{err}");
        assert!(took < Duration::from_millis(1500), "took {took:?}");
        drop(s);
        t.join().unwrap();
    }

    #[test]
    fn a_silent_peer_hits_the_idle_timeout_and_the_error_says_so() {
        let (_a, b) = pair();
        let mut s = DeadlineStream::new(b, Deadlines::new(Duration::from_millis(300))).unwrap();
        let start = Instant::now();
        let err = s.read(&mut [0u8; 4]).unwrap_err();
        assert!(start.elapsed() < Duration::from_millis(1000));
        assert!(err.to_string().contains("idle timeout"), "{err}");
    }

    #[test]
    fn a_peer_that_never_reads_hits_the_write_deadline() {
        let (_a, b) = pair();
        let d = Deadlines::new(Duration::from_millis(300));
        let mut s = DeadlineStream::new(b, d).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let start = Instant::now();
        let err = loop {
            if let Err(e) = s.write_all(&chunk) {
                break e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "writes never blocked"
            );
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn cancel_ends_a_blocked_read_within_a_poll_slice() {
        let (_a, b) = pair();
        let cancel = Cancel::new();
        let d = Deadlines::new(Duration::from_secs(60)).with_cancel(cancel.clone());
        let mut s = DeadlineStream::new(b, d).unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            cancel.cancel("server shutting down");
        });
        let start = Instant::now();
        let err = s.read(&mut [0u8; 4]).unwrap_err();
        assert!(start.elapsed() < POLL_SLICE + Duration::from_millis(400));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("server shutting down"), "{err}");
        t.join().unwrap();
    }

    #[test]
    fn the_session_deadline_bounds_every_phase() {
        let (_a, b) = pair();
        let d = Deadlines::new(Duration::from_secs(60));
        d.set_phase("offline", Some(Duration::from_secs(60)));
        d.set_session(Duration::from_millis(300));
        let mut s = DeadlineStream::new(b, d).unwrap();
        let err = s.read(&mut [0u8; 4]).unwrap_err();
        assert!(err.to_string().contains("session"), "{err}");
    }
}
