//! Sealed tickets: everything the server must remember about one banked set, encrypted and
//! authenticated under the server's ticket key and held by the client.
//!
//! Wire form (all integers little-endian):
//! `"PITK" | version u8 | key id (8 B) | ticket id (16 B) | expires (u64, unix seconds) |
//!  nonce (24 B) | XChaCha20-Poly1305(model fingerprint 32 B | ReLU plan digest 32 B | issued u64 |
//!  set secrets 64 B) + tag 16 B` = 213 bytes.
//! The plan digest names the protocol of every ReLU layer the set was made with; the client
//! offers that plan with the ticket and the server runs it.
//! The clear header (everything before the ciphertext) is the AEAD's associated data, so the
//! client can read the id and the expiry but change neither; the key id says which key sealed it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

use super::SetSecrets;

const MAGIC: &[u8; 4] = b"PITK";
const VERSION: u8 = 2;
const HEADER: usize = 4 + 1 + 8 + 16 + 8 + 24;
const PLAIN: usize = 32 + 32 + 8 + SetSecrets::LEN;
const TAG: usize = 16;
/// Bytes of a sealed ticket.
pub const TICKET_LEN: usize = HEADER + PLAIN + TAG;

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a ticket of this format (wrong length, magic or version).
    #[error("not a ticket of this server's format ({0})")]
    Malformed(&'static str),
    /// Sealed under another key (another server, or a key rotated since).
    #[error("ticket sealed under another key (key id {ticket}, this server's is {server}): issued by another server or before a key rotation")]
    ForeignKey { ticket: String, server: String },
    /// The authentication tag does not verify: the ticket was altered.
    #[error("ticket fails authentication: it was altered or damaged")]
    Tampered,
    /// The ticket's lifetime is over.
    #[error("ticket expired at {expired} (unix seconds; now {now})")]
    Expired { expired: u64, now: u64 },
    /// Issued for another model (weights or architecture changed since).
    #[error("ticket issued for another model (fingerprint {ticket}, serving {served})")]
    WrongModel { ticket: String, served: String },
    /// The ReLU plan offered with the ticket is not the one its set was made with.
    #[error("ticket offered with another ReLU plan than its set was made with (the client's set is altered)")]
    WrongPlan,
}

/// The server's ticket key (32 bytes); its id is public and names it in tickets and errors.
pub struct TicketKey {
    key: Zeroizing<[u8; 32]>,
    id: [u8; 8],
}

impl TicketKey {
    /// Bytes of a key.
    pub const LEN: usize = 32;

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut id = [0u8; 8];
        id.copy_from_slice(&blake3::derive_key("pi-bank 2025 ticket key id v1", bytes)[..8]);
        TicketKey {
            key: Zeroizing::new(*bytes),
            id,
        }
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(b.as_mut());
        Self::from_bytes(&b)
    }

    /// The key's bytes (to save it).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.key.clone()
    }

    /// The public key id, as hex.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // A 32-byte slice is always a valid key.
        let key: &[u8; 32] = &self.key;
        XChaCha20Poly1305::new(key.into())
    }
}

/// The clear, authenticated part of a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketHeader {
    /// Random id: the replay store records it when the ticket is used.
    pub id: [u8; 16],
    /// Unix seconds after which the ticket is refused.
    pub expires: u64,
    /// Id of the key that sealed it.
    pub key_id: [u8; 8],
}

impl TicketHeader {
    /// Reads the clear header of a ticket (the client uses this to list expiry and id).
    pub fn parse(ticket: &[u8]) -> Result<Self, TicketError> {
        if ticket.len() != TICKET_LEN {
            return Err(TicketError::Malformed("wrong length"));
        }
        if &ticket[..4] != MAGIC {
            return Err(TicketError::Malformed("wrong magic"));
        }
        if ticket[4] != VERSION {
            return Err(TicketError::Malformed("unknown version"));
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&ticket[5..13]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&ticket[13..29]);
        let mut e = [0u8; 8];
        e.copy_from_slice(&ticket[29..37]);
        Ok(TicketHeader {
            id,
            expires: u64::from_le_bytes(e),
            key_id,
        })
    }

    /// The ticket id as hex.
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }
}

/// What an opened ticket says.
pub struct OpenedTicket {
    pub header: TicketHeader,
    /// Unix seconds when it was issued.
    pub issued: u64,
    /// The set's secrets.
    pub secrets: SetSecrets,
}

/// Seals `secrets` for the model with fingerprint `model` and the ReLU plan with digest `plan`
/// ([`crate::nonlinear::plan_digest`]), valid from `now` until `expires`.
pub fn seal(
    key: &TicketKey,
    model: &[u8; 32],
    plan: &[u8; 32],
    secrets: &SetSecrets,
    now: u64,
    expires: u64,
) -> Vec<u8> {
    let mut rng = rand::rngs::OsRng;
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(TICKET_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&key.id);
    out.extend_from_slice(&id);
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(&nonce);
    let mut plain = Zeroizing::new(Vec::with_capacity(PLAIN));
    plain.extend_from_slice(model);
    plain.extend_from_slice(plan);
    plain.extend_from_slice(&now.to_le_bytes());
    plain.extend_from_slice(secrets.to_bytes().as_ref());
    let sealed = key
        .cipher()
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &out,
            },
        )
        // Encryption of a 136-byte message cannot fail (the only error is a length overflow).
        .unwrap_or_default();
    out.extend_from_slice(&sealed);
    out
}

