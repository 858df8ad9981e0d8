//! Bulk frames, the layout `pi-gc` and `pi-ot` share for their large messages (OT corrections,
//! garbled tables, online rounds): `[tag u8][index u64 LE][count u64 LE][payload][digest 32 B]`,
//! the digest being a keyed hash of everything before it (each crate its own key, see
//! [`BulkFormat`]). Payloads are written in place into the frame buffer, so nothing is copied
//! between the producer and the socket; a received frame is checked for tag, position, exact
//! length and digest before its payload is handed out.

use std::io::{Read, Write};
use std::marker::PhantomData;

use subtle::ConstantTimeEq;

use crate::{Channel, NetError};

/// Header bytes of a bulk frame (tag, index, count).
pub const BULK_HEADER: usize = 17;
/// Digest bytes of a bulk frame.
pub const BULK_DIGEST: usize = 32;

/// What is wrong with a received bulk frame (the crate turns it into its own error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkFault {
    /// The frame carries another message kind (tag).
    Tag(u8),
    /// The frame is `got` bytes long instead of `expected` (header, payload and digest).
    Length {
        /// The frame length this side derived from its parameters.
        expected: usize,
        /// The frame length that arrived.
        got: usize,
    },
    /// The frame carries another position than this side expects.
    Position {
        /// The index that arrived.
        index: u64,
        /// The count that arrived.
        count: u64,
    },
    /// The digest does not match the contents.
    Digest,
}

/// A crate's bulk frames: its digest key and how a fault reads as its error.
pub trait BulkFormat {
    /// The crate's error.
    type Error: From<NetError>;
    /// The keyed hash of a frame's header and payload.
    fn digest(bytes: &[u8]) -> [u8; 32];
    /// The error for `fault` in a frame expected as (`tag`, `index`, `count`).
    fn fault(tag: u8, index: u64, count: u64, fault: BulkFault) -> Self::Error;
}

/// A bulk frame being filled in place.
pub struct BulkOut<F> {
    buf: Vec<u8>,
    format: PhantomData<F>,
}

impl<F: BulkFormat> BulkOut<F> {
    /// Starts a frame with a zeroed payload of `len` bytes.
    pub fn new(tag: u8, index: u64, count: u64, len: usize) -> Self {
        Self::reuse(
            Vec::with_capacity(BULK_HEADER + len + BULK_DIGEST),
            tag,
            index,
            count,
            len,
        )
    }

    /// Starts a frame in a buffer returned by [`BulkOut::send_keep`]: only bytes beyond the old
    /// length are zeroed, so the payload holds stale bytes that the caller must overwrite in full.
    /// Saves a memset and page faults per frame.
    pub fn reuse(mut buf: Vec<u8>, tag: u8, index: u64, count: u64, len: usize) -> Self {
        buf.reserve_exact((BULK_HEADER + len + BULK_DIGEST).saturating_sub(buf.len()));
        buf.resize(BULK_HEADER + len, 0);
        buf[0] = tag;
        buf[1..9].copy_from_slice(&index.to_le_bytes());
        buf[9..17].copy_from_slice(&count.to_le_bytes());
        BulkOut {
            buf,
            format: PhantomData,
        }
    }

    /// The payload to fill.
    pub fn payload(&mut self) -> &mut [u8] {
        &mut self.buf[BULK_HEADER..]
    }

    /// The finished frame: header, payload and digest.
    pub fn seal(mut self) -> Vec<u8> {
        let d = F::digest(&self.buf);
        self.buf.extend_from_slice(&d);
        self.buf
    }

    /// Appends the digest and queues the frame; returns the bytes on the wire.
    pub fn send<R: Read, W: Write>(self, ch: &mut Channel<R, W>) -> Result<usize, F::Error> {
        Ok(self.send_keep(ch)?.0)
    }

    /// Like [`BulkOut::send`], and hands the buffer back for [`BulkOut::reuse`].
    pub fn send_keep<R: Read, W: Write>(
        self,
        ch: &mut Channel<R, W>,
    ) -> Result<(usize, Vec<u8>), F::Error> {
        let frame = self.seal();
        ch.send_frame(&frame)?;
        Ok((frame.len() + 4, frame))
    }
}

/// A received and verified bulk frame.
pub struct BulkIn<F> {
    frame: Vec<u8>,
    format: PhantomData<F>,
}

impl<F: BulkFormat> BulkIn<F> {
    /// Verifies tag, index and count, exact length (a `len`-byte payload) and digest, in that
    /// order.
    pub fn check(
        frame: Vec<u8>,
        tag: u8,
        index: u64,
        count: u64,
        len: usize,
    ) -> Result<Self, F::Error> {
        let fault = |f| F::fault(tag, index, count, f);
        let expected = BULK_HEADER + len + BULK_DIGEST;
        let short = BulkFault::Length {
            expected,
            got: frame.len(),
        };
        if let Some(&t) = frame.first().filter(|&&t| t != tag) {
            return Err(fault(BulkFault::Tag(t)));
        }
        if frame.len() < BULK_HEADER + BULK_DIGEST {
            return Err(fault(short));
        }
        let frame = Self::check_header(frame, tag, index, count)?.frame;
        if frame.len() != expected {
            return Err(fault(BulkFault::Length {
                expected,
                got: frame.len(),
            }));
        }
        let body = frame.len() - BULK_DIGEST;
        let d = F::digest(&frame[..body]);
        if !bool::from(d.ct_eq(&frame[body..])) {
            return Err(fault(BulkFault::Digest));
        }
        Ok(BulkIn {
            frame,
            format: PhantomData,
        })
    }

