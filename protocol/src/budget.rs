//! What each phase of a session may cost: bytes and frames each way, its largest frame, and
//! the compute it needs; from these and the operator's [`SessionLimits`], the frame limit and
//! the deadline of every phase and of the whole session.
//!
//! Everything is derived from the model (both sides compute the same figures): the HE sizes
//! from `pi_he::layer_traffic`, the ReLU sizes from `pi_gc::traffic` for the garbled layers and
//! `pi_ot::traffic` for the OT layers (the announced per-layer plan). A phase may
//! take `phase_slack + bytes / min_rate + compute`, so a slow but steady peer is served and a
//! peer that trickles (or stops reading) is cut at a bound known in advance.

use std::time::Duration;

use pi_gc::{CircuitSpec, OfflineConfig, ReluParams};

use crate::nonlinear::ReluProtocol;

use crate::program::Program;
use crate::ProtocolError;

/// Per-frame bytes beyond the payload: the length word and a plaintext frame check.
const FRAME_OVERHEAD: u64 = 4 + pi_net::check::TAG_BYTES as u64;

/// Assumed compute per multiply-accumulate of a linear layer, offline (HE on both sides) and
/// online (clear). Measured on the 2-core development machine: ≈ 20 ns offline (server HE,
/// 2 threads) and ≈ 2 ns online; the budget allows several times that.
const OFFLINE_NS_PER_MAC: f64 = 100.0;
const ONLINE_NS_PER_MAC: f64 = 10.0;
/// Assumed compute per ReLU: garbling, OT and evaluation ≈ 5 µs offline, ≈ 2 µs online.
const OFFLINE_US_PER_RELU: f64 = 25.0;
const ONLINE_US_PER_RELU: f64 = 10.0;
/// Assumed time to check the client's HE keys (≈ 0.1 s measured).
const SETUP_COMPUTE: Duration = Duration::from_secs(1);

/// Bytes, frames and the largest frame of one direction of one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Payload bytes.
    pub bytes: u64,
    /// Frames.
    pub frames: u64,
    /// The largest single frame (payload bytes).
    pub max_frame: usize,
}

impl Flow {
    fn frame(len: usize) -> Flow {
        Flow {
            bytes: len as u64,
            frames: 1,
            max_frame: len,
        }
    }

    fn and(self, o: Flow) -> Flow {
        Flow {
            bytes: self.bytes + o.bytes,
            frames: self.frames + o.frames,
            max_frame: self.max_frame.max(o.max_frame),
        }
    }

    /// Bytes on the wire, frame overhead included.
    pub fn wire_bytes(&self) -> u64 {
        self.bytes + self.frames * FRAME_OVERHEAD
    }
}

impl From<pi_gc::Flow> for Flow {
    fn from(f: pi_gc::Flow) -> Self {
        Flow {
            bytes: f.bytes,
            frames: f.frames,
            max_frame: f.max_frame,
        }
    }
}

/// One phase: client → server (`up`), server → client (`down`), and its compute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phase {
    pub up: Flow,
    pub down: Flow,
    pub compute: Duration,
}

impl Phase {
    /// Bytes both ways, overhead included.
    pub fn wire_bytes(&self) -> u64 {
        self.up.wire_bytes() + self.down.wire_bytes()
    }
}

/// The phases of a session of this model (offline and online are per inference).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionBudget {
    /// The HE key setup (one frame up).
    pub setup: Phase,
    /// One offline phase: every linear layer's HE exchange, then the garbled ReLUs.
    pub offline: Phase,
    /// One online phase: masked input, the ReLU rounds, the output share.
    pub online: Phase,
}

impl Program {
    /// The traffic and compute of each phase of a session of this program, every ReLU layer
    /// garbled.
    pub fn budget(&self) -> Result<SessionBudget, ProtocolError> {
        self.budget_for(&vec![ReluProtocol::Gc; self.relu_layers().len()])
    }

