//! Server offline phase of one inference: HE correlations for every linear layer, then garbled circuits.

use std::io::{Read, Write};
use std::time::Instant;

use pi_he::ServerHe;
use pi_net::Channel;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroize;

use super::ServedModel;
use crate::messages::OfflineDone;
use crate::nonlinear::ServerRelus;
use crate::session::secs;
use crate::ProtocolError;

/// What the server keeps from one offline phase; consumed by exactly one online phase.
pub struct ServerMaterial {
    /// The server's HE share `s` for each linear node, in step order.
    pub(crate) linear_shares: Vec<Vec<u64>>,
    /// The ReLU material of every layer (garbled-circuit decoding bits, OT correlations).
    pub(crate) relus: ServerRelus,
}

impl Drop for ServerMaterial {
    fn drop(&mut self) {
        self.linear_shares.iter_mut().for_each(|s| s.zeroize());
    }
}

/// Runs one offline phase with the client (after the HE setup), ending with `OfflineDone`.
pub(crate) fn offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    he: &ServerHe,
    rng: &mut ChaCha20Rng,
) -> Result<ServerMaterial, ProtocolError> {
    let program = &served.program;
    let t = Instant::now();
    let mut linear_shares = Vec::with_capacity(program.linear_count());
    for layer in served.layers.iter() {
        linear_shares.push(pi_he::server_linear(ch, he, layer, rng)?);
    }
    let he_seconds = secs(t);
    let relus = ServerRelus::offline(ch, program, served.relu_protocols(), rng)?;
    let times = relus.offline_times();
    ch.send(&OfflineDone {
        he_seconds,
        garble_seconds: times.garble_seconds,
        ot_seconds: times.ot_seconds,
    })?;
    ch.flush()?;
    Ok(ServerMaterial {
        linear_shares,
        relus,
    })
}
