//! Frames of this crate on top of `pi-net` frames:
//! `[tag u8][index u64 LE][count u64 LE][payload][digest 32 B]`, the digest being BLAKE3 (derive-key
//! mode) of everything before it. Lengths are derived from public parameters and compared exactly.

use std::io::{Read, Write};

use pi_net::Channel;
use subtle::ConstantTimeEq;

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

/// Header bytes of a frame (tag, index, count).
pub(crate) const HEADER: usize = 17;
/// Digest bytes of a frame.
pub(crate) const DIGEST: usize = 32;
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

/// A frame being filled in place.
pub(crate) struct Out {
    buf: Vec<u8>,
}

impl Out {
    /// Starts a frame with a zeroed payload of `len` bytes.
    pub(crate) fn new(tag: u8, index: u64, count: u64, len: usize) -> Self {
        let mut buf = Vec::with_capacity(HEADER + len + DIGEST);
        buf.push(tag);
        buf.extend_from_slice(&index.to_le_bytes());
        buf.extend_from_slice(&count.to_le_bytes());
        buf.resize(HEADER + len, 0);
        Out { buf }
    }

    /// The payload to fill.
    pub(crate) fn payload(&mut self) -> &mut [u8] {
        &mut self.buf[HEADER..]
    }

    /// Appends the digest and queues the frame; returns the bytes on the wire.
    pub(crate) fn send<R: Read, W: Write>(
        mut self,
        ch: &mut Channel<R, W>,
    ) -> Result<u64, OtError> {
        let d = digest(&self.buf);
        self.buf.extend_from_slice(&d);
        ch.send_frame(&self.buf)?;
        Ok(self.buf.len() as u64 + 4)
    }
}

/// A received and verified frame.
pub(crate) struct In {
    frame: Vec<u8>,
}

impl In {
    /// Receives one frame and checks tag, index, count, payload length and digest, in that order.
    pub(crate) fn recv<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        tag: u8,
        index: u64,
        count: u64,
        len: usize,
    ) -> Result<Self, OtError> {
        let frame = ch.recv_frame()?;
        Self::check(frame, tag, index, count, len)
    }

    pub(crate) fn check(
        frame: Vec<u8>,
        tag: u8,
        index: u64,
        count: u64,
        len: usize,
    ) -> Result<Self, OtError> {
        let what = tag_name(tag);
        match frame.first() {
            Some(&t) if t == tag => {}
            Some(&t) => {
                return Err(OtError::UnexpectedMessage {
                    expected: what,
                    got: t,
                })
            }
            None => {
                return Err(OtError::Length {
                    what,
                    expected: HEADER + len + DIGEST,
                    got: 0,
                })
            }
        }
        if frame.len() != HEADER + len + DIGEST {
            return Err(OtError::Length {
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
        let (gi, gc) = (rd(1), rd(9));
        if gi != index || gc != count {
            return Err(OtError::Desync(format!(
                "{what}: expected index {index} with count {count}, got index {gi} with count {gc}"
            )));
        }
        let body = HEADER + len;
        let d = digest(&frame[..body]);
        if !bool::from(d.ct_eq(&frame[body..])) {
            return Err(OtError::Integrity { what, index });
        }
        Ok(In { frame })
    }

    /// The verified payload.
    pub(crate) fn payload(&self) -> &[u8] {
        &self.frame[HEADER..self.frame.len() - DIGEST]
    }
}

/// Writes blocks as little-endian bytes.
pub(crate) fn put_blocks(dst: &mut [u8], src: &[u128]) {
    for (d, s) in dst.chunks_exact_mut(16).zip(src) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

/// Reads little-endian blocks (the caller checked the length).
pub(crate) fn get_blocks(src: &[u8], dst: &mut Vec<u128>) {
    dst.extend(src.chunks_exact(16).map(|c| {
        let mut a = [0u8; 16];
        a.copy_from_slice(c);
        u128::from_le_bytes(a)
    }));
}

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
