//! Client offline phase of one inference: every client share is fixed here, before any input exists.

use std::io::{Read, Write};
use std::time::Instant;

use pi_gc::{ChunkSink, ClientRelus, MemoryChunks};
use pi_he::ClientHe;
use pi_net::Channel;
use rand::Rng;
use zeroize::Zeroize;

use crate::messages::OfflineDone;
use crate::program::{Program, Step};
use crate::report::OfflineReport;
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

/// The client's part of one offline phase apart from its garbled chunks (which went to a sink).
pub(crate) struct OfflineShares {
    pub(crate) input_mask: Vec<u64>,
    pub(crate) output_share: Vec<u64>,
    /// Decoding offsets of the garbled circuits.
    pub(crate) offsets: Vec<u64>,
    pub(crate) gc: pi_gc::ClientOffline,
    pub(crate) report: OfflineReport,
}

impl Drop for OfflineShares {
    fn drop(&mut self) {
        self.input_mask.zeroize();
        self.output_share.zeroize();
    }
}

/// Offline phase of one inference, kept in memory (the one-shot session).
pub(crate) fn offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    he: &ClientHe,
    rng: &mut rand_chacha::ChaCha20Rng,
    index: usize,
    batch: usize,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<ClientMaterial, ProtocolError> {
    let mut memory = MemoryChunks::default();
    let mut shares = offline_into(ch, program, he, rng, index, batch, progress, &mut memory)?;
    let mut relus = ClientRelus::from_source(program.relu_params(), Box::new(memory), &shares.gc);
    relus.set_decode_offsets(std::mem::take(&mut shares.offsets))?;
    Ok(ClientMaterial {
        input_mask: std::mem::take(&mut shares.input_mask),
        output_share: std::mem::take(&mut shares.output_share),
        relus,
        report: std::mem::take(&mut shares.report),
    })
}

/// Offline phase of one inference: every client share is fixed here, before any input exists;
/// the garbled chunks go to `sink` as they arrive.
#[allow(clippy::too_many_arguments)]
pub(crate) fn offline_into<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    he: &ClientHe,
    rng: &mut rand_chacha::ChaCha20Rng,
    index: usize,
    batch: usize,
    progress: &dyn Fn(&str, usize, usize),
    sink: &mut dyn ChunkSink,
) -> Result<OfflineShares, ProtocolError> {
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
    let mut gc_inputs: Vec<(u64, u64)> = Vec::with_capacity(program.relu_elements());
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
            Step::Relu {
                input,
                params,
                selected,
                shift,
            } => {
                let x = shares
                    .get(*input)
                    .and_then(|s| s.as_deref())
                    .ok_or_else(|| missing(*input))?;
                let wmask = mask(params.in_bits);
                let mut out = Vec::with_capacity(x.len());
                for (i, &v) in x.iter().enumerate() {
                    if selected.contains(i) {
                        let r = rng.gen::<u64>() & ring;
                        gc_inputs.push((v & wmask, r.wrapping_neg() & ring));
                        out.push(r);
                    } else {
                        out.push(crate::shares::truncate_client(v, *shift, bits));
                    }
                }
                out
            }
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
            "offline: garbled ReLUs"
        } else {
            "offline: OT + garbled ReLUs"
        },
        0,
        1,
    );
    let t = Instant::now();
    let gc = pi_gc::evaluate_offline_into(ch, program.relu_params(), &gc_inputs, rng, sink);
    // b and n = −r of every circuit: the client's masks, no longer needed once garbled.
    gc_inputs.iter_mut().for_each(|(b, n)| {
        b.zeroize();
        n.zeroize();
    });
    let gc = gc?;
    let offsets = pi_gc::recv_decode_offsets(ch, program.relu_params())?;
    let gc_seconds = secs(t);
    let done: OfflineDone = ch.recv()?;
    let traffic = ch.counters().since(counters);
    Ok(OfflineShares {
        input_mask,
        output_share,
        offsets,
        gc,
        report: OfflineReport {
            seconds: secs(start),
            bytes_sent: traffic.sent,
            bytes_received: traffic.received,
            he_seconds,
            garble_seconds: (gc_seconds - gc.stats.ot_seconds).max(0.0),
            ot_seconds: gc.stats.ot_seconds,
            server_he_seconds: done.he_seconds,
            server_garble_seconds: done.garble_seconds,
        },
    })
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
