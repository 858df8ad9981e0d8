//! Client side of the session's first exchange: hello → the server's public model (or its refusal).

use std::io::{Read, Write};

use pi_net::Channel;

use crate::messages::{ClientHello, ServerHello, SessionMode, PROTOCOL_VERSION};
use crate::public_model::PublicModel;
use crate::ProtocolError;

/// Sends the hello for `batch` inferences in `mode` and returns the model the server accepted it for.
pub(crate) fn hello<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    batch: u32,
    mode: SessionMode,
) -> Result<PublicModel, ProtocolError> {
    send_hello(ch, batch, mode, None)?;
    ch.flush()?;
    accepted(ch)
}

/// Queues the hello (the redeem session sends its ticket offer right behind it).
pub(crate) fn send_hello<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    batch: u32,
    mode: SessionMode,
    bank_model: Option<[u8; 32]>,
) -> Result<(), ProtocolError> {
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION,
        batch,
        mode,
        bank_model,
    })?;
    Ok(())
}

/// Reads the server's answer to the hello.
pub(crate) fn accepted<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
) -> Result<PublicModel, ProtocolError> {
    let public = match ch.recv::<ServerHello>()? {
        ServerHello::Accept { version, model } if version == PROTOCOL_VERSION => model,
        ServerHello::Accept { version, .. } => {
            return Err(ProtocolError::Violation(format!(
                "server speaks version {version}"
            )))
        }
        ServerHello::Reject { reason } => return Err(ProtocolError::PeerAborted(reason)),
    };
    Ok(public)
}
