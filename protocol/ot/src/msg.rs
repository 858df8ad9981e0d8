//! Frames of this crate on top of `pi-net` frames:
//! `[tag u8][index u64 LE][count u64 LE][payload][digest 32 B]`, the digest being BLAKE3 (derive-key
//! mode) of everything before it. Lengths are derived from public parameters and compared exactly.

use pi_net::bulk::{BulkFault, BulkFormat};

use crate::OtError;

/// OT ReLU session opening (version, parameters, counts).
pub(crate) const HELLO: u8 = 0x41;
/// SoftSpoken bootstrap correction (random-choice COTs for Ferret's first round).
pub(crate) const BOOT: u8 = 0x42;
/// Ferret: cGGM level corrections for a batch of trees.
pub(crate) const TREES: u8 = 0x43;
/// Reverse-direction SoftSpoken correction.
pub(crate) const REVERSE: u8 = 0x44;
/// Offline corrections of the precomputed bit products (server → client).
pub(crate) const PRODUCTS: u8 = 0x45;
/// Banked sets: differences that re-key the server's material to its PRF (server → client).
pub(crate) const REKEY: u8 = 0x46;
/// Online ReLU round, server → client.
pub(crate) const ROUND_S: u8 = 0x50;
/// Online ReLU round, client → server.
pub(crate) const ROUND_C: u8 = 0x51;

pub(crate) use pi_net::bulk::{BULK_DIGEST as DIGEST, BULK_HEADER as HEADER};
const CONTEXT: &str = "pi-ot 2025 frame digest v1";

/// Human name of a tag for error messages.
pub(crate) fn tag_name(tag: u8) -> &'static str {
    match tag {
        HELLO => "OT ReLU hello",
        BOOT => "SoftSpoken bootstrap correction",
        TREES => "Ferret tree corrections",
        REVERSE => "reverse SoftSpoken correction",
        PRODUCTS => "bit-product corrections",
        REKEY => "banked material re-keying",
        ROUND_S => "server round message",
        ROUND_C => "client round message",
        _ => "unknown",
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT);
    h.update(bytes);
    *h.finalize().as_bytes()
}

/// This crate's bulk frames ([`pi_net::bulk`]): its digest key and errors.
pub(crate) struct OtFrames;

impl BulkFormat for OtFrames {
    type Error = OtError;

    fn digest(bytes: &[u8]) -> [u8; 32] {
        digest(bytes)
    }

    fn fault(tag: u8, index: u64, count: u64, fault: BulkFault) -> OtError {
        let what = tag_name(tag);
        match fault {
            BulkFault::Tag(got) => OtError::UnexpectedMessage {
                expected: what,
                got,
            },
            BulkFault::Length { expected, got } => OtError::Length {
                what,
                expected,
                got,
            },
            BulkFault::Position {
                index: gi,
                count: gc,
            } => OtError::Desync(format!(
                "{what}: expected index {index} with count {count}, got index {gi} with count {gc}"
            )),
            BulkFault::Digest => OtError::Integrity { what, index },
        }
    }
}

/// A frame being filled in place.
pub(crate) type Out = pi_net::bulk::BulkOut<OtFrames>;
/// A received and verified frame.
pub(crate) type In = pi_net::bulk::BulkIn<OtFrames>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_every_kind_of_damage() {
        let (mut a, mut b) = pi_net::loopback_pair().unwrap();
        let mut o = Out::new(TREES, 3, 7, 5);
        o.payload().copy_from_slice(&[1, 2, 3, 4, 5]);
        o.send(&mut a).unwrap();
        a.flush().unwrap();
        let f = b.recv_frame().unwrap();
        let ok = In::check(f.clone(), TREES, 3, 7, 5).unwrap();
        assert_eq!(ok.payload(), &[1, 2, 3, 4, 5]);
        assert!(matches!(
            In::check(f.clone(), BOOT, 3, 7, 5),
            Err(OtError::UnexpectedMessage { .. })
        ));
        assert!(matches!(
            In::check(f.clone(), TREES, 4, 7, 5),
            Err(OtError::Desync(_))
        ));
        assert!(matches!(
            In::check(f.clone(), TREES, 3, 7, 6),
            Err(OtError::Length { .. })
        ));
        let mut bad = f.clone();
        bad[HEADER + 2] ^= 1;
        assert!(matches!(
            In::check(bad, TREES, 3, 7, 5),
            Err(OtError::Integrity { .. })
        ));
        assert!(matches!(
            In::check(Vec::new(), TREES, 3, 7, 5),
            Err(OtError::Length { .. })
        ));
        assert!(matches!(
            In::check(f[..10].to_vec(), TREES, 3, 7, 5),
            Err(OtError::Length { .. })
        ));
    }
}
