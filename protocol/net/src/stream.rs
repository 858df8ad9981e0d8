//! Connections between real processes: TLS (default) or plaintext with frame checks, every
//! read and write under the connection's [`Deadlines`].
//!
//! A connection is one socket (or one rustls connection over it) shared by a reader half and
//! a writer half, so the generic `Channel<R, W>` code of the protocol layers stays as it is.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection, StreamOwned};

use crate::channel::{Channel, Sniff};
use crate::check::TAG_BYTES;
use crate::deadline::{DeadlineStream, Deadlines};
use crate::tls::{ClientTls, ServerTls};
use crate::NetError;

enum Inner {
    Plain(DeadlineStream),
    TlsClient(Box<StreamOwned<ClientConnection, DeadlineStream>>),
    TlsServer(Box<StreamOwned<ServerConnection, DeadlineStream>>),
}

impl Inner {
    fn sock(&self) -> &TcpStream {
        match self {
            Inner::Plain(s) => s.socket(),
            Inner::TlsClient(s) => s.sock.socket(),
            Inner::TlsServer(s) => s.sock.socket(),
        }
    }

    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Inner::Plain(s) => s,
            Inner::TlsClient(s) => &mut **s,
            Inner::TlsServer(s) => &mut **s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

type Shared = Arc<Mutex<Inner>>;

fn lock(s: &Shared) -> MutexGuard<'_, Inner> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reading half of a connection (bytes already read by an acceptor come first).
pub struct NetReader {
    shared: Shared,
    prefix: Vec<u8>,
    pos: usize,
}

/// The writing half of a connection.
pub struct NetWriter {
    shared: Shared,
}

impl Read for NetReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.pos);
            buf[..n].copy_from_slice(&self.prefix[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        lock(&self.shared).io().read(buf)
    }
}

impl Write for NetWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.shared).io().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.shared).io().flush()
    }
}

/// A channel over a real connection.
pub type NetChannel = Channel<NetReader, NetWriter>;

/// How a client secures its connection.
#[derive(Clone)]
pub enum ClientSecurity {
    /// TLS 1.3, authenticating the server by `tls`'s CA and `server_name` (default: the host
    /// part of the address connected to).
    Tls {
        tls: ClientTls,
        server_name: Option<String>,
    },
    /// Plain TCP with per-frame integrity checks against accidents, not attackers.
    Plaintext,
}

/// How a client connects.
#[derive(Clone)]
pub struct ConnectOptions {
    /// TLS or plaintext.
    pub security: ClientSecurity,
    /// Longest time to connect and finish the TLS handshake.
    pub connect_timeout: Duration,
    /// Longest any later read or write may wait without progress.
    pub idle_timeout: Duration,
}

impl ConnectOptions {
    /// Plaintext with the given idle timeout and a 10 s connect timeout.
    pub fn plaintext(idle_timeout: Duration) -> Self {
        ConnectOptions {
            security: ClientSecurity::Plaintext,
            connect_timeout: Duration::from_secs(10),
            idle_timeout,
        }
    }
}

/// How a server secures the connections it accepts.
#[derive(Clone)]
pub enum ServerSecurity {
    /// TLS 1.3 with this certificate (and, optionally, required client certificates).
    Tls(ServerTls),
    /// Plain TCP with per-frame integrity checks against accidents, not attackers.
    Plaintext,
}

impl ServerSecurity {
    /// Whether connections are plaintext.
    pub fn is_plaintext(&self) -> bool {
        matches!(self, ServerSecurity::Plaintext)
    }
}

fn host_of(addr: &str) -> &str {
    let host = match addr.rfind(':') {
        Some(i) if !addr[..i].ends_with(':') || addr.starts_with('[') => &addr[..i],
        _ => addr,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `server` says which side this is (it decides which TLS records a plaintext side watches for).
fn channel(
    inner: Inner,
    prefix: Vec<u8>,
    deadlines: Deadlines,
    plaintext: bool,
    server: bool,
) -> NetChannel {
    let shared = Arc::new(Mutex::new(inner));
    let reader = NetReader {
        shared: shared.clone(),
        prefix,
        pos: 0,
    };
    let ch = Channel::new(reader, NetWriter { shared }).with_deadlines(deadlines);
    if plaintext {
        let sniff = if server {
            Sniff::ClientHello
        } else {
            Sniff::Alert
        };
        ch.with_frame_check().sniffing_tls(sniff)
    } else {
        ch
    }
}

fn tcp_connect(addr: &str, timeout: Duration) -> Result<TcpStream, NetError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| NetError::Connect(format!("cannot resolve {addr}: {e}")))?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((a, e)),
        }
    }
    Err(NetError::Connect(match last {
        Some((a, e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            format!(
                "{addr} ({a}) refused the connection: is pi-server running and listening there?"
            )
        }
        Some((a, e))
            if matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            format!(
                "timed out: no answer from {addr} ({a}) within {:.1} s (connect timeout)",
                timeout.as_secs_f64()
            )
        }
        Some((a, e)) => format!("cannot connect to {addr} ({a}): {e}"),
        None => format!("{addr} resolves to no address"),
    }))
}

