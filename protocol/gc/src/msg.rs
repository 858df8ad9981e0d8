//! Frame layouts used by this crate on top of `pi-net` frames.
//!
//! Small messages: `[tag u8][payload]`. Bulk messages (OT corrections, garbled tables, online
//! labels and output bits): `[tag u8][index u64 LE][count u64 LE][payload][digest 32 B]` where
//! the digest is BLAKE3 (derive-key mode) of everything before it. Bulk payloads are written in
//! place into the frame buffer, so no copy is made between garbling and the socket.

use std::io::{Read, Write};

use pi_net::bulk::{BulkFault, BulkFormat};
use pi_net::Channel;

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

pub(crate) use pi_net::bulk::{BULK_DIGEST as DIGEST, BULK_HEADER as HEADER};
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

/// This crate's bulk frames ([`pi_net::bulk`]): its digest key and errors.
pub(crate) struct GcFrames;

impl BulkFormat for GcFrames {
    type Error = GcError;

    fn digest(bytes: &[u8]) -> [u8; 32] {
        digest(bytes)
    }

    fn fault(tag: u8, index: u64, count: u64, fault: BulkFault) -> GcError {
        let what = tag_name(tag);
        match fault {
            BulkFault::Tag(got) => GcError::UnexpectedMessage {
                expected: what,
                got,
            },
            BulkFault::Length { expected, got } => GcError::Length {
                what,
                expected,
                got,
            },
            BulkFault::Position {
                index: got_index,
                count: got_count,
            } => GcError::Desync(format!(
                "{what}: expected index {index} with {count} circuits, got index {got_index} with {got_count}"
            )),
            BulkFault::Digest => GcError::Integrity { what, index },
        }
    }
}

/// A bulk frame being filled in place.
pub(crate) type BulkOut = pi_net::bulk::BulkOut<GcFrames>;
/// A received and verified bulk frame.
pub(crate) type BulkIn = pi_net::bulk::BulkIn<GcFrames>;

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
        let frame = out.seal();
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
