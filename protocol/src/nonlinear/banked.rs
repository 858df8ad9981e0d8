//! Banking the ReLU material (docs/protocol.md, "Banked preprocessing"), whichever protocol each
//! layer runs:
//! * garbled layers (ReLUs, ReLU6, max pooling): the server's garbling reduces to Δ, its label
//!   PRF key and a decoding key; the client's tables and labels go to a [`ChunkSink`] and come
//!   back from a [`ChunkSource`];
//! * OT layers: the server re-keys its correlations to a PRF of the set's seed (`pi-ot`'s
//!   `REKEY` frames) and rebuilds them from it; the client's correlations are stored as bytes.

use std::io::{Read, Write};

use pi_gc::{ChunkSink, ChunkSource, ClientOffline, RelusSecrets};
use pi_net::Channel;
use rand_chacha::ChaCha20Rng;
use zeroize::{Zeroize, Zeroizing};

use super::relus::{ot_params, split, ClientRelus, ServerRelus};
use super::ReluProtocol;
use crate::program::Program;
use crate::ProtocolError;

/// The digest a ticket seals of the ReLU plan its set was made for.
pub fn plan_digest(plan: &[ReluProtocol]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("pi-bank 2025 ReLU plan v1");
    h.update(&(plan.len() as u64).to_le_bytes());
    for p in plan {
        h.update(&[match p {
            ReluProtocol::Gc => 0,
            ReluProtocol::Ot => 1,
        }]);
    }
    *h.finalize().as_bytes()
}

/// The circuits per layer and the garbled layers' circuit specs.
fn gc_specs(
    program: &Program,
    plan: &[ReluProtocol],
) -> Result<Vec<pi_gc::CircuitSpec>, ProtocolError> {
    let circuits: Vec<usize> = program
        .layer_spans()
        .iter()
        .map(|l| l.circuits.len())
        .collect();
    Ok(split(&circuits, plan, program.circuit_specs())?.0)
}

/// Circuits of the garbled layers and ReLUs of the OT layers of `plan`; an error when the plan
/// does not fit the program (wrong length, OT on a layer that is not a plain ReLU).
pub(crate) fn plan_counts(
    program: &Program,
    plan: &[ReluProtocol],
) -> Result<(usize, usize), ProtocolError> {
    let spans = program.layer_spans();
    if plan.len() != spans.len() || program.restrict_plan(plan) != plan {
        return Err(ProtocolError::Violation(format!(
            "a ReLU plan of {} layers for a model of {} ReLU layers (OT only on plain ReLUs)",
            plan.len(),
            spans.len()
        )));
    }
    let (mut gc, mut ot) = (0, 0);
    for (l, p) in spans.iter().zip(plan) {
        match p {
            ReluProtocol::Gc => gc += l.circuits.len(),
            ReluProtocol::Ot => ot += l.circuits.len(),
        }
    }
    Ok((gc, ot))
}

/// Whether a set's stored OT material fits `plan` (length and header; before its ticket leaves).
pub(crate) fn check_stored_ot(
    program: &Program,
    plan: &[ReluProtocol],
    bytes: &[u8],
) -> Result<(), ProtocolError> {
    let ot = ot_params(program, plan)?;
    if ot.is_empty() {
        if bytes.is_empty() {
            return Ok(());
        }
        return Err(ProtocolError::Bank(
            "OT material stored for a plan without OT layers".into(),
        ));
    }
    Ok(pi_ot::OtReluClient::check_stored(&ot, bytes)?)
}

/// Output of the client's banked offline phase besides the garbled chunks (already in the sink).
pub(crate) struct BankedClientRelus {
    /// Hash nonce and statistics of the garbled layers' evaluation.
    pub gc: ClientOffline,
    /// Decoding offsets of the garbled circuits.
    pub offsets: Vec<u64>,
    /// The OT layers' material, re-keyed and serialised (empty without OT layers).
    pub ot: Zeroizing<Vec<u8>>,
    /// Statistics of the OT layers' offline phase.
    pub ot_stats: pi_ot::OtReluStats,
}

