//! Frame layouts used by this crate on top of `pi-net` frames.
//!
//! Small messages: `[tag u8][payload]`. Bulk messages (OT corrections, garbled tables, online
//! labels and output bits): `[tag u8][index u64 LE][count u64 LE][payload][digest 32 B]` where
//! the digest is BLAKE3 (derive-key mode) of everything before it. Bulk payloads are written in
//! place into the frame buffer, so no copy is made between garbling and the socket.

use std::io::{Read, Write};

use pi_net::Channel;
use subtle::ConstantTimeEq;

use crate::GcError;

/// Session opening: version, OT parameter, chunk size, circuit count, parameter digest.
pub(crate) const HELLO: u8 = 0x01;
/// Base OT: the sender's point A.
pub(crate) const BASE_A: u8 = 0x02;
/// Base OT: the receiver's points B_i.
pub(crate) const BASE_B: u8 = 0x03;
/// Punctured-PRF level sums, masked by base-OT keys.
pub(crate) const GGM: u8 = 0x04;
/// OT-extension corrections for one chunk.
pub(crate) const OT_CORR: u8 = 0x10;
/// Garbled tables for one chunk.
pub(crate) const TABLES: u8 = 0x11;
/// Decoding offsets of a banked garbling (`bank` module).
pub(crate) const OFFSETS: u8 = 0x12;
/// Online: garbler input labels.
pub(crate) const LABELS: u8 = 0x20;
/// Online: evaluator output colour bits.
pub(crate) const BITS: u8 = 0x21;

pub(crate) const HEADER: usize = 17;
pub(crate) const DIGEST: usize = 32;
const DIGEST_CONTEXT: &str = "pi-gc 2025 bulk frame digest v1";

fn tag_name(tag: u8) -> &'static str {
    match tag {
        HELLO => "hello",
        BASE_A => "base OT sender point",
        BASE_B => "base OT receiver points",
        GGM => "punctured PRF sums",
        OT_CORR => "OT correction chunk",
        TABLES => "garbled table chunk",
        LABELS => "garbler input labels",
        BITS => "output colour bits",
        OFFSETS => "decoding offsets",
        _ => "unknown",
    }
}

/// Sends a small tagged message.
pub(crate) fn send_small<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    tag: u8,
    payload: &[u8],
) -> Result<(), GcError> {
    let mut v = Vec::with_capacity(payload.len() + 1);
    v.push(tag);
    v.extend_from_slice(payload);
    ch.send_frame(&v)?;
    Ok(())
}

/// Receives a small tagged message of exactly `len` payload bytes.
pub(crate) fn recv_small<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    tag: u8,
    len: usize,
) -> Result<Vec<u8>, GcError> {
    let mut v = ch.recv_frame()?;
    check_tag(&v, tag)?;
    if v.len() != len + 1 {
        return Err(GcError::Length {
            what: tag_name(tag),
            expected: len,
            got: v.len().saturating_sub(1),
        });
    }
    v.remove(0);
    Ok(v)
}

fn check_tag(frame: &[u8], tag: u8) -> Result<(), GcError> {
    match frame.first() {
        Some(&t) if t == tag => Ok(()),
        Some(&t) => Err(GcError::UnexpectedMessage {
            expected: tag_name(tag),
            got: t,
        }),
        None => Err(GcError::Length {
            what: tag_name(tag),
            expected: 1,
            got: 0,
        }),
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
    if bytes.len() >= 1 << 20 && !crate::run_inline() {
        h.update_rayon(bytes);
    } else {
        h.update(bytes);
    }
    *h.finalize().as_bytes()
}

/// A bulk frame being filled in place.
pub(crate) struct BulkOut {
    buf: Vec<u8>,
}

impl BulkOut {
    /// Starts a frame with a zeroed payload of `len` bytes.
    pub(crate) fn new(tag: u8, index: u64, count: u64, len: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER + len + DIGEST);
        buf.push(tag);
        buf.extend_from_slice(&index.to_le_bytes());
        buf.extend_from_slice(&count.to_le_bytes());
        buf.resize(HEADER + len, 0);
        BulkOut { buf }
    }

    /// Starts a frame in a buffer returned by [`BulkOut::send_keep`]: only bytes beyond the old
    /// length are zeroed, so the payload holds stale bytes that the caller must overwrite in full
    /// (the garbler writes every table byte). Saves a memset and page faults per chunk.
    pub(crate) fn reuse(mut buf: Vec<u8>, tag: u8, index: u64, count: u64, len: usize) -> Self {
        buf.reserve_exact((HEADER + len + DIGEST).saturating_sub(buf.len()));
        buf.resize(HEADER + len, 0);
        buf[0] = tag;
        buf[1..9].copy_from_slice(&index.to_le_bytes());
        buf[9..17].copy_from_slice(&count.to_le_bytes());
        BulkOut { buf }
    }

    /// The payload to fill.
    pub(crate) fn payload(&mut self) -> &mut [u8] {
        &mut self.buf[HEADER..]
    }

    /// Appends the digest and queues the frame.
    pub(crate) fn send<R: Read, W: Write>(
        mut self,
        ch: &mut Channel<R, W>,
    ) -> Result<usize, GcError> {
        let d = digest(&self.buf);
        self.buf.extend_from_slice(&d);
        ch.send_frame(&self.buf)?;
        Ok(self.buf.len() + 4)
    }

    /// Like [`BulkOut::send`], and hands the buffer back for [`BulkOut::reuse`].
    pub(crate) fn send_keep<R: Read, W: Write>(
        mut self,
        ch: &mut Channel<R, W>,
    ) -> Result<(usize, Vec<u8>), GcError> {
        let d = digest(&self.buf);
        self.buf.extend_from_slice(&d);
        ch.send_frame(&self.buf)?;
        Ok((self.buf.len() + 4, self.buf))
    }
}

