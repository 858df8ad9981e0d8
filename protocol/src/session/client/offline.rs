//! Client offline phase of one inference: every client share is fixed here, before any input exists.

use std::io::{Read, Write};
use std::time::Instant;

use pi_gc::ChunkSink;
use pi_he::ClientHe;
use pi_net::Channel;
use rand::Rng;
use zeroize::Zeroize;

use crate::messages::OfflineDone;
use crate::nonlinear::{
    plan_counts, BankedClientRelus, ClientRelus, ReluOfflineTimes, ReluProtocol,
};
use crate::program::{Program, Step};
use crate::report::{OfflineReport, ReluPhase};
use crate::session::secs;
use crate::shares::{mask, truncate_client_all};
use crate::ProtocolError;

/// What the client keeps from one offline phase; consumed by exactly one online phase.
pub struct ClientMaterial {
    pub(crate) input_mask: Vec<u64>,
    pub(crate) output_share: Vec<u64>,
    pub(crate) relus: ClientRelus,
    pub(crate) report: OfflineReport,
}

impl Drop for ClientMaterial {
    fn drop(&mut self) {
        self.input_mask.zeroize();
        self.output_share.zeroize();
    }
}

/// Offline phase of one inference: every client share is fixed here, before any input exists;
/// garbled chunks beyond `spill.memory_bytes` wait in a temporary file. Also returns the bytes
/// of garbled chunks kept in memory.
#[allow(clippy::too_many_arguments)]
pub(crate) fn offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    relu_protocols: &[ReluProtocol],
    spill: &pi_gc::SpillPolicy,
    he: &ClientHe,
    rng: &mut rand_chacha::ChaCha20Rng,
    index: usize,
    batch: usize,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<(ClientMaterial, u64), ProtocolError> {
    let (input_mask, output_share, (relus, held), mut report) = offline_with(
        ch,
        program,
        he,
        rng,
        index,
        batch,
        progress,
        |ch, inputs, rng| {
            let (mut relus, held) =
                ClientRelus::offline(ch, program, relu_protocols, inputs, rng, spill)?;
            relus.recv_decode_offsets(ch, program)?;
            let (times, counts) = (relus.offline_times(), relus.counts());
            Ok(((relus, held), times, counts))
        },
    )?;
    report.gc_spilled_bytes = held.spilled_bytes;
    Ok((
        ClientMaterial {
            input_mask,
            output_share,
            relus,
            report,
        },
        held.memory_bytes,
    ))
}

/// Offline phase of one banked inference: as [`offline`], with the garbled chunks streamed to
/// `sink` and the OT layers' material re-keyed by the server and returned as bytes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn offline_banked<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    relu_protocols: &[ReluProtocol],
    he: &ClientHe,
    rng: &mut rand_chacha::ChaCha20Rng,
    index: usize,
    batch: usize,
    progress: &dyn Fn(&str, usize, usize),
    sink: &mut dyn ChunkSink,
) -> Result<(Vec<u64>, Vec<u64>, BankedClientRelus, OfflineReport), ProtocolError> {
    let (gc_relus, ot_relus) = plan_counts(program, relu_protocols)?;
    offline_with(
        ch,
        program,
        he,
        rng,
        index,
        batch,
        progress,
        |ch, inputs, rng| {
            let relus =
                ClientRelus::offline_banked(ch, program, relu_protocols, inputs, rng, sink)?;
            let o = relus.ot_stats;
            let times = ReluOfflineTimes {
                garble_seconds: relus.gc.stats.gc_seconds,
                ot_seconds: relus.gc.stats.ot_seconds
                    + o.ferret_seconds
                    + o.material_seconds
                    + o.reverse_seconds,
            };
            Ok((relus, times, (gc_relus as u64, ot_relus as u64)))
        },
    )
}

