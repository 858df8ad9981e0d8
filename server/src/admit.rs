//! Admission of a new connection, before it may hold a session slot: the TLS handshake and the
//! client's first frame (its hello), asynchronously and under one deadline. A silent, slow or
//! confused connection costs a small task and is dropped at the deadline; it never holds a slot.

use std::net::TcpStream as StdTcpStream;

use pi_net::stream::{abort_frame, first_frame, FirstFrame};
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// A connection ready for a session: the socket, its TLS state, and the hello frame read so far.
pub struct Admitted {
    pub sock: StdTcpStream,
    pub tls: Option<ServerConnection>,
    pub hello: Vec<u8>,
}

/// Why a connection was not admitted (for the log).
pub type Refusal = String;

const PLAINTEXT_TO_TLS: &str = "this server requires TLS: connect with --tls-ca CA.pem (and \
     --tls-server-name if needed) instead of --insecure-plaintext";
const TLS_TO_PLAINTEXT: &str = "this server runs without TLS (--insecure-plaintext): connect \
     with --insecure-plaintext, or ask the operator to enable TLS";

/// Completes the handshake and reads the hello frame (at most `max_hello` bytes).
pub async fn admit(
    stream: TcpStream,
    acceptor: Option<&TlsAcceptor>,
    max_hello: usize,
) -> Result<Admitted, Refusal> {
    stream.set_nodelay(true).ok();
    match acceptor {
        Some(acceptor) => {
            let mut first = [0u8; 1];
            let n = stream
                .peek(&mut first)
                .await
                .map_err(|e| format!("reading the first byte: {e}"))?;
            if n == 0 {
                return Err("closed before sending anything".into());
            }
            if first[0] != 0x16 {
                // Not a TLS ClientHello: most likely a plaintext pi-client. Say so in its framing.
                let mut stream = stream;
                let _ = stream.write_all(&abort_frame(PLAINTEXT_TO_TLS)).await;
                let _ = stream.shutdown().await;
                return Err("a plaintext client on a TLS server (told to use TLS)".into());
            }
            let mut tls = acceptor
                .accept(stream)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            let hello = read_hello(&mut tls, false, max_hello).await?;
            let (tcp, conn) = tls.into_inner();
            let sock = tcp
                .into_std()
                .map_err(|e| format!("taking over the socket: {e}"))?;
            Ok(Admitted {
                sock,
                tls: Some(conn),
                hello,
            })
        }
        None => {
            let mut stream = stream;
            let hello = read_hello(&mut stream, true, max_hello).await?;
            let sock = stream
                .into_std()
                .map_err(|e| format!("taking over the socket: {e}"))?;
            Ok(Admitted {
                sock,
                tls: None,
                hello,
            })
        }
    }
}

/// Reads the first frame whole (header, payload and, in plaintext, its check).
async fn read_hello<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    plaintext: bool,
    max: usize,
) -> Result<Vec<u8>, Refusal> {
    let mut header = [0u8; 4];
    s.read_exact(&mut header)
        .await
        .map_err(|e| format!("no hello: {e}"))?;
    match first_frame(header, plaintext, max).map_err(|e| format!("hello refused: {e}"))? {
        FirstFrame::Body(n) => {
            let mut v = Vec::with_capacity(4 + n);
            v.extend_from_slice(&header);
            v.resize(4 + n, 0);
            s.read_exact(&mut v[4..])
                .await
                .map_err(|e| format!("hello cut short: {e}"))?;
            Ok(v)
        }
        FirstFrame::Tls => {
            let _ = s.write_all(&abort_frame(TLS_TO_PLAINTEXT)).await;
            let _ = s.shutdown().await;
            Err("a TLS client on a plaintext server (told so)".into())
        }
        FirstFrame::Abort(_) => Err("the client gave up before its hello".into()),
    }
}
