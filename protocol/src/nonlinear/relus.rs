//! The ReLU material of one inference, whichever protocols its layers use: one `pi-gc` session
//! for the garbled layers and one `pi-ot` session for the OT layers (each skipped when empty),
//! consumed layer by layer, in order, never reused.

use std::io::{Read, Write};

use pi_gc::ReluParams;
use pi_net::Channel;
use rand_chacha::ChaCha20Rng;

use super::ReluProtocol;
use crate::program::Program;
use crate::ProtocolError;

/// Splits per-element items by the protocol of their layer.
pub(super) fn split<T: Copy>(
    layers: &[(ReluParams, usize)],
    plan: &[ReluProtocol],
    items: &[T],
) -> Result<(Vec<T>, Vec<T>), ProtocolError> {
    if plan.len() != layers.len() {
        return Err(ProtocolError::Violation(format!(
            "{} ReLU protocols announced for {} ReLU layers",
            plan.len(),
            layers.len()
        )));
    }
    let (mut gc, mut ot) = (Vec::new(), Vec::new());
    let mut at = 0;
    for ((_, n), p) in layers.iter().zip(plan) {
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
        let layers = program.relu_layers();
        let (gc_params, ot_params) = split(&layers, plan, program.relu_params())?;
        let gc = if gc_params.is_empty() {
            None
        } else {
            Some(pi_gc::garble_offline(ch, &gc_params, rng)?)
        };
        let ot = if ot_params.is_empty() {
            None
        } else {
            Some(pi_ot::server_offline(ch, &ot_params, rng)?)
        };
        Ok(ServerRelus {
            plan: plan.to_vec(),
            sizes: layers.iter().map(|l| l.1).collect(),
            layer: 0,
            gc,
            ot,
        })
    }

    /// Online: the next ReLU layer on the server's shares `a`; returns ReLU − r per element.
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

/// Client side: tables and labels of the garbled layers, OT material of the others.
pub(crate) struct ClientRelus {
    pub(super) plan: Vec<ReluProtocol>,
    pub(super) sizes: Vec<usize>,
    pub(super) layer: usize,
    pub(super) gc: Option<pi_gc::ClientRelus>,
    pub(super) ot: Option<pi_ot::OtReluClient>,
}

impl ClientRelus {
    /// Offline: `inputs[i] = (b, n = −r)` per ReLU element in step order.
    pub(crate) fn offline<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        program: &Program,
        plan: &[ReluProtocol],
        inputs: &[(u64, u64)],
        rng: &mut ChaCha20Rng,
    ) -> Result<Self, ProtocolError> {
        let layers = program.relu_layers();
        let (gc_params, ot_params) = split(&layers, plan, program.relu_params())?;
        let (gc_in, ot_in) = split(&layers, plan, inputs)?;
        let gc = if gc_params.is_empty() {
            None
        } else {
            Some(pi_gc::evaluate_offline(ch, &gc_params, &gc_in, rng)?)
        };
        let ot = if ot_params.is_empty() {
            None
        } else {
            Some(pi_ot::client_offline(ch, &ot_params, &ot_in, rng)?)
        };
        Ok(ClientRelus {
            plan: plan.to_vec(),
            sizes: layers.iter().map(|l| l.1).collect(),
            layer: 0,
            gc,
            ot,
        })
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
