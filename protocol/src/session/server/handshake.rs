//! Server side of the session's first exchange: the client's hello, then accept (public model) or reject.

use std::io::{Read, Write};

use pi_net::Channel;

use super::ServedModel;
use crate::budget::SessionLimits;
use crate::messages::{ClientHello, ServerHello, SessionMode, PROTOCOL_VERSION};
use crate::ProtocolError;

/// Reads the client's hello and answers it; a hello the server cannot serve is rejected with its reason.
pub(crate) fn accept<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: bool,
) -> Result<ClientHello, ProtocolError> {
    let hello: ClientHello = ch.recv()?;
    let refusal = if hello.version != PROTOCOL_VERSION {
        Some(format!(
            "protocol version {} not supported (server: {PROTOCOL_VERSION}); update pi-client",
            hello.version
        ))
    } else if hello.mode != SessionMode::Inline && !banking {
        Some("this server does not bank preprocessing; use the one-shot client".into())
    } else {
        match hello.mode {
            SessionMode::Inline if hello.batch == 0 || hello.batch > limits.max_batch => {
                Some(format!(
                    "batch {} outside 1..={} (the server's --max-batch)",
                    hello.batch, limits.max_batch
                ))
            }
            SessionMode::Preprocess if hello.batch == 0 || hello.batch > limits.max_bank => {
                Some(format!(
                    "count {} outside 1..={} (the server's --max-bank)",
                    hello.batch, limits.max_bank
                ))
            }
            SessionMode::Redeem if hello.batch != 1 => Some(format!(
                "a redeem session runs 1 inference, not {}",
                hello.batch
            )),
            SessionMode::Redeem if hello.bank_model != Some(served.bank_fingerprint) => {
                Some(format!(
                    "the banked set is for model {}, this server serves {} ({}): run `pi-client preprocess` against it",
                    hello
                        .bank_model
                        .map(|f| crate::bank::ticket::hex(&f[..8]))
                        .unwrap_or_default(),
                    served.name(),
                    crate::bank::ticket::hex(&served.bank_fingerprint[..8]),
                ))
            }
            _ => None,
        }
    };
    if let Some(reason) = refusal {
        ch.send(&ServerHello::Reject {
            reason: reason.clone(),
        })?;
        ch.flush()?;
        return Err(ProtocolError::Violation(reason));
    }
    ch.send(&ServerHello::Accept {
        version: PROTOCOL_VERSION,
        model: served.public_for(hello.mode).clone(),
    })?;
    ch.flush()?;
    Ok(hello)
}
