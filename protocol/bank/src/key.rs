//! The server's ticket key file: 64 hex digits (32 bytes), readable by its owner only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use protocol::bank::ticket::TicketKey;
use zeroize::Zeroizing;

use crate::BankError;

/// Reads the key at `path`, or creates it (mode 0600) with a fresh random key when absent.
/// Returns the key and whether it was generated.
pub fn load_or_generate(path: &Path) -> Result<(TicketKey, bool), BankError> {
    let p = path.display().to_string();
    match fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes).map_err(|_| BankError::Invalid {
                path: p.clone(),
                reason: "not a ticket key (expected 64 hex digits)".into(),
            })?;
            let key = parse_hex(text.trim()).ok_or_else(|| BankError::Invalid {
                path: p.clone(),
                reason: "not a ticket key (expected 64 hex digits); delete it to generate a new key, which invalidates every ticket issued under the old one".into(),
            })?;
            if let Ok(meta) = fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(BankError::Invalid {
                        path: p,
                        reason: "ticket key is readable by group or others; chmod 600 it".into(),
                    });
                }
            }
            Ok((TicketKey::from_bytes(&key), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = TicketKey::generate();
            let hex = Zeroizing::new(protocol::bank::ticket::hex(key.to_bytes().as_ref()));
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| BankError::Io {
                    what: "creating ticket key",
                    path: p.clone(),
                    source,
                })?;
            f.write_all(hex.as_bytes())
                .and_then(|_| f.write_all(b"\n"))
                .and_then(|_| f.sync_all())
                .map_err(|source| BankError::Io {
                    what: "writing ticket key",
                    path: p,
                    source,
                })?;
            Ok((key, true))
        }
        Err(source) => Err(BankError::Io {
            what: "reading ticket key",
            path: p,
            source,
        }),
    }
}

fn parse_hex(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_private_and_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticket.key");
        let (k1, generated) = load_or_generate(&path).unwrap();
        assert!(generated);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (k2, generated) = load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(k1.id_hex(), k2.id_hex());
        fs::write(&path, "not a key").unwrap();
        assert!(load_or_generate(&path).is_err());
        let open = dir.path().join("open.key");
        fs::write(&open, "ab".repeat(32)).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_generate(&open).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
