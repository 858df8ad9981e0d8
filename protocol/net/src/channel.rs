use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::check::FrameCheck;
use crate::deadline::Deadlines;
use crate::NetError;

/// Largest frame accepted unless the caller chooses otherwise (64 MiB).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// A length word with this bit set announces an abort frame: the peer's reason for ending the
/// session (UTF-8, at most [`MAX_ABORT_REASON`] bytes), after which it closes the connection.
const ABORT_FLAG: u32 = 1 << 31;
/// Longest abort reason sent or accepted.
pub const MAX_ABORT_REASON: usize = 1024;
/// Time a side that ends a session gives itself to send its reason.
const ABORT_GRACE: Duration = Duration::from_secs(1);
/// Memory for a frame is reserved as its bytes arrive: this much first, then at most doubling.
const GROW_STEP: usize = 1 << 20;

/// The buffer size to read the next part of a `len`-byte frame into, `filled` bytes having
/// arrived: never more than `max(GROW_STEP, 2 · filled)`.
fn next_size(filled: usize, len: usize) -> usize {
    filled + (len - filled).min(GROW_STEP.max(filled))
}

/// Bytes that crossed a channel in each direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes written to the peer, frame headers included.
    pub sent: u64,
    /// Bytes read from the peer, frame headers included.
    pub received: u64,
}

impl Counters {
    /// Traffic since an earlier snapshot.
    pub fn since(&self, earlier: Counters) -> Counters {
        Counters {
            sent: self.sent - earlier.sent,
            received: self.received - earlier.received,
        }
    }

    /// Both directions together.
    pub fn total(&self) -> u64 {
        self.sent + self.received
    }
}

/// A framed, buffered, byte-counting duplex channel over any reader/writer pair.
///
/// Optional parts, set by the constructors in [`crate::stream`]: the connection's
/// [`Deadlines`] (moved per phase with [`Channel::begin_phase`]), a per-frame integrity check
/// for plaintext connections, and detection of a peer that answers with TLS.
pub struct Channel<R: Read, W: Write> {
    reader: BufReader<R>,
    writer: BufWriter<W>,
    counters: Counters,
    max_frame: usize,
    cap: usize,
    deadlines: Option<Deadlines>,
    check: Option<FrameCheck>,
    sniff_tls: Option<Sniff>,
}

/// Which TLS records a plaintext channel watches for in its first frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// A server: a TLS ClientHello record (0x16 0x03 0x01) is refused at once.
    ClientHello,
    /// A client: a TLS alert record (0x15 0x03 0x0{1,3}) explains a failure that follows.
    Alert,
}

/// The channel used by tests and benchmarks over plain loopback sockets (no deadlines, no
/// frame check): see [`crate::NetChannel`] for connections between real processes.
pub type TcpChannel = Channel<TcpStream, TcpStream>;

impl TcpChannel {
    /// Wraps a connected socket (Nagle disabled: the protocol flushes whole messages).
    pub fn from_tcp(stream: TcpStream) -> io::Result<Self> {
        stream.set_nodelay(true)?;
        let reader = stream.try_clone()?;
        Ok(Channel::new(reader, stream))
    }

    /// Connects to `addr` and wraps the socket.
    pub fn connect(addr: &str) -> io::Result<Self> {
        Self::from_tcp(TcpStream::connect(addr)?)
    }

    /// Sets (or clears) the socket read timeout; a timed-out read is a `Timeout` error.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.reader.get_ref().set_read_timeout(t)
    }
}

impl<R: Read, W: Write> Channel<R, W> {
    /// Builds a channel from separate read and write halves.
    pub fn new(reader: R, writer: W) -> Self {
        Channel {
            reader: BufReader::with_capacity(1 << 16, reader),
            writer: BufWriter::with_capacity(1 << 16, writer),
            counters: Counters::default(),
            max_frame: DEFAULT_MAX_FRAME,
            cap: u32::MAX as usize >> 1,
            deadlines: None,
            check: None,
            sniff_tls: None,
        }
    }

