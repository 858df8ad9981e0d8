//! Banked preprocessing: offline material made before the input exists, used once, later.
//!
//! * [`SetSecrets`]: everything the server must remember about one banked set — a 32-byte seed
//!   (from which the HE output masks of every linear layer, the garbled circuits' decoding key
//!   and the OT layers' material derive) and Δ with the label PRF key of its garbling (32 bytes).
//! * [`ticket`]: those secrets sealed (XChaCha20-Poly1305) under the server's ticket key with a
//!   random id, the model fingerprint and an expiry; the client holds the ticket with its material.
//! * [`replay`]: the server's record of used ticket ids, consulted before anything is sent online.
//! * [`store`]: what the client's bank (files on disk, in the `pi-bank` crate) must offer the
//!   sessions: sets written as a stream while they are preprocessed, claimed before use.
//!
//! The design and its security argument are in `docs/protocol.md`, "Banked preprocessing".

pub mod replay;
pub mod store;
pub mod ticket;

use pi_gc::RelusSecrets;
use zeroize::Zeroizing;

/// What the server must remember about one banked set (64 bytes).
pub struct SetSecrets {
    seed: Zeroizing<[u8; 32]>,
    relus: RelusSecrets,
}

impl SetSecrets {
    /// Serialised length.
    pub const LEN: usize = 32 + RelusSecrets::LEN;

    /// Secrets of a new set: `seed` fresh from a CSPRNG, `relus` from its garbling.
    pub(crate) fn new(seed: Zeroizing<[u8; 32]>, relus: RelusSecrets) -> Self {
        SetSecrets { seed, relus }
    }

    /// `seed | Δ | label PRF key`.
    pub fn to_bytes(&self) -> Zeroizing<[u8; Self::LEN]> {
        let mut out = Zeroizing::new([0u8; Self::LEN]);
        out[..32].copy_from_slice(self.seed.as_ref());
        out[32..].copy_from_slice(self.relus.to_bytes().as_ref());
        out
    }

    /// Parses [`SetSecrets::to_bytes`].
    pub fn from_bytes(b: &[u8; Self::LEN]) -> Result<Self, pi_gc::GcError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&b[..32]);
        let mut r = Zeroizing::new([0u8; RelusSecrets::LEN]);
        r.copy_from_slice(&b[32..]);
        Ok(SetSecrets {
            seed,
            relus: RelusSecrets::from_bytes(&r)?,
        })
    }

    /// The seed of linear layer `index`'s HE output masks.
    pub(crate) fn he_mask_seed(&self, index: usize) -> Zeroizing<[u8; 32]> {
        he_mask_seed(&self.seed, index)
    }

    /// The key of the garbled circuits' decoding masks.
    pub(crate) fn decoding_key(&self) -> Zeroizing<[u8; 32]> {
        decoding_key(&self.seed)
    }

    /// The key the OT layers' server material derives from.
    pub(crate) fn ot_key(&self) -> Zeroizing<[u8; 32]> {
        ot_key(&self.seed)
    }

    /// Δ and the label PRF key.
    pub(crate) fn relus(&self) -> &RelusSecrets {
        &self.relus
    }
}

/// Seed of linear layer `index`'s mask stream: BLAKE3 in key-derivation mode over seed ‖ index.
pub(crate) fn he_mask_seed(seed: &[u8; 32], index: usize) -> Zeroizing<[u8; 32]> {
    let mut h = blake3::Hasher::new_derive_key("pi-bank 2025 HE output masks v1");
    h.update(seed);
    h.update(&(index as u64).to_le_bytes());
    Zeroizing::new(*h.finalize().as_bytes())
}

/// Key of the OT layers' server material (`pi_ot::OtReluServer::rekey`).
pub(crate) fn ot_key(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key("pi-bank 2025 OT ReLU material v1", seed))
}

/// Key of the garbled circuits' decoding masks.
pub(crate) fn decoding_key(seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key("pi-bank 2025 decoding key v1", seed))
}
