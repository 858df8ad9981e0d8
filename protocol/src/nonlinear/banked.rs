//! Banking the ReLU material (docs/protocol.md, "Banked preprocessing"): garbled layers only
//! (ReLUs, ReLU6 and max pooling).
//! The server's garbling reduces to Δ, its label PRF key and a decoding key; the client's tables
//! and labels go to a [`ChunkSink`] and come back from a [`ChunkSource`]. OT-based layers keep
//! per-inference correlations that are not banked yet, so a plan with any of them is not bankable.

use std::io::{Read, Write};

use pi_gc::{ChunkSink, ChunkSource, ClientOffline, RelusSecrets};
use pi_net::Channel;
use rand_chacha::ChaCha20Rng;

use super::relus::{split, ClientRelus, ServerRelus};
use super::ReluProtocol;
use crate::program::Program;
use crate::ProtocolError;

/// Whether material for `plan` can be banked (every ReLU layer garbled).
pub(crate) fn bankable(plan: &[ReluProtocol]) -> bool {
    plan.iter().all(|p| *p == ReluProtocol::Gc)
}

fn not_bankable() -> ProtocolError {
    ProtocolError::Violation(
        "banked material needs every ReLU layer garbled (this plan has OT-based layers)".into(),
    )
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

    /// Δ and the label PRF key of the garbled layers (`None` without garbled layers).
    pub(crate) fn gc_secrets(&self) -> Option<RelusSecrets> {
        self.gc.as_ref().map(|g| g.secrets())
    }

    /// The ReLU material of a banked set, rebuilt from its secrets.
    pub(crate) fn restore(
        program: &Program,
        plan: &[ReluProtocol],
        secrets: &RelusSecrets,
        decoding_key: &[u8; 32],
    ) -> Result<Self, ProtocolError> {
        if !bankable(plan) {
            return Err(not_bankable());
        }
        let params = program.circuit_specs();
        Ok(ServerRelus {
            plan: plan.to_vec(),
            sizes: program
                .layer_spans()
                .iter()
                .map(|l| l.server_words)
                .collect(),
            layer: 0,
            gc: (!params.is_empty())
                .then(|| pi_gc::ServerRelus::restore(params, secrets, decoding_key)),
            ot: None,
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
            let circuits: Vec<usize> = program
                .layer_spans()
                .iter()
                .map(|l| l.circuits.len())
                .collect();
            let (params, _) = split(&circuits, &self.plan, program.circuit_specs())?;
            g.set_decode_offsets(pi_gc::recv_decode_offsets(ch, &params)?)?;
        }
        Ok(())
    }

    /// Offline for a banked set: the garbled chunks go to `sink`; returns the hash nonce and
    /// statistics the online phase needs, and the decoding offsets. `inputs` are the client's
    /// circuit words (per circuit its shares, then n = −r).
    pub(crate) fn offline_banked<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        program: &Program,
        plan: &[ReluProtocol],
        inputs: &[u64],
        rng: &mut ChaCha20Rng,
        sink: &mut dyn ChunkSink,
    ) -> Result<(ClientOffline, Vec<u64>), ProtocolError> {
        if !bankable(plan) {
            return Err(not_bankable());
        }
        let params = program.circuit_specs();
        if params.is_empty() {
            return Ok((ClientOffline::default(), Vec::new()));
        }
        let done = pi_gc::evaluate_offline_into(ch, params, inputs, rng, sink)?;
        let offsets = pi_gc::recv_decode_offsets(ch, params)?;
        Ok((done, offsets))
    }

    /// The ReLU material of a banked set: chunks from `source`, applied `offsets`.
    pub(crate) fn restore(
        program: &Program,
        plan: &[ReluProtocol],
        source: Box<dyn ChunkSource>,
        offline: &ClientOffline,
        offsets: Vec<u64>,
    ) -> Result<Self, ProtocolError> {
        if !bankable(plan) {
            return Err(not_bankable());
        }
        let params = program.circuit_specs();
        let gc = if params.is_empty() {
            None
        } else {
            let mut g = pi_gc::ClientRelus::from_source(params, source, offline);
            g.set_decode_offsets(offsets)?;
            Some(g)
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
            ot: None,
        })
    }
}
