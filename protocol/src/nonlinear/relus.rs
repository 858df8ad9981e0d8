//! The ReLU material of one inference, whichever protocols its layers use: one `pi-gc` session
//! for the garbled layers and one `pi-ot` session for the OT layers (each skipped when empty),
//! consumed layer by layer, in order, never reused.

use std::io::{Read, Write};

use pi_gc::ReluParams;
use pi_net::Channel;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroize;

use super::ReluProtocol;
use crate::program::Program;
use crate::ProtocolError;

/// Splits per-layer runs of items (`spans[i]` items for layer i) by the protocol of their layer.
pub(super) fn split<T: Copy>(
    spans: &[usize],
    plan: &[ReluProtocol],
    items: &[T],
) -> Result<(Vec<T>, Vec<T>), ProtocolError> {
    if plan.len() != spans.len() {
        return Err(ProtocolError::Violation(format!(
            "{} ReLU protocols announced for {} ReLU layers",
            plan.len(),
            spans.len()
        )));
    }
    let (mut gc, mut ot) = (Vec::new(), Vec::new());
    let mut at = 0;
    for (&n, p) in spans.iter().zip(plan) {
        let part = items
            .get(at..at + n)
            .ok_or_else(|| ProtocolError::Violation("ReLU element count".into()))?;
        match p {
            ReluProtocol::Gc => gc.extend_from_slice(part),
            ReluProtocol::Ot => ot.extend_from_slice(part),
        }
        at += n;
    }
    Ok((gc, ot))
}

/// The OT layers' parameters (one per element) and a check that every OT layer is a plain ReLU
/// (maxima and ReLU6 run on garbled circuits only).
pub(super) fn ot_params(
    program: &Program,
    plan: &[ReluProtocol],
) -> Result<Vec<ReluParams>, ProtocolError> {
    let mut v = Vec::new();
    for (l, p) in program.layer_spans().iter().zip(plan) {
        if *p == ReluProtocol::Ot {
            let params = l.relu.ok_or_else(|| {
                ProtocolError::Violation(
                    "the OT protocol was announced for a max-pool or ReLU6 layer".into(),
                )
            })?;
            v.extend(std::iter::repeat_n(params, l.circuits.len()));
        }
    }
    Ok(v)
}

/// Time spent in each protocol's offline phase by this party.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReluOfflineTimes {
    /// Garbling or evaluation-side table handling (GC), seconds.
    pub garble_seconds: f64,
    /// OT extension and silent OT, seconds.
    pub ot_seconds: f64,
}

/// Server side: Δ and decoding bits of the garbled layers, OT material of the others.
pub(crate) struct ServerRelus {
    pub(super) plan: Vec<ReluProtocol>,
    /// Server words per layer (its shares: one per ReLU, n per n-element maximum).
    pub(super) sizes: Vec<usize>,
    pub(super) layer: usize,
    pub(super) gc: Option<pi_gc::ServerRelus>,
    pub(super) ot: Option<pi_ot::OtReluServer>,
}

impl ServerRelus {
    /// Offline: garbles the GC layers' circuits, then prepares the OT layers' correlations.
    pub(crate) fn offline<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        program: &Program,
        plan: &[ReluProtocol],
        rng: &mut ChaCha20Rng,
    ) -> Result<Self, ProtocolError> {
        let spans = program.layer_spans();
        let circuits: Vec<usize> = spans.iter().map(|l| l.circuits.len()).collect();
        let (gc_specs, _) = split(&circuits, plan, program.circuit_specs())?;
        let ot_params = ot_params(program, plan)?;
        let gc = if gc_specs.is_empty() {
            None
        } else {
            Some(pi_gc::garble_offline(ch, &gc_specs, rng)?)
        };
        let ot = if ot_params.is_empty() {
            None
        } else {
            Some(pi_ot::server_offline(ch, &ot_params, rng)?)
        };
        Ok(ServerRelus {
            plan: plan.to_vec(),
            sizes: spans.iter().map(|l| l.server_words).collect(),
            layer: 0,
            gc,
            ot,
        })
    }

    /// Online: the next ReLU layer on the server's shares `a` (its circuit words); returns the
    /// result − r per circuit.
    pub(crate) fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        a: &[u64],
    ) -> Result<Vec<u64>, ProtocolError> {
        let i = self.layer;
        let (Some(p), Some(&n)) = (self.plan.get(i), self.sizes.get(i)) else {
            return Err(ProtocolError::Exhausted("ReLU layers"));
        };
        if n != a.len() {
            return Err(ProtocolError::Violation(format!(
                "ReLU layer {i} has {n} elements, got {}",
                a.len()
            )));
        }
        self.layer += 1;
        Ok(match p {
            ReluProtocol::Gc => self
                .gc
                .as_mut()
                .ok_or(ProtocolError::Exhausted("garbled ReLUs"))?
                .online(ch, a)?,
            ReluProtocol::Ot => self
                .ot
                .as_mut()
                .ok_or(ProtocolError::Exhausted("OT ReLUs"))?
                .online(ch, a)?,
        })
    }

    /// This party's offline compute split by protocol.
    pub(crate) fn offline_times(&self) -> ReluOfflineTimes {
        let mut t = ReluOfflineTimes::default();
        if let Some(g) = &self.gc {
            t.garble_seconds += g.stats().gc_seconds;
            t.ot_seconds += g.stats().ot_seconds;
        }
        if let Some(o) = &self.ot {
            let s = o.stats();
            t.ot_seconds += s.ferret_seconds + s.material_seconds + s.reverse_seconds;
        }
        t
    }
}