/// Drives a TLS handshake to completion within the connection's current deadlines.
fn handshake<C, S>(conn: &mut C, sock: &mut DeadlineStream) -> Result<(), NetError>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    while conn.is_handshaking() {
        conn.complete_io(sock)
            .map_err(|e| match NetError::from(e) {
                NetError::Closed => NetError::Tls(
                    "the peer closed the connection during the TLS handshake (a plaintext server, \
                 or one that refused this client)"
                        .into(),
                ),
                other => other,
            })?;
    }
    Ok(())
}

/// Connects to `addr` (host names allowed) and secures the connection as `opts` says.
pub fn connect(addr: &str, opts: &ConnectOptions) -> Result<NetChannel, NetError> {
    let started = Instant::now();
    let sock = tcp_connect(addr, opts.connect_timeout)?;
    let left = opts.connect_timeout.saturating_sub(started.elapsed());
    connect_socket(
        sock,
        addr,
        &ConnectOptions {
            connect_timeout: left.max(Duration::from_millis(1)),
            ..opts.clone()
        },
    )
}

/// Secures an already connected socket to `addr` as `opts` says (the TLS handshake must end
/// within `opts.connect_timeout`).
pub fn connect_socket(
    sock: TcpStream,
    addr: &str,
    opts: &ConnectOptions,
) -> Result<NetChannel, NetError> {
    let deadlines = Deadlines::new(opts.idle_timeout);
    let mut sock = DeadlineStream::new(sock, deadlines.clone())?;
    match &opts.security {
        ClientSecurity::Plaintext => Ok(channel(
            Inner::Plain(sock),
            Vec::new(),
            deadlines,
            true,
            false,
        )),
        ClientSecurity::Tls { tls, server_name } => {
            let name = server_name.as_deref().unwrap_or_else(|| host_of(addr));
            let name = ServerName::try_from(name.to_string()).map_err(|_| {
                NetError::Config(format!(
                    "'{name}' is not a valid TLS server name; pass --tls-server-name"
                ))
            })?;
            deadlines.set_phase("TLS handshake", Some(opts.connect_timeout));
            let mut conn = ClientConnection::new(tls.config(), name)
                .map_err(|e| NetError::Tls(crate::tls::explain(&e)))?;
            handshake(&mut conn, &mut sock)?;
            deadlines.set_phase("session", None);
            let stream = StreamOwned::new(conn, sock);
            Ok(channel(
                Inner::TlsClient(Box::new(stream)),
                Vec::new(),
                deadlines,
                false,
                false,
            ))
        }
    }
}

/// Accepts a connected socket on the server side: completes the TLS handshake (if any) within
/// `handshake_timeout` and returns the channel.
pub fn accept(
    sock: TcpStream,
    security: &ServerSecurity,
    deadlines: Deadlines,
    handshake_timeout: Duration,
) -> Result<NetChannel, NetError> {
    let mut sock = DeadlineStream::new(sock, deadlines.clone())?;
    match security {
        ServerSecurity::Plaintext => Ok(channel(
            Inner::Plain(sock),
            Vec::new(),
            deadlines,
            true,
            true,
        )),
        ServerSecurity::Tls(tls) => {
            deadlines.set_phase("TLS handshake", Some(handshake_timeout));
            let mut conn = ServerConnection::new(tls.config())
                .map_err(|e| NetError::Tls(crate::tls::explain(&e)))?;
            handshake(&mut conn, &mut sock)?;
            deadlines.set_phase("session", None);
            Ok(channel(
                Inner::TlsServer(Box::new(StreamOwned::new(conn, sock))),
                Vec::new(),
                deadlines,
                false,
                true,
            ))
        }
    }
}

