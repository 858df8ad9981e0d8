use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};

use serde::{de::DeserializeOwned, Serialize};

use crate::NetError;

/// Largest frame accepted unless the caller chooses otherwise (64 MiB).
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

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
pub struct Channel<R: Read, W: Write> {
    reader: BufReader<R>,
    writer: BufWriter<W>,
    counters: Counters,
    max_frame: usize,
}

/// The channel used between real processes.
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

    /// Sets (or clears) the socket read timeout; a timed-out read is an `Io` error.
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
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
        }
    }

    /// Sets the largest frame this side will accept.
    pub fn with_max_frame(mut self, max: usize) -> Self {
        self.max_frame = max;
        self
    }

    /// Largest frame this side accepts.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes moved so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Queues one frame (buffered; call `flush` before waiting on the peer).
    pub fn send_frame(&mut self, payload: &[u8]) -> Result<(), NetError> {
        if payload.len() > u32::MAX as usize {
            return Err(NetError::FrameTooLarge {
                len: payload.len(),
                max: u32::MAX as usize,
            });
        }
        self.writer
            .write_all(&(payload.len() as u32).to_le_bytes())?;
        self.writer.write_all(payload)?;
        self.counters.sent += 4 + payload.len() as u64;
        Ok(())
    }

    /// Reads one frame, refusing frames above the limit.
    pub fn recv_frame(&mut self) -> Result<Vec<u8>, NetError> {
        let mut len = [0u8; 4];
        match self.reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(NetError::Closed),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > self.max_frame {
            return Err(NetError::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let mut buf = vec![0u8; len];
        self.reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                NetError::Closed
            } else {
                e.into()
            }
        })?;
        self.counters.received += 4 + len as u64;
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
    fn garbage_is_a_decode_error() {
        let (mut a, mut b) = loopback_pair().unwrap();
        a.send_frame(&[0xff; 3]).unwrap();
        a.flush().unwrap();
        let r: Result<(u64, String), _> = b.recv();
        assert!(matches!(r, Err(NetError::Decode(_))));
    }
}
