//! Per-frame integrity check of plaintext connections.
//!
//! Each frame of a plaintext connection is followed by 16 bytes: BLAKE3 (derive-key mode) of its
//! sequence number in that direction, its length and its payload. A flipped, truncated,
//! duplicated, dropped or reordered frame is therefore refused instead of silently changing a
//! result. There is no key: this protects against a faulty network or a fuzzing proxy, not
//! against an attacker who recomputes the tags. That is TLS's job (the default); TLS
//! connections do not carry these tags.

use subtle::ConstantTimeEq;

use crate::NetError;

/// Bytes of the check that follows every frame.
pub const TAG_BYTES: usize = 16;

const CONTEXT: &str = "pi-net 2025 plaintext frame check v1";

/// The sequence numbers of both directions of one connection.
#[derive(Debug, Default)]
pub(crate) struct FrameCheck {
    sent: u64,
    received: u64,
}

fn tag(seq: u64, payload: &[u8]) -> [u8; TAG_BYTES] {
    let mut h = blake3::Hasher::new_derive_key(CONTEXT);
    h.update(&seq.to_le_bytes());
    h.update(&(payload.len() as u64).to_le_bytes());
    h.update(payload);
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&h.finalize().as_bytes()[..TAG_BYTES]);
    out
}

impl FrameCheck {
    /// The tag of the next outgoing frame.
    pub(crate) fn seal(&mut self, payload: &[u8]) -> [u8; TAG_BYTES] {
        let t = tag(self.sent, payload);
        self.sent += 1;
        t
    }

    /// Checks the tag of the next incoming frame.
    pub(crate) fn open(&mut self, payload: &[u8], got: &[u8; TAG_BYTES]) -> Result<(), NetError> {
        let want = tag(self.received, payload);
        if !bool::from(want.ct_eq(got)) {
            return Err(NetError::Corrupt(format!(
                "frame {} ({} bytes) fails its integrity check: corrupted, duplicated, dropped or \
                 reordered on the way",
                self.received,
                payload.len()
            )));
        }
        self.received += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_and_reordering_are_refused() {
        let (mut a, mut b) = (FrameCheck::default(), FrameCheck::default());
        let t0 = a.seal(b"first");
        let t1 = a.seal(b"second");
        // Reordered: the second frame arrives first.
        assert!(b.open(b"second", &t1).is_err());
        assert!(b.open(b"first", &t0).is_ok());
        let mut bad = t1;
        bad[3] ^= 1;
        assert!(b.open(b"second", &bad).is_err());
        assert!(b.open(b"secone", &t1).is_err());
        assert!(b.open(b"second", &t1).is_ok());
        // Duplicated: the same frame again.
        assert!(b.open(b"second", &t1).is_err());
    }
}
