//! Server side of the session's first exchange: the client's hello, then accept (public model) or reject.

use std::io::{Read, Write};

use pi_net::Channel;

use super::ServedModel;
use crate::budget::SessionLimits;
use crate::messages::{ClientHello, ServerHello, PROTOCOL_VERSION};
use crate::ProtocolError;

/// Reads the client's hello and answers it; a hello the server cannot serve is rejected with its reason.
pub(crate) fn accept<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<ClientHello, ProtocolError> {
    let hello: ClientHello = ch.recv()?;
    let refusal = if hello.version != PROTOCOL_VERSION {
        Some(format!(
            "protocol version {} not supported (server: {PROTOCOL_VERSION}); update pi-client",
            hello.version
        ))
    } else if hello.batch == 0 || hello.batch > limits.max_batch {
        Some(format!(
            "batch {} outside 1..={} (the server's --max-batch)",
            hello.batch, limits.max_batch
        ))
    } else {
        None
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
        model: served.public.clone(),
    })?;
    ch.flush()?;
    Ok(hello)
}
