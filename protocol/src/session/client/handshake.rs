//! Client side of the session's first exchange: hello → the server's public model (or its refusal).

use std::io::{Read, Write};

use pi_net::Channel;

use crate::messages::{ClientHello, ServerHello, PROTOCOL_VERSION};
use crate::public_model::PublicModel;
use crate::ProtocolError;

/// Sends the hello for `batch` inferences and returns the model the server accepted it for.
pub(crate) fn hello<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    batch: u32,
) -> Result<PublicModel, ProtocolError> {
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION,
        batch,
    })?;
    ch.flush()?;
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