/// Opens a ticket offered with the ReLU plan of digest `plan`: format, key id, authentication,
/// expiry, model and plan, in that order.
pub fn open(
    key: &TicketKey,
    ticket: &[u8],
    model: &[u8; 32],
    plan: &[u8; 32],
    now: u64,
) -> Result<OpenedTicket, TicketError> {
    let header = TicketHeader::parse(ticket)?;
    if header.key_id != key.id {
        return Err(TicketError::ForeignKey {
            ticket: hex(&header.key_id),
            server: key.id_hex(),
        });
    }
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&ticket[37..HEADER]);
    let plain = Zeroizing::new(
        key.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ticket[HEADER..],
                    aad: &ticket[..HEADER],
                },
            )
            .map_err(|_| TicketError::Tampered)?,
    );
    if plain.len() != PLAIN {
        return Err(TicketError::Malformed("wrong sealed length"));
    }
    if now >= header.expires {
        return Err(TicketError::Expired {
            expired: header.expires,
            now,
        });
    }
    // The model fingerprint is public; an ordinary comparison is fine.
    if &plain[..32] != model {
        return Err(TicketError::WrongModel {
            ticket: hex(&plain[..8]),
            served: hex(&model[..8]),
        });
    }
    // So is the plan's digest.
    if &plain[32..64] != plan {
        return Err(TicketError::WrongPlan);
    }
    let mut issued = [0u8; 8];
    issued.copy_from_slice(&plain[64..72]);
    let mut s = Zeroizing::new([0u8; SetSecrets::LEN]);
    s.copy_from_slice(&plain[72..]);
    let secrets = SetSecrets::from_bytes(&s).map_err(|_| TicketError::Tampered)?;
    nonce.zeroize();
    Ok(OpenedTicket {
        header,
        issued: u64::from_le_bytes(issued),
        secrets,
    })
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SetSecrets {
        SetSecrets::from_bytes(&[5u8; SetSecrets::LEN]).unwrap()
    }

    #[test]
    fn a_sealed_ticket_opens_and_says_what_was_sealed() {
        let key = TicketKey::from_bytes(&[1u8; 32]);
        let t = seal(&key, &[2u8; 32], &[6u8; 32], &secrets(), 100, 200);
        assert_eq!(t.len(), TICKET_LEN);
        let o = open(&key, &t, &[2u8; 32], &[6u8; 32], 150).unwrap();
        assert_eq!(o.issued, 100);
        assert_eq!(o.header.expires, 200);
        assert_eq!(*o.secrets.to_bytes(), [5u8; SetSecrets::LEN]);
        // Two tickets for the same secrets differ (random id and nonce).
        let t2 = seal(&key, &[2u8; 32], &[6u8; 32], &secrets(), 100, 200);
        assert_ne!(t[..], t2[..]);
        assert_ne!(
            TicketHeader::parse(&t).unwrap().id,
            TicketHeader::parse(&t2).unwrap().id
        );
    }

    #[test]
    fn every_kind_of_bad_ticket_is_refused_with_its_reason() {
        let key = TicketKey::from_bytes(&[1u8; 32]);
        let model = [2u8; 32];
        let t = seal(&key, &model, &[6u8; 32], &secrets(), 100, 200);
        let other = TicketKey::from_bytes(&[9u8; 32]);
        assert!(matches!(
            open(&other, &t, &model, &[6u8; 32], 150),
            Err(TicketError::ForeignKey { .. })
        ));
        assert!(matches!(
            open(&key, &t, &model, &[6u8; 32], 200),
            Err(TicketError::Expired {
                expired: 200,
                now: 200
            })
        ));
        assert!(matches!(
            open(&key, &t, &[3u8; 32], &[6u8; 32], 150),
            Err(TicketError::WrongModel { .. })
        ));
        assert_eq!(
            open(&key, &t, &model, &[7u8; 32], 150).err(),
            Some(TicketError::WrongPlan)
        );
        // Any flipped bit, in the clear header or the sealed part, fails authentication (or, in
        // the key id, names another key).
        for at in [0, 4, 5, 13, 29, 40, HEADER, TICKET_LEN - 1] {
            let mut bad = t.clone();
            bad[at] ^= 1;
            let e = open(&key, &bad, &model, &[6u8; 32], 150).err();
            assert!(e.is_some(), "flip at {at} accepted");
        }
        let mut later = t.clone();
        later[29] ^= 0x80; // push the expiry out: authentication must catch it
        assert_eq!(
            open(&key, &later, &model, &[6u8; 32], 150).err(),
            Some(TicketError::Tampered)
        );
        assert!(matches!(
            open(&key, &t[..t.len() - 1], &model, &[6u8; 32], 150),
            Err(TicketError::Malformed(_))
        ));
    }
}