    /// Receives one frame and checks it ([`BulkIn::check`]); also returns the bytes on the wire.
    pub fn recv<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        tag: u8,
        index: u64,
        count: u64,
        len: usize,
    ) -> Result<(Self, usize), F::Error> {
        let frame = ch.recv_frame()?;
        let n = frame.len() + 4;
        Ok((Self::check(frame, tag, index, count, len)?, n))
    }

    /// Verifies tag, index and count of a frame whose digest was verified when it arrived and
    /// that was kept under a checksum since (a stored frame); the caller checks the payload length
    /// against its parameters.
    pub fn check_header(frame: Vec<u8>, tag: u8, index: u64, count: u64) -> Result<Self, F::Error> {
        let fault = |f| F::fault(tag, index, count, f);
        check_tag(&frame, tag).map_err(fault)?;
        if frame.len() < BULK_HEADER + BULK_DIGEST {
            return Err(fault(BulkFault::Length {
                expected: BULK_HEADER + BULK_DIGEST,
                got: frame.len(),
            }));
        }
        check_position(&frame, index, count).map_err(fault)?;
        Ok(BulkIn {
            frame,
            format: PhantomData,
        })
    }

    /// The whole frame (header, payload, digest), as received.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The verified payload.
    pub fn payload(&self) -> &[u8] {
        &self.frame[BULK_HEADER..self.frame.len() - BULK_DIGEST]
    }
}

fn check_tag(frame: &[u8], tag: u8) -> Result<(), BulkFault> {
    match frame.first() {
        Some(&t) if t == tag => Ok(()),
        Some(&t) => Err(BulkFault::Tag(t)),
        None => Err(BulkFault::Length {
            expected: BULK_HEADER + BULK_DIGEST,
            got: 0,
        }),
    }
}

/// The caller checked that the frame holds a whole header.
fn check_position(frame: &[u8], index: u64, count: u64) -> Result<(), BulkFault> {
    let rd = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&frame[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let (got_index, got_count) = (rd(1), rd(9));
    if got_index != index || got_count != count {
        return Err(BulkFault::Position {
            index: got_index,
            count: got_count,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Test;

    impl BulkFormat for Test {
        type Error = BulkFault;
        fn digest(bytes: &[u8]) -> [u8; 32] {
            *blake3::Hasher::new_derive_key("pi-net bulk test")
                .update(bytes)
                .finalize()
                .as_bytes()
        }
        fn fault(_: u8, _: u64, _: u64, fault: BulkFault) -> BulkFault {
            fault
        }
    }

    impl From<NetError> for BulkFault {
        fn from(_: NetError) -> Self {
            BulkFault::Digest
        }
    }

    #[test]
    fn frames_round_trip_and_reject_every_kind_of_damage() {
        let mut out = BulkOut::<Test>::new(7, 3, 10, 64);
        out.payload()
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        let frame = out.seal();
        let check = |f: &[u8], tag, index, count, len| {
            BulkIn::<Test>::check(f.to_vec(), tag, index, count, len).map(|b| b.payload().to_vec())
        };
        assert_eq!(check(&frame, 7, 3, 10, 64).unwrap()[5], 5);
        assert_eq!(check(&frame, 8, 3, 10, 64), Err(BulkFault::Tag(7)));
        let at = BulkFault::Position {
            index: 3,
            count: 10,
        };
        assert_eq!(check(&frame, 7, 4, 10, 64), Err(at));
        assert_eq!(check(&frame, 7, 3, 11, 64), Err(at));
        let long = BulkFault::Length {
            expected: 114,
            got: 113,
        };
        assert_eq!(check(&frame, 7, 3, 10, 65), Err(long));
        let mut tampered = frame.clone();
        tampered[BULK_HEADER + 17] ^= 0x40;
        assert_eq!(check(&tampered, 7, 3, 10, 64), Err(BulkFault::Digest));
        assert!(check(&frame[..frame.len() - 1], 7, 3, 10, 64).is_err());
        assert!(check(&frame[..5], 7, 3, 10, 64).is_err());
        assert!(check(&[], 7, 3, 10, 64).is_err());
        let stored = BulkIn::<Test>::check_header(frame.clone(), 7, 3, 10).unwrap();
        assert_eq!(stored.frame(), &frame[..]);
        assert!(BulkIn::<Test>::check_header(frame[..20].to_vec(), 7, 3, 10).is_err());
    }

    #[test]
    fn a_reused_buffer_gets_a_fresh_header_and_length() {
        let (mut a, mut b) = crate::loopback_pair().unwrap();
        let (n, buf) = BulkOut::<Test>::new(1, 0, 1, 100)
            .send_keep(&mut a)
            .unwrap();
        assert_eq!(n, 4 + BULK_HEADER + 100 + BULK_DIGEST);
        let mut out = BulkOut::<Test>::reuse(buf, 2, 1, 1, 10);
        out.payload().fill(9);
        out.send(&mut a).unwrap();
        a.flush().unwrap();
        assert!(BulkIn::<Test>::recv(&mut b, 1, 0, 1, 100).is_ok());
        let (got, n) = BulkIn::<Test>::recv(&mut b, 2, 1, 1, 10).unwrap();
        assert_eq!((got.payload(), n), (&[9u8; 10][..], 4 + 59));
    }
}