    /// The traffic and compute of each phase with ReLU layer i run by `plan[i]`.
    pub fn budget_for(&self, plan: &[ReluProtocol]) -> Result<SessionBudget, ProtocolError> {
        let he = self.he_params()?;
        let setup = Phase {
            up: Flow::frame(pi_he::setup_len(he)),
            down: Flow::default(),
            compute: SETUP_COMPUTE,
        };
        let mut up = Flow::default();
        let mut down = Flow::default();
        for (_, shape, _) in self.linear_layers() {
            let t = pi_he::layer_traffic(he, shape)?;
            up = up.and(Flow {
                bytes: t.request_bytes,
                frames: t.request_frames,
                max_frame: t.max_request_frame,
            });
            down = down.and(Flow {
                bytes: t.reply_bytes,
                frames: t.reply_frames,
                max_frame: t.max_reply_frame,
            });
        }
        let (gc_params, ot_params) = split_by_plan(self, plan)?;
        // Each protocol's session runs only when it has ReLUs.
        let mut gc = pi_gc::GcTraffic::default();
        if !gc_params.is_empty() {
            gc = pi_gc::traffic(&gc_params, &OfflineConfig::default());
        }
        if !ot_params.is_empty() {
            let ot = pi_ot::traffic(&ot_params);
            gc.offline_up = merge(gc.offline_up, ot.offline_up);
            gc.offline_down = merge(gc.offline_down, ot.offline_down);
            self.add_ot_online(plan, &mut gc);
        }
        // The decoding offsets of the garbled layers, a preprocess session's re-keying of the OT
        // layers (counted for every session: an upper bound), OfflineDone (three f64), then a
        // preprocess session's ticket.
        let offsets = pi_gc::offsets_traffic(&gc_params);
        let rekey = pi_ot::rekey_traffic(&ot_params);
        let offline = Phase {
            up: up.and(gc.offline_up.into()),
            down: down
                .and(gc.offline_down.into())
                .and(offsets.into())
                .and(rekey.into())
                .and(Flow::frame(24))
                .and(Flow::frame(8 + crate::bank::ticket::TICKET_LEN)),
            compute: compute(self, OFFLINE_NS_PER_MAC, OFFLINE_US_PER_RELU),
        };
        let online = self.online_phase_with(&gc);
        Ok(SessionBudget {
            setup,
            offline,
            online,
        })
    }

    /// The traffic and compute of one online phase with ReLU layer i run by `plan[i]` (no HE
    /// parameters needed: a banked inference's client has none).
    pub fn online_phase_for(&self, plan: &[ReluProtocol]) -> Result<Phase, ProtocolError> {
        let (gc_params, ot_params) = split_by_plan(self, plan)?;
        let mut t = pi_gc::GcTraffic::default();
        if !gc_params.is_empty() {
            t = pi_gc::traffic(&gc_params, &OfflineConfig::default());
        }
        if !ot_params.is_empty() {
            self.add_ot_online(plan, &mut t);
        }
        Ok(self.online_phase_with(&t))
    }

    /// Adds the online traffic of the OT layers of `plan` (every OT layer is its own call).
    fn add_ot_online(&self, plan: &[ReluProtocol], t: &mut pi_gc::GcTraffic) {
        for ((params, n), proto) in self.relu_layers().iter().zip(plan) {
            if *proto == ReluProtocol::Ot {
                let layer = pi_ot::traffic(&vec![*params; *n]);
                t.online_up = merge(t.online_up, layer.online_up);
                t.online_down = merge(t.online_down, layer.online_down);
            }
        }
    }

    /// One online phase whose ReLU layers move `gc`'s online traffic.
    fn online_phase_with(&self, gc: &pi_gc::GcTraffic) -> Phase {
        // MaskedInput and OutputShare: bincode vectors of u64 (+ two f64 on the output).
        let input = Flow::frame(8 + 8 * self.input_len());
        let output = Flow::frame(8 + 8 * self.output_len() + 16);
        // The ReLU layers run as separate calls: allow one more frame each way per ReLU node.
        let calls = self.relu_nodes() as u64;
        let extra = |f: Flow| Flow {
            frames: f.frames + calls,
            ..f
        };
        Phase {
            up: input.and(extra(gc.online_up.into())),
            down: output.and(extra(gc.online_down.into())),
            compute: compute(self, ONLINE_NS_PER_MAC, ONLINE_US_PER_RELU),
        }
    }
}

fn merge(a: pi_gc::Flow, b: pi_gc::Flow) -> pi_gc::Flow {
    pi_gc::Flow {
        bytes: a.bytes + b.bytes,
        frames: a.frames + b.frames,
        max_frame: a.max_frame.max(b.max_frame),
    }
}

/// The circuits of the garbled layers and the ReLU parameters of the OT layers.
fn split_by_plan(
    p: &Program,
    plan: &[ReluProtocol],
) -> Result<(Vec<CircuitSpec>, Vec<ReluParams>), ProtocolError> {
    let layers = p.layer_spans();
    if plan.len() != layers.len() {
        return Err(ProtocolError::Violation(format!(
            "{} ReLU protocols for {} ReLU layers",
            plan.len(),
            layers.len()
        )));
    }
    let (mut gc, mut ot) = (Vec::new(), Vec::new());
    for (l, proto) in layers.iter().zip(plan) {
        match (proto, l.relu) {
            (ReluProtocol::Gc, _) => gc.extend_from_slice(&p.circuit_specs()[l.circuits.clone()]),
            (ReluProtocol::Ot, Some(params)) => {
                ot.extend(std::iter::repeat_n(params, l.circuits.len()))
            }
            (ReluProtocol::Ot, None) => {
                return Err(ProtocolError::Violation(
                    "the OT protocol was announced for a max-pool or ReLU6 layer".into(),
                ))
            }
        }
    }
    Ok((gc, ot))
}