/// Where the client's garbled chunks of one offline phase are held until the online phase.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GcHeld {
    /// Bytes kept in memory.
    pub(crate) memory_bytes: u64,
    /// Bytes written to the temporary file.
    pub(crate) spilled_bytes: u64,
}

/// Client side: tables and labels of the garbled layers, OT material of the others.
pub(crate) struct ClientRelus {
    pub(super) plan: Vec<ReluProtocol>,
    /// Circuits per layer.
    pub(super) sizes: Vec<usize>,
    pub(super) layer: usize,
    pub(super) gc: Option<pi_gc::ClientRelus>,
    pub(super) ot: Option<pi_ot::OtReluClient>,
}

impl ClientRelus {
    /// Offline: `inputs` are the client's circuit words in step order (per circuit its shares,
    /// then n = −r; a ReLU's are `b, n`); garbled chunks beyond `spill.memory_bytes` wait in a
    /// temporary file. Also returns where the garbled chunks are held.
    pub(crate) fn offline<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        program: &Program,
        plan: &[ReluProtocol],
        inputs: &[u64],
        rng: &mut ChaCha20Rng,
        spill: &pi_gc::SpillPolicy,
    ) -> Result<(Self, GcHeld), ProtocolError> {
        let spans = program.layer_spans();
        let circuits: Vec<usize> = spans.iter().map(|l| l.circuits.len()).collect();
        let words: Vec<usize> = spans.iter().map(|l| l.client_words).collect();
        let (gc_specs, _) = split(&circuits, plan, program.circuit_specs())?;
        let ot_params = ot_params(program, plan)?;
        let (mut gc_in, mut ot_words) = split(&words, plan, inputs)?;
        // OT layers are plain ReLUs: two words (b, n) per element.
        let ot_in: Vec<(u64, u64)> = ot_words.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        ot_words.zeroize();
        let mut held = GcHeld::default();
        let gc = if gc_specs.is_empty() {
            None
        } else {
            let mut sink = pi_gc::SpillChunks::new(spill.clone());
            let done = pi_gc::evaluate_offline_into(ch, &gc_specs, &gc_in, rng, &mut sink);
            held = GcHeld {
                memory_bytes: sink.memory_bytes(),
                spilled_bytes: sink.spilled_bytes(),
            };
            Some(done.and_then(|done| {
                Ok(pi_gc::ClientCircuits::from_source(
                    &gc_specs,
                    sink.into_source()?,
                    &done,
                ))
            }))
        };
        gc_in.zeroize();
        let gc = gc.transpose()?;
        let ot = if ot_params.is_empty() {
            None
        } else {
            Some(pi_ot::client_offline(ch, &ot_params, &ot_in, rng)?)
        };
        Ok((
            ClientRelus {
                plan: plan.to_vec(),
                sizes: circuits,
                layer: 0,
                gc,
                ot,
            },
            held,
        ))
    }

    /// Online: runs the next ReLU layer (`count` elements) with the server.
    pub(crate) fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        count: usize,
    ) -> Result<(), ProtocolError> {
        let i = self.layer;
        let (Some(p), Some(&n)) = (self.plan.get(i), self.sizes.get(i)) else {
            return Err(ProtocolError::Exhausted("ReLU layers"));
        };
        if n != count {
            return Err(ProtocolError::Violation(format!(
                "ReLU layer {i} has {n} elements, asked for {count}"
            )));
        }
        self.layer += 1;
        match p {
            ReluProtocol::Gc => self
                .gc
                .as_mut()
                .ok_or(ProtocolError::Exhausted("garbled ReLUs"))?
                .online(ch, count)?,
            ReluProtocol::Ot => self
                .ot
                .as_mut()
                .ok_or(ProtocolError::Exhausted("OT ReLUs"))?
                .online(ch, count)?,
        }
        Ok(())
    }

    /// This party's offline compute split by protocol.
    pub(crate) fn offline_times(&self) -> ReluOfflineTimes {
        let mut t = ReluOfflineTimes::default();
        if let Some(g) = &self.gc {
            t.garble_seconds += g.stats().gc_seconds;
            t.ot_seconds += g.stats().ot_seconds;
        }
        if let Some(o) = &self.ot {
            let s = o.stats();
            t.ot_seconds += s.ferret_seconds + s.material_seconds + s.reverse_seconds;
        }
        t
    }

    /// ReLU elements per protocol: (garbled, OT).
    pub(crate) fn counts(&self) -> (u64, u64) {
        let (mut g, mut o) = (0u64, 0u64);
        for (p, n) in self.plan.iter().zip(&self.sizes) {
            match p {
                ReluProtocol::Gc => g += *n as u64,
                ReluProtocol::Ot => o += *n as u64,
            }
        }
        (g, o)
    }
}