/// Builds the server's channel from a connection an acceptor has already set up elsewhere
/// (e.g. an asynchronous TLS handshake): `tls` is its rustls state, `read_ahead` the bytes it
/// already read from the (decrypted) stream, which the channel returns first.
pub fn from_accepted(
    sock: TcpStream,
    tls: Option<ServerConnection>,
    read_ahead: Vec<u8>,
    deadlines: Deadlines,
) -> Result<NetChannel, NetError> {
    let sock = DeadlineStream::new(sock, deadlines.clone())?;
    Ok(match tls {
        Some(conn) => channel(
            Inner::TlsServer(Box::new(StreamOwned::new(conn, sock))),
            read_ahead,
            deadlines,
            false,
            true,
        ),
        None => channel(Inner::Plain(sock), read_ahead, deadlines, true, true),
    })
}

/// The first frame as an acceptor reads it before a session starts.
#[derive(Debug, PartialEq, Eq)]
pub enum FirstFrame {
    /// Read this many more bytes after the 4-byte header to have the whole frame.
    Body(usize),
    /// The header is the start of a TLS record: a TLS client on a plaintext server.
    Tls,
    /// The peer sent an abort frame of this many bytes (it gave up).
    Abort(usize),
}

/// Sizes the first frame from its header: a session's first frame (the client's hello) must
/// be at most `max` bytes.
pub fn first_frame(header: [u8; 4], plaintext: bool, max: usize) -> Result<FirstFrame, NetError> {
    if plaintext && header[0] == 0x16 && header[1] == 0x03 && header[2] <= 0x04 {
        return Ok(FirstFrame::Tls);
    }
    let word = u32::from_le_bytes(header);
    if word & (1 << 31) != 0 {
        return Ok(FirstFrame::Abort(
            ((word & !(1 << 31)) as usize).min(crate::MAX_ABORT_REASON),
        ));
    }
    let len = word as usize;
    if len > max {
        return Err(NetError::FrameTooLarge { len, max });
    }
    Ok(FirstFrame::Body(
        len + if plaintext { TAG_BYTES } else { 0 },
    ))
}

/// The bytes of an abort frame, for an acceptor that refuses a connection before any session
/// (sent in the clear, or inside TLS by the caller).
pub fn abort_frame(reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(crate::MAX_ABORT_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut v = ((1u32 << 31) | end as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&reason.as_bytes()[..end]);
    v
}

impl NetChannel {
    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        lock(&self.shared()).sock().peer_addr().ok()
    }

    fn shared(&self) -> Shared {
        self.reader_half().shared.clone()
    }

    /// Ends the connection politely: flushes, says goodbye (TLS close_notify), stops writing,
    /// then reads and discards what the peer still sends for at most `linger`, so that a
    /// final abort reason reaches a peer that was busy writing instead of being lost to a reset.
    pub fn close(mut self, linger: Duration) {
        let _ = self.flush();
        let shared = self.shared();
        let mut inner = lock(&shared);
        match &mut *inner {
            Inner::TlsClient(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Inner::TlsServer(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Inner::Plain(_) => {}
        }
        let sock = inner.sock();
        let _ = sock.shutdown(Shutdown::Write);
        let end = Instant::now() + linger;
        let mut scratch = [0u8; 1 << 14];
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if left.is_zero() || sock.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match (&*sock).read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_taken_from_addresses() {
        assert_eq!(host_of("localhost:4433"), "localhost");
        assert_eq!(host_of("127.0.0.1:4433"), "127.0.0.1");
        assert_eq!(host_of("[::1]:4433"), "::1");
        assert_eq!(host_of("example.org"), "example.org");
    }

    #[test]
    fn first_frames_are_sized_or_recognised() {
        assert_eq!(
            first_frame(8u32.to_le_bytes(), true, 100).unwrap(),
            FirstFrame::Body(8 + TAG_BYTES)
        );
        assert_eq!(
            first_frame(8u32.to_le_bytes(), false, 100).unwrap(),
            FirstFrame::Body(8)
        );
        assert_eq!(
            first_frame([0x16, 0x03, 0x01, 0x02], true, 100).unwrap(),
            FirstFrame::Tls
        );
        assert!(first_frame(1000u32.to_le_bytes(), false, 100).is_err());
        assert_eq!(
            first_frame(abort_frame("bye")[..4].try_into().unwrap(), true, 100).unwrap(),
            FirstFrame::Abort(3)
        );
    }
}