impl ServerRelus {
    /// Re-keys the garbled layers' decoding bits and sends the client its offsets (`pi-gc`'s
    /// `OFFSETS` frames); a plan without garbled layers sends nothing.
    pub(crate) fn rekey_decoding<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        key: &[u8; 32],
    ) -> Result<(), ProtocolError> {
        if let Some(g) = self.gc.as_mut() {
            g.rekey_decoding(ch, key)?;
        }
        Ok(())
    }

    /// Banked sets: re-keys the OT layers' correlations to the PRF keyed by `key` (`pi-ot`'s
    /// `REKEY` frames); a plan without OT layers sends nothing.
    pub(crate) fn rekey_ot<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        key: &[u8; 32],
    ) -> Result<(), ProtocolError> {
        if let Some(o) = self.ot.as_mut() {
            o.rekey(ch, key)?;
        }
        Ok(())
    }

    /// Δ and the label PRF key of the garbled layers (`None` without garbled layers).
    pub(crate) fn gc_secrets(&self) -> Option<RelusSecrets> {
        self.gc.as_ref().map(|g| g.secrets())
    }

    /// The ReLU material of a banked set made with `plan`, rebuilt from its secrets.
    pub(crate) fn restore(
        program: &Program,
        plan: &[ReluProtocol],
        secrets: &RelusSecrets,
        decoding_key: &[u8; 32],
        ot_key: &[u8; 32],
    ) -> Result<Self, ProtocolError> {
        let specs = gc_specs(program, plan)?;
        let ot = ot_params(program, plan)?;
        Ok(ServerRelus {
            plan: plan.to_vec(),
            sizes: program
                .layer_spans()
                .iter()
                .map(|l| l.server_words)
                .collect(),
            layer: 0,
            gc: (!specs.is_empty())
                .then(|| pi_gc::ServerRelus::restore(&specs, secrets, decoding_key)),
            ot: if ot.is_empty() {
                None
            } else {
                Some(pi_ot::OtReluServer::restore(&ot, ot_key)?)
            },
        })
    }
}

impl ClientRelus {
    /// Receives and applies the decoding offsets the server sent after its offline phase.
    pub(crate) fn recv_decode_offsets<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        program: &Program,
    ) -> Result<(), ProtocolError> {
        if let Some(g) = self.gc.as_mut() {
            let params = gc_specs(program, &self.plan)?;
            g.set_decode_offsets(pi_gc::recv_decode_offsets(ch, &params)?)?;
        }
        Ok(())
    }

    /// Offline for a banked set: the garbled layers' chunks go to `sink`, the OT layers'
    /// material is re-keyed by the server and returned as bytes. `inputs` are the client's
    /// circuit words (per circuit its shares, then n = −r).
    pub(crate) fn offline_banked<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        program: &Program,
        plan: &[ReluProtocol],
        inputs: &[u64],
        rng: &mut ChaCha20Rng,
        sink: &mut dyn ChunkSink,
    ) -> Result<BankedClientRelus, ProtocolError> {
        let spans = program.layer_spans();
        let words: Vec<usize> = spans.iter().map(|l| l.client_words).collect();
        let specs = gc_specs(program, plan)?;
        let ot = ot_params(program, plan)?;
        let (mut gc_in, mut ot_words) = split(&words, plan, inputs)?;
        let gc = if specs.is_empty() {
            Ok(ClientOffline::default())
        } else {
            pi_gc::evaluate_offline_into(ch, &specs, &gc_in, rng, sink).map_err(Into::into)
        };
        gc_in.zeroize();
        let gc = gc.inspect_err(|_: &ProtocolError| ot_words.zeroize())?;
        // OT layers are plain ReLUs: two words (b, n) per element.
        let mut ot_in: Vec<(u64, u64)> = ot_words.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        ot_words.zeroize();
        let ot_material = if ot.is_empty() {
            Ok(None)
        } else {
            pi_ot::client_offline(ch, &ot, &ot_in, rng).map(Some)
        };
        ot_in.iter_mut().for_each(|x| x.zeroize());
        let mut ot_material = ot_material?;
        let offsets = if specs.is_empty() {
            Vec::new()
        } else {
            pi_gc::recv_decode_offsets(ch, &specs)?
        };
        let (ot, ot_stats) = match ot_material.as_mut() {
            Some(o) => {
                o.recv_rekey(ch)?;
                (o.to_bytes(), o.stats())
            }
            None => (Zeroizing::new(Vec::new()), pi_ot::OtReluStats::default()),
        };
        Ok(BankedClientRelus {
            gc,
            offsets,
            ot,
            ot_stats,
        })
    }

    /// The ReLU material of a banked set made with `plan`: garbled chunks from `source` with
    /// their `offsets` applied, the OT layers' material from its stored bytes.
    pub(crate) fn restore(
        program: &Program,
        plan: &[ReluProtocol],
        source: Box<dyn ChunkSource>,
        offline: &ClientOffline,
        offsets: Vec<u64>,
        ot_bytes: &[u8],
    ) -> Result<Self, ProtocolError> {
        let specs = gc_specs(program, plan)?;
        let ot = ot_params(program, plan)?;
        let gc = if specs.is_empty() {
            None
        } else {
            let mut g = pi_gc::ClientRelus::from_source(&specs, source, offline);
            g.set_decode_offsets(offsets)?;
            Some(g)
        };
        let ot = if ot.is_empty() {
            None
        } else {
            Some(pi_ot::OtReluClient::from_bytes(&ot, ot_bytes)?)
        };
        Ok(ClientRelus {
            plan: plan.to_vec(),
            sizes: program
                .layer_spans()
                .iter()
                .map(|l| l.circuits.len())
                .collect(),
            layer: 0,
            gc,
            ot,
        })
    }
}