    /// Sets the largest frame this side will accept.
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max.min(self.cap);
        self
    }

    /// Caps every later per-phase limit at `cap` (an operator's `--max-frame-mib`).
    pub fn with_frame_cap(mut self, cap: usize) -> Self {
        self.cap = cap.min(u32::MAX as usize >> 1);
        self.max_frame = self.max_frame.min(self.cap);
        self
    }

    /// Enforces `deadlines` (their stream enforces them on every call; this side moves them).
    pub(crate) fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = Some(deadlines);
        self
    }

    /// Appends a per-frame integrity check (plaintext connections; see [`crate::check`]).
    pub(crate) fn with_frame_check(mut self) -> Self {
        self.check = Some(FrameCheck::default());
        self
    }

    /// Reports a peer whose first bytes look like TLS as [`NetError::PeerSpeaksTls`].
    pub(crate) fn sniffing_tls(mut self, sniff: Sniff) -> Self {
        self.sniff_tls = Some(sniff);
        self
    }

    /// Largest frame this side accepts now.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The largest frame any phase may accept (the operator's cap).
    pub fn frame_cap(&self) -> usize {
        self.cap
    }

    /// Bytes moved so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The connection's deadlines, when it has any.
    pub fn deadlines(&self) -> Option<&Deadlines> {
        self.deadlines.as_ref()
    }

    /// Starts a protocol phase: frames from the peer may be at most `max_frame` bytes (capped by
    /// the operator's limit) and, on a connection with deadlines, the phase must end within
    /// `allowed` (`None`: only the idle and session limits apply).
    pub fn begin_phase(&mut self, name: &str, allowed: Option<Duration>, max_frame: usize) {
        self.max_frame = max_frame.min(self.cap);
        if let Some(d) = &self.deadlines {
            d.set_phase(name, allowed);
        }
    }

    /// On a connection with deadlines, the whole session must end within `allowed` from now.
    pub fn set_session_deadline(&mut self, allowed: Duration) {
        if let Some(d) = &self.deadlines {
            d.set_session(allowed);
        }
    }

    /// Queues one frame (buffered; call `flush` before waiting on the peer).
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<(), NetError> {
        if payload.len() >= ABORT_FLAG as usize {
            return Err(NetError::FrameTooLarge {
                len: payload.len(),
                max: ABORT_FLAG as usize - 1,
            });
        }
        let len = (payload.len() as u32).to_le_bytes();
        self.writer.write_all(&len)?;
        self.writer.write_all(payload)?;
        self.counters.sent += 4 + payload.len() as u64;
        if let Some(check) = &mut self.check {
            let tag = check.seal(payload);
            self.writer.write_all(&tag)?;
            self.counters.sent += tag.len() as u64;
        }
        Ok(())
    }

    /// Tells the peer why this side ends the session, best effort (the reason is cut to
    /// [`MAX_ABORT_REASON`] bytes; errors are ignored since the session is ending anyway). On a
    /// connection with deadlines, the phase and session deadlines give way to one second.
    pub fn send_abort(&mut self, reason: &str) {
        if let Some(d) = &self.deadlines {
            d.closing(ABORT_GRACE);
        }
        let mut end = reason.len().min(MAX_ABORT_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let bytes = &reason.as_bytes()[..end];
        let header = (ABORT_FLAG | bytes.len() as u32).to_le_bytes();
        let _ = self
            .writer
            .write_all(&header)
            .and_then(|_| self.writer.write_all(bytes))
            .and_then(|_| self.writer.flush());
    }

    fn read_exact_or_closed(&mut self, buf: &mut [u8]) -> Result<(), NetError> {
        self.reader.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                NetError::Closed
            } else {
                e.into()
            }
        })
    }

    /// Reads one frame, refusing frames above the current limit; memory grows only as the
    /// frame's bytes arrive, so a peer that announces a large frame and stalls costs little.
    pub fn recv_frame(&mut self) -> Result<Vec<u8>, NetError> {
        let mut header = [0u8; 4];
        self.read_exact_or_closed(&mut header)?;
        let suspect_tls = match self.sniff_tls.take() {
            Some(Sniff::ClientHello) if header[..3] == [0x16, 0x03, 0x01] => {
                return Err(NetError::PeerSpeaksTls)
            }
            Some(Sniff::Alert) => header[0] == 0x15 && header[1] == 0x03,
            _ => false,
        };
        let result = self.recv_body(header);
        match result {
            Err(NetError::Closed | NetError::Timeout(_) | NetError::Corrupt(_))
            | Err(NetError::FrameTooLarge { .. })
                if suspect_tls =>
            {
                Err(NetError::PeerSpeaksTls)
            }
            r => r,
        }
    }

    fn recv_body(&mut self, header: [u8; 4]) -> Result<Vec<u8>, NetError> {
        let word = u32::from_le_bytes(header);
        if word & ABORT_FLAG != 0 {
            let n = (word & !ABORT_FLAG) as usize;
            if n > MAX_ABORT_REASON {
                return Err(NetError::Corrupt(format!(
                    "abort frame of {n} bytes (at most {MAX_ABORT_REASON})"
                )));
            }
            let mut reason = vec![0u8; n];
            self.read_exact_or_closed(&mut reason)?;
            return Err(NetError::Aborted(
                String::from_utf8_lossy(&reason).into_owned(),
            ));
        }
        let len = word as usize;
        if len > self.max_frame {
            return Err(NetError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let mut buf = Vec::with_capacity(next_size(0, len));
        while buf.len() < len {
            let at = buf.len();
            buf.resize(next_size(at, len), 0);
            self.read_exact_or_closed(&mut buf[at..])?;
        }
        self.counters.received += 4 + len as u64;
        if self.check.is_some() {
            let mut tag = [0u8; crate::check::TAG_BYTES];
            self.read_exact_or_closed(&mut tag)?;
            self.counters.received += tag.len() as u64;
            if let Some(check) = &mut self.check {
                check.open(&buf, &tag)?;
            }
        }
        Ok(buf)
    }

    /// Serialises `msg` with bincode and queues it as one frame.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), NetError> {
        let bytes = bincode::serialize(msg).map_err(|e| NetError::Decode(e.to_string()))?;
        self.send_frame(&bytes)
    }

    /// Reads one frame and decodes it as `T`, bounded by the frame limit.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, NetError> {
        use bincode::Options;
        let bytes = self.recv_frame()?;
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .with_limit(self.max_frame as u64)
            .deserialize(&bytes)
            .map_err(|e| NetError::Decode(e.to_string()))
    }

    /// Pushes queued frames to the peer.
    pub fn flush(&mut self) -> Result<(), NetError> {
        self.writer.flush()?;
        Ok(())
    }

    /// The reading half under the buffer.
    pub(crate) fn reader_half(&self) -> &R {
        self.reader.get_ref()
    }
}