fn compute(p: &Program, ns_per_mac: f64, us_per_relu: f64) -> Duration {
    Duration::from_secs_f64(
        p.macs() as f64 * ns_per_mac * 1e-9 + p.relu_equivalents() as f64 * us_per_relu * 1e-6,
    )
}

/// Limits every server session runs under (the operator's flags).
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Longest one read or write may wait without moving a byte.
    pub idle_timeout: Duration,
    /// Added to every phase's deadline; also the deadline of the hello.
    pub phase_slack: Duration,
    /// Slowest data rate (bytes per second, both directions together) a session may run at.
    pub min_rate: u64,
    /// Largest frame accepted in any phase (an operator's cap over the per-phase limits).
    pub max_frame: usize,
    /// Largest hello frame.
    pub hello_max_frame: usize,
    /// Most inferences one session may preprocess.
    pub max_batch: u32,
    /// Most sets one preprocess session may bank.
    pub max_bank: u32,
    /// An upper bound on any session's length, below the one derived from the model.
    pub max_session: Option<Duration>,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_timeout: Duration::from_secs(30),
            phase_slack: Duration::from_secs(5),
            min_rate: 1 << 20,
            max_frame: 64 << 20,
            hello_max_frame: 64 << 10,
            max_batch: 16,
            max_bank: 256,
            max_session: None,
        }
    }
}

impl SessionLimits {
    /// How long `phase` may take: the slack, its bytes at the minimum rate, and its compute.
    pub fn phase_time(&self, phase: &Phase) -> Duration {
        let transfer = phase.wire_bytes() as f64 / self.min_rate.max(1) as f64;
        self.phase_slack + Duration::from_secs_f64(transfer) + phase.compute
    }

    /// How long a session of `batch` inferences may take, hello included.
    pub fn session_time(&self, budget: &SessionBudget, batch: u32) -> Duration {
        let per = self.phase_time(&budget.offline) + self.phase_time(&budget.online);
        let t = self.phase_slack + self.phase_time(&budget.setup) + per * batch;
        self.max_session.map_or(t, |m| t.min(m))
    }

    /// How long a preprocess session banking `count` sets may take, hello included.
    pub fn bank_time(&self, budget: &SessionBudget, count: u32) -> Duration {
        let t = self.phase_slack
            + self.phase_time(&budget.setup)
            + self.phase_time(&budget.offline) * count;
        self.max_session.map_or(t, |m| t.min(m))
    }

    /// How long a redeem session may take: the hello, the ticket offers, one online phase.
    pub fn redeem_time(&self, budget: &SessionBudget) -> Duration {
        let t = self.phase_slack * 2 + self.phase_time(&budget.online);
        self.max_session.map_or(t, |m| t.min(m))
    }

    /// The largest frame `budget` ever needs from a client (the cap must not be below it).
    pub fn largest_client_frame(budget: &SessionBudget) -> usize {
        [budget.setup.up, budget.offline.up, budget.online.up]
            .iter()
            .map(|f| f.max_frame)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trickle_cannot_stretch_a_phase_and_a_steady_link_is_served() {
        let limits = SessionLimits::default();
        let phase = Phase {
            up: Flow {
                bytes: 10 << 20,
                frames: 10,
                max_frame: 1 << 20,
            },
            down: Flow::default(),
            compute: Duration::from_secs(2),
        };
        let t = limits.phase_time(&phase);
        // 10 MiB at 1 MiB/s + 5 s slack + 2 s compute.
        assert!(
            t > Duration::from_secs(17) && t < Duration::from_secs(18),
            "{t:?}"
        );
        let budget = SessionBudget {
            setup: phase,
            offline: phase,
            online: phase,
        };
        let one = limits.session_time(&budget, 1);
        let four = limits.session_time(&budget, 4);
        // Each more inference adds its offline and online phase.
        assert_eq!(four - one, limits.phase_time(&phase) * 2 * 3);
        let capped = SessionLimits {
            max_session: Some(Duration::from_secs(20)),
            ..limits
        };
        assert_eq!(capped.session_time(&budget, 4), Duration::from_secs(20));
    }
}
