//! Server offline phase of one inference: HE correlations for every linear layer, then garbled circuits.
//!
//! Every secret the online phase needs derives from one fresh 32-byte seed (the HE output masks
//! of each layer, the garbled circuits' decoding key and, in a banked set, the OT layers'
//! material) plus Δ and the label PRF key of the garbling, so the material of a banked set fits
//! in a [`SetSecrets`] and, sealed, in a ticket.

use std::io::{Read, Write};
use std::time::Instant;

use pi_he::ServerHe;
use pi_net::Channel;
use rand::RngCore;
use rand_chacha::ChaCha20Rng;
use zeroize::{Zeroize, Zeroizing};

use super::ServedModel;
use crate::bank::{decoding_key, he_mask_seed, ot_key, SetSecrets};
use crate::messages::OfflineDone;
use crate::nonlinear::{ReluProtocol, ServerRelus};
use crate::session::secs;
use crate::ProtocolError;

/// What the server keeps from one offline phase; consumed by exactly one online phase.
pub struct ServerMaterial {
    /// The server's HE share `s` for each linear node, in step order.
    pub(crate) linear_shares: Vec<Vec<u64>>,
    /// The ReLU material of every layer (garbled-circuit decoding bits, OT correlations).
    pub(crate) relus: ServerRelus,
    /// The seed the HE masks and the decoding key derive from.
    seed: Zeroizing<[u8; 32]>,
}

impl Drop for ServerMaterial {
    fn drop(&mut self) {
        self.linear_shares.iter_mut().for_each(|s| s.zeroize());
    }
}

impl ServerMaterial {
    /// Everything needed to rebuild this material later ([`ServerMaterial::restore`]) when it was
    /// made for a banked set (a plan without garbled layers has a placeholder Δ).
    pub(crate) fn secrets(&self) -> SetSecrets {
        let relus = self.relus.gc_secrets().unwrap_or(pi_gc::RelusSecrets {
            delta: 1,
            prf_key: [0; 16],
        });
        SetSecrets::new(self.seed.clone(), relus)
    }

    /// Rebuilds the material of a banked set made with ReLU plan `plan` from its secrets,
    /// without any HE, garbling or OT work.
    pub(crate) fn restore(
        served: &ServedModel,
        secrets: &SetSecrets,
        plan: &[ReluProtocol],
    ) -> Result<Self, ProtocolError> {
        let program = &served.program;
        let params = program.he_params()?;
        let linear_shares = served
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                pi_he::server_masks(params, &secrets.he_mask_seed(i), layer.shape().output_len())
            })
            .collect();
        let relus = ServerRelus::restore(
            program,
            plan,
            secrets.relus(),
            &secrets.decoding_key(),
            &secrets.ot_key(),
        )?;
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&secrets.to_bytes()[..32]);
        Ok(ServerMaterial {
            linear_shares,
            relus,
            seed,
        })
    }
}

/// Runs one offline phase with the client (after the HE setup), ending with `OfflineDone`. A
/// `banked` phase uses the banked plan and re-keys its OT layers to the seed.
pub(crate) fn offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    he: &ServerHe,
    rng: &mut ChaCha20Rng,
    banked: bool,
) -> Result<ServerMaterial, ProtocolError> {
    let program = &served.program;
    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(seed.as_mut());
    let t = Instant::now();
    let mut linear_shares = Vec::with_capacity(program.linear_count());
    for (i, layer) in served.layers.iter().enumerate() {
        linear_shares.push(pi_he::server_linear_seeded(
            ch,
            he,
            layer,
            &he_mask_seed(&seed, i),
            rng,
        )?);
    }
    let he_seconds = secs(t);
    let plan = if banked {
        served.bank_relu_protocols()
    } else {
        served.relu_protocols()
    };
    let mut relus = ServerRelus::offline(ch, program, plan, rng)?;
    relus.rekey_decoding(ch, &decoding_key(&seed))?;
    if banked {
        relus.rekey_ot(ch, &ot_key(&seed))?;
    }
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
        seed,
    })
}