/// Two ends of a real loopback TCP connection (for tests and benchmarks).
pub fn loopback_pair() -> io::Result<(TcpChannel, TcpChannel)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let client = std::thread::spawn(move || TcpStream::connect(addr));
    let (server, _) = listener.accept()?;
    let client = client
        .join()
        .map_err(|_| io::Error::other("connect thread panicked"))??;
    Ok((TcpChannel::from_tcp(server)?, TcpChannel::from_tcp(client)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_are_counted() {
        let (mut a, mut b) = loopback_pair().unwrap();
        a.send(&(7u32, vec![1u8, 2, 3])).unwrap();
        a.flush().unwrap();
        let got: (u32, Vec<u8>) = b.recv().unwrap();
        assert_eq!(got, (7, vec![1, 2, 3]));
        assert_eq!(a.counters().sent, b.counters().received);
        assert!(a.counters().sent > 4);
    }

    #[test]
    fn oversized_frame_is_refused() {
        let (mut a, b) = loopback_pair().unwrap();
        let mut b = b.with_max_frame(8);
        a.send_frame(&[0u8; 9]).unwrap();
        a.flush().unwrap();
        assert!(matches!(
            b.recv_frame(),
            Err(NetError::FrameTooLarge { len: 9, max: 8 })
        ));
    }

    #[test]
    fn the_phase_limit_moves_and_the_operator_cap_bounds_it() {
        let (mut a, b) = loopback_pair().unwrap();
        let mut b = b.with_frame_cap(100);
        b.begin_phase("small", None, 10);
        a.send_frame(&[0u8; 11]).unwrap();
        a.send_frame(&[0u8; 50]).unwrap();
        a.flush().unwrap();
        assert!(matches!(
            b.recv_frame(),
            Err(NetError::FrameTooLarge { len: 11, max: 10 })
        ));
        let (mut a, b) = loopback_pair().unwrap();
        let mut b = b.with_frame_cap(100);
        b.begin_phase("large", None, 1000);
        assert_eq!(b.max_frame(), 100);
        a.send_frame(&[0u8; 50]).unwrap();
        a.flush().unwrap();
        assert_eq!(b.recv_frame().unwrap().len(), 50);
    }

    #[test]
    fn truncated_frame_is_closed_not_panic() {
        let (a, mut b) = loopback_pair().unwrap();
        let mut w = a.writer;
        w.write_all(&10u32.to_le_bytes()).unwrap();
        w.write_all(&[1, 2, 3]).unwrap();
        w.flush().unwrap();
        drop(w);
        drop(a.reader);
        assert!(matches!(b.recv_frame(), Err(NetError::Closed)));
    }

    #[test]
    fn a_large_announced_frame_costs_memory_only_as_bytes_arrive() {
        let (a, mut b) = loopback_pair().unwrap();
        let mut w = a.writer;
        // Announces 60 MiB, sends 100 bytes, then closes: the reader allocates ~1 MiB, not 60.
        w.write_all(&(60u32 << 20).to_le_bytes()).unwrap();
        w.write_all(&[7u8; 100]).unwrap();
        w.flush().unwrap();
        drop(w);
        drop(a.reader);
        assert!(matches!(b.recv_frame(), Err(NetError::Closed)));
        // The growth rule: before any byte, one step; after k bytes, at most max(step, 2k).
        let len = 60usize << 20;
        assert_eq!(next_size(0, len), GROW_STEP);
        let mut filled = 0;
        let mut steps = 0;
        while filled < len {
            let next = next_size(filled, len);
            assert!(
                next > filled && next <= GROW_STEP.max(2 * filled),
                "{filled} -> {next}"
            );
            filled = next;
            steps += 1;
        }
        assert_eq!(filled, len);
        assert!(steps <= 8, "{steps} reallocations");
        assert_eq!(next_size(0, 10), 10);
    }

    #[test]
    fn an_abort_frame_carries_the_peers_reason() {
        let (mut a, mut b) = loopback_pair().unwrap();
        a.send_abort("phase 'offline' ran past its deadline");
        match b.recv_frame() {
            Err(NetError::Aborted(r)) => assert!(r.contains("deadline"), "{r}"),
            other => panic!("expected an abort, got {other:?}"),
        }
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let (mut a, mut b) = loopback_pair().unwrap();
        a.send_frame(&[0xff; 3]).unwrap();
        a.flush().unwrap();
        let r: Result<(u64, String), _> = b.recv();
        assert!(matches!(r, Err(NetError::Decode(_))));
    }

    #[test]
    fn a_tls_alert_on_a_plaintext_channel_is_named() {
        let (a, b) = loopback_pair().unwrap();
        let mut b = b.sniffing_tls(Sniff::Alert);
        let mut w = a.writer;
        // A fatal TLS alert record, then close: what a TLS server answers a plaintext hello.
        w.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])
            .unwrap();
        w.flush().unwrap();
        drop(w);
        drop(a.reader);
        assert!(matches!(b.recv_frame(), Err(NetError::PeerSpeaksTls)));
    }
}