/// A received and verified bulk frame.
pub(crate) struct BulkIn {
    frame: Vec<u8>,
}

impl BulkIn {
    /// Verifies tag, index, count, payload length and digest, in that order.
    pub(crate) fn check(
        frame: Vec<u8>,
        tag: u8,
        index: u64,
        count: u64,
        len: usize,
    ) -> Result<Self, GcError> {
        check_tag(&frame, tag)?;
        let what = tag_name(tag);
        if frame.len() < HEADER + DIGEST {
            return Err(GcError::Length {
                what,
                expected: HEADER + len + DIGEST,
                got: frame.len(),
            });
        }
        let rd = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&frame[at..at + 8]);
            u64::from_le_bytes(a)
        };
        let (got_index, got_count) = (rd(1), rd(9));
        if got_index != index || got_count != count {
            return Err(GcError::Desync(format!(
                "{what}: expected index {index} with {count} circuits, got index {got_index} with {got_count}"
            )));
        }
        let body = frame.len() - DIGEST;
        if body - HEADER != len {
            return Err(GcError::Length {
                what,
                expected: len,
                got: body - HEADER,
            });
        }
        let d = digest(&frame[..body]);
        if !bool::from(d.ct_eq(&frame[body..])) {
            return Err(GcError::Integrity { what, index });
        }
        Ok(BulkIn { frame })
    }

    /// Receives and checks one bulk frame.
    pub(crate) fn recv<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        tag: u8,
        index: u64,
        count: u64,
        len: usize,
    ) -> Result<(Self, usize), GcError> {
        let frame = ch.recv_frame()?;
        let n = frame.len() + 4;
        Ok((Self::check(frame, tag, index, count, len)?, n))
    }

    /// Verifies tag, index and count of a frame whose digest was verified when it arrived and
    /// that was kept under a checksum since (a stored frame); the caller checks the payload length
    /// against its parameters.
    pub(crate) fn check_header(
        frame: Vec<u8>,
        tag: u8,
        index: u64,
        count: u64,
    ) -> Result<Self, GcError> {
        check_tag(&frame, tag)?;
        if frame.len() < HEADER + DIGEST {
            return Err(GcError::Length {
                what: tag_name(tag),
                expected: HEADER + DIGEST,
                got: frame.len(),
            });
        }
        let rd = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&frame[at..at + 8]);
            u64::from_le_bytes(a)
        };
        if rd(1) != index || rd(9) != count {
            return Err(GcError::Desync(format!(
                "{}: expected index {index} with {count} circuits, got index {} with {}",
                tag_name(tag),
                rd(1),
                rd(9)
            )));
        }
        Ok(BulkIn { frame })
    }

    /// The whole frame (header, payload, digest), as received.
    pub(crate) fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The verified payload.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.frame[HEADER..self.frame.len() - DIGEST]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_frames_reject_every_kind_of_damage() {
        let mut out = BulkOut::new(TABLES, 3, 10, 64);
        out.payload()
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        let mut frame = out.buf.clone();
        frame.extend_from_slice(&digest(&out.buf));
        assert!(BulkIn::check(frame.clone(), TABLES, 3, 10, 64).is_ok());
        assert_eq!(
            BulkIn::check(frame.clone(), TABLES, 3, 10, 64)
                .unwrap()
                .payload()[5],
            5
        );
        assert!(matches!(
            BulkIn::check(frame.clone(), LABELS, 3, 10, 64),
            Err(GcError::UnexpectedMessage { .. })
        ));
        assert!(matches!(
            BulkIn::check(frame.clone(), TABLES, 4, 10, 64),
            Err(GcError::Desync(_))
        ));
        assert!(matches!(
            BulkIn::check(frame.clone(), TABLES, 3, 11, 64),
            Err(GcError::Desync(_))
        ));
        assert!(matches!(
            BulkIn::check(frame.clone(), TABLES, 3, 10, 65),
            Err(GcError::Length { .. })
        ));
        let mut tampered = frame.clone();
        tampered[HEADER + 17] ^= 0x40;
        assert!(matches!(
            BulkIn::check(tampered, TABLES, 3, 10, 64),
            Err(GcError::Integrity { index: 3, .. })
        ));
        let truncated = frame[..frame.len() - 1].to_vec();
        assert!(BulkIn::check(truncated, TABLES, 3, 10, 64).is_err());
        assert!(BulkIn::check(frame[..5].to_vec(), TABLES, 3, 10, 64).is_err());
        assert!(BulkIn::check(Vec::new(), TABLES, 3, 10, 64).is_err());
    }
}