/// The shares of one offline phase; `relu` runs the nonlinear part on the client's circuit words
/// (per circuit its shares, then n = −r; a ReLU's are `b, n`) and says how long each protocol
/// took and how many circuits each ran.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn offline_with<R: Read, W: Write, T>(
    ch: &mut Channel<R, W>,
    program: &Program,
    he: &ClientHe,
    rng: &mut rand_chacha::ChaCha20Rng,
    index: usize,
    batch: usize,
    progress: &dyn Fn(&str, usize, usize),
    relu: impl FnOnce(
        &mut Channel<R, W>,
        &[u64],
        &mut rand_chacha::ChaCha20Rng,
    ) -> Result<(T, ReluOfflineTimes, (u64, u64)), ProtocolError>,
) -> Result<(Vec<u64>, Vec<u64>, T, OfflineReport), ProtocolError> {
    let start = Instant::now();
    let counters = ch.counters();
    let bits = program.ring_bits();
    let ring = mask(bits);
    let steps = program.steps();
    let label = if batch > 1 {
        format!("offline {}/{} HE", index + 1, batch)
    } else {
        "offline: HE".into()
    };
    let linear_total = program.linear_count();

    let mut shares: Vec<Option<Vec<u64>>> = vec![None; steps.len()];
    let mut gc_inputs: Vec<u64> = Vec::with_capacity(2 * program.circuit_count());
    let mut he_seconds = 0.0;
    let mut linear_done = 0;
    let mut input_mask = Vec::new();
    for (id, step) in steps.iter().enumerate() {
        let out = match step {
            Step::Input => {
                let r: Vec<u64> = (0..program.input_len())
                    .map(|_| rng.gen::<u64>() & ring)
                    .collect();
                input_mask = r.clone();
                r
            }
            Step::Linear {
                shape,
                pre_shift,
                input,
            } => {
                progress(&label, linear_done, linear_total);
                let mut x = take_input(&shares, *input)?;
                truncate_client_all(&mut x, *pre_shift, bits);
                let t = Instant::now();
                let y = pi_he::client_linear(ch, he, shape, &x)?;
                he_seconds += secs(t);
                linear_done += 1;
                y
            }
            Step::Circuits { input, layer } => {
                let x = shares
                    .get(*input)
                    .and_then(|s| s.as_deref())
                    .ok_or_else(|| missing(*input))?;
                let (words, out) = layer.client_offline(x, bits, rng)?;
                gc_inputs.extend(words);
                out
            }
            // Only the server adds the constants; the client's share passes through.
            Step::AddConst { input } => take_input(&shares, *input)?,
            Step::Truncate { input, shift } => {
                let mut x = take_input(&shares, *input)?;
                truncate_client_all(&mut x, *shift, bits);
                x
            }
            Step::Local { inputs } => {
                let xs: Vec<&[u64]> = inputs
                    .iter()
                    .map(|&i| {
                        shares
                            .get(i)
                            .and_then(|s| s.as_deref())
                            .ok_or_else(|| missing(i))
                    })
                    .collect::<Result<_, _>>()?;
                program.eval_local(id, &xs)?
            }
        };
        shares[id] = Some(out);
        for dead in program.last_uses(id) {
            if let Some(mut v) = shares[*dead].take() {
                v.zeroize();
            }
        }
    }
    let output_share = shares[program.output()]
        .take()
        .ok_or(ProtocolError::Violation("no output".into()))?;
    shares.iter_mut().flatten().for_each(|v| v.zeroize());

    progress(
        if batch > 1 {
            "offline: garbled circuits"
        } else {
            "offline: OT + garbled circuits"
        },
        0,
        1,
    );
    let t = Instant::now();
    let c_relu = ch.counters();
    let relus = relu(ch, &gc_inputs, rng);
    // b and n = −r of every ReLU: the client's masks, no longer needed here (the OT material
    // keeps its own copy of b until the ReLU runs).
    gc_inputs.iter_mut().for_each(|w| w.zeroize());
    let (relus, times, (gc_relus, ot_relus)) = relus?;
    let relu_seconds = secs(t);
    let relu_bytes = ch.counters().since(c_relu).total();
    let done: OfflineDone = ch.recv()?;
    let traffic = ch.counters().since(counters);
    Ok((
        input_mask,
        output_share,
        relus,
        OfflineReport {
            seconds: secs(start),
            bytes_sent: traffic.sent,
            bytes_received: traffic.received,
            he_seconds,
            // Receiving and checking garbled tables: the ReLU phase minus its OT work.
            garble_seconds: if gc_relus > 0 {
                (relu_seconds - times.ot_seconds).max(0.0)
            } else {
                0.0
            },
            ot_seconds: times.ot_seconds,
            server_he_seconds: done.he_seconds,
            server_garble_seconds: done.garble_seconds + done.ot_seconds,
            relu: ReluPhase {
                gc_relus,
                ot_relus,
                bytes: relu_bytes,
                seconds: relu_seconds,
            },
            gc_spilled_bytes: 0,
        },
    ))
}

/// A copy of an earlier node's share (the caller may truncate it in place).
fn take_input(shares: &[Option<Vec<u64>>], id: usize) -> Result<Vec<u64>, ProtocolError> {
    shares
        .get(id)
        .and_then(|s| s.clone())
        .ok_or_else(|| missing(id))
}

fn missing(id: usize) -> ProtocolError {
    ProtocolError::Violation(format!("share of node {id} missing"))
}
