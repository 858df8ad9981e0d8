//! Client (evaluator, OT receiver) side: receives and stores the garbled circuits offline with
//! its input labels, evaluates them online.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::Instant;

use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::{
    groups, lanes, pack_bits, specs_digest, validate_all, GcStats, Group, Layout, HELLO_LEN,
    MAX_CHUNK, ONLINE_FRAME, VERSION,
};
use crate::bank::{ChunkSink, ChunkSource, MemoryChunks, StoredChunk};
use crate::block::{blocks_from_bytes, blocks_to_bytes, Block, Tccr};
use crate::garble::MAX_LANES;
use crate::msg::{self, BulkIn, BulkOut};
use crate::ot::CotReceiver;
use crate::spec::eval_group;
use crate::{CircuitSpec, GcError};

/// Client-side result of the offline phase: stored tables and input labels, consumed online.
///
/// The chunks come from a [`ChunkSource`] (memory, or a bank on disk) and are held only while
/// their circuits are being evaluated.
pub struct ClientCircuits {
    pub(crate) specs: Vec<CircuitSpec>,
    /// Loaded chunks not yet fully consumed, in order.
    pub(crate) chunks: VecDeque<ClientChunk>,
    /// Where further chunks come from.
    pub(crate) source: Box<dyn ChunkSource>,
    /// Per-circuit XOR applied to the output colour bits (decoding offsets), empty when none.
    pub(crate) offsets: Vec<u64>,
    /// First circuit not yet loaded from the source.
    pub(crate) loaded: usize,
    pub(crate) next: usize,
    pub(crate) hash: Tccr,
    pub(crate) stats: GcStats,
}

/// One received chunk: its tables frame and the client's active labels for its circuits.
pub(crate) struct ClientChunk {
    pub(crate) first: usize,
    pub(crate) tables: BulkIn,
    pub(crate) layout: Layout,
    pub(crate) labels: Zeroizing<Vec<Block>>,
}

/// What the client's online phase needs from its offline phase besides the chunks.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientOffline {
    /// This party's offline statistics.
    pub stats: GcStats,
    /// The garbling's hash nonce (public: the server sent it in its hello).
    pub hash_nonce: u128,
}

/// Offline, client (evaluator + OT receiver), chunks kept in memory. `inputs` holds each
/// circuit's client words in order ([`CircuitSpec::client_words`] per circuit): its shares, then
/// n = −r (for a ReLU: `b mod 2^w, n mod 2^k`).
pub fn evaluate_offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[CircuitSpec],
    inputs: &[u64],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<ClientCircuits, GcError> {
    let mut memory = MemoryChunks::default();
    let done = evaluate_offline_into(ch, params, inputs, rng, &mut memory)?;
    Ok(ClientCircuits::from_source(params, Box::new(memory), &done))
}

/// Offline, client, handing every verified chunk to `sink` as it arrives (a bank on disk keeps
/// the client's memory independent of the circuit count); returns what the online phase needs
/// besides the chunks (the garbling's hash nonce) and this party's statistics.
pub fn evaluate_offline_into<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[CircuitSpec],
    inputs: &[u64],
    rng: &mut (impl CryptoRng + RngCore),
    sink: &mut dyn ChunkSink,
) -> Result<ClientOffline, GcError> {
    let words: Vec<usize> = {
        let mut v = Vec::with_capacity(params.len() + 1);
        v.push(0);
        for p in params {
            v.push(v[v.len() - 1] + p.client_words());
        }
        v
    };
    if inputs.len() != words[params.len()] {
        return Err(GcError::Length {
            what: "client input words",
            expected: words[params.len()],
            got: inputs.len(),
        });
    }
    validate_all(params)?;
    let mut stats = GcStats::default();
    let c0 = ch.counters();
    let hello = msg::recv_small(ch, msg::HELLO, HELLO_LEN)?;
    stats.setup_bytes = ch.counters().since(c0).total();
    let rd4 =
        |at: usize| u32::from_le_bytes([hello[at], hello[at + 1], hello[at + 2], hello[at + 3]]);
    let (version, ot_k, chunk_circuits) = (hello[0], hello[1] as u32, rd4(2) as usize);
    let mut c8 = [0u8; 8];
    c8.copy_from_slice(&hello[6..14]);
    let count = u64::from_le_bytes(c8);
    let mut n16 = [0u8; 16];
    n16.copy_from_slice(&hello[46..62]);
    if version != VERSION {
        return Err(GcError::Desync(format!(
            "protocol version {version}, expected {VERSION}"
        )));
    }
    if count != params.len() as u64 || hello[14..46] != specs_digest(params) {
        return Err(GcError::Desync(format!(
            "server garbles {count} circuits with a different parameter list than the client's {}",
            params.len()
        )));
    }
    if !(1..=MAX_CHUNK).contains(&chunk_circuits) {
        return Err(GcError::InvalidParams(format!(
            "server chunk size {chunk_circuits}"
        )));
    }
    let mut out = ClientOffline {
        stats,
        hash_nonce: u128::from_le_bytes(n16),
    };
    if params.is_empty() {
        return Ok(out);
    }
    let c1 = ch.counters();
    let t = Instant::now();
    let mut ot = CotReceiver::setup(ch, ot_k, rng)?;
    out.stats.ot_seconds += t.elapsed().as_secs_f64();
    out.stats.ot_bytes += ch.counters().since(c1).total();

    // Pipelined: the correction of chunk i + 1 is computed while the server garbles chunk i and
    // is sent as soon as table chunk i has been read, before that chunk's digest is checked, so
    // the server starts chunk i + 1 while this side verifies chunk i and prepares chunk i + 2.
    // This side writes only after reading everything the server sent (and the server writes
    // only after reading a correction), so at most one direction has unread data in flight and
    // no socket buffer size is assumed.
    let parts: Vec<(&[CircuitSpec], &[u64])> = params
        .chunks(chunk_circuits)
        .enumerate()
        .map(|(ci, chunk)| {
            let first = ci * chunk_circuits;
            (chunk, &inputs[words[first]..words[first + chunk.len()]])
        })
        .collect();
    let mut prepare = |ci: usize,
                       stats: &mut GcStats|
     -> (Layout, Zeroizing<Vec<Block>>, BulkOut) {
        let (chunk, inp) = parts[ci];
        let layout = Layout::new(chunk);
        let words = layout.ot_words();
        let t = Instant::now();
        // Choice bits: per circuit, its input words in the circuit's wire layout.
        let mut choices = Zeroizing::new(vec![0 as Block; words]);
        let mut at_word = 0;
        for (i, p) in chunk.iter().enumerate() {
            let n = p.client_words();
            let at = layout.client_off[i];
            p.client_bits(&inp[at_word..at_word + n], |j| {
                let pos = at + j;
                choices[pos / 128] |= 1 << (pos % 128);
            });
            at_word += n;
        }
        let (labels, corr) = ot.extend(&choices);
        let mut frame = BulkOut::new(msg::OT_CORR, ci as u64, chunk.len() as u64, corr.len() * 16);
        blocks_to_bytes(frame.payload(), &corr);
        stats.ot_seconds += t.elapsed().as_secs_f64();
        (layout, labels, frame)
    };
    let (mut layout, mut labels, frame) = prepare(0, &mut out.stats);
    out.stats.ot_bytes += frame.send(ch)? as u64;
    ch.flush()?;
    let mut ahead = (parts.len() > 1).then(|| prepare(1, &mut out.stats));
    for (ci, (chunk, _)) in parts.iter().enumerate() {
        let first = ci * chunk_circuits;
        let raw = ch.recv_frame()?;
        out.stats.table_bytes += raw.len() as u64 + 4;
        let next = ahead.take().map(|(l, lab, frame)| -> Result<_, GcError> {
            out.stats.ot_bytes += frame.send(ch)? as u64;
            ch.flush()?;
            Ok((l, lab))
        });
        let tables = BulkIn::check(
            raw,
            msg::TABLES,
            ci as u64,
            chunk.len() as u64,
            layout.tables(),
        )?;
        let next = next.transpose()?;
        if ci + 2 < parts.len() {
            ahead = Some(prepare(ci + 2, &mut out.stats));
        }
        // Chunk i's layout and labels are stored with its tables; chunk i + 1's take their place.
        let (l, lab) = next.unwrap_or_else(|| (Layout::empty(), Zeroizing::new(Vec::new())));
        let (layout_i, labels_i) = (
            std::mem::replace(&mut layout, l),
            std::mem::replace(&mut labels, lab),
        );
        // The OT runs in whole 128-label words; only the circuits' own labels are kept.
        let mut labels_i = labels_i;
        labels_i.truncate(layout_i.client_labels());
        sink.put(StoredChunk {
            index: ci as u64,
            first,
            count: chunk.len(),
            tables,
            labels: labels_i,
        })?;
    }
    Ok(out)
}

impl ClientCircuits {
    /// Online: evaluates the next `count` circuits with the server's labels and returns the output bits.
    pub fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        count: usize,
    ) -> Result<(), GcError> {
        if count > self.remaining() {
            return Err(GcError::Exhausted {
                requested: count,
                remaining: self.remaining(),
            });
        }
        let c0 = ch.counters();
        let start = self.next;
        self.next += count;
        let mut frames = Vec::new();
        let mut first = start;
        while first < start + count {
            let n = ONLINE_FRAME.min(start + count - first);
            let len: usize = self.specs[first..first + n]
                .iter()
                .map(|p| p.server_input_bits() * 16)
                .sum();
            let (lab, _) = BulkIn::recv(ch, msg::LABELS, first as u64, n as u64, len)?;
            self.load_until(first + n)?;
            let t = Instant::now();
            let colours = self.evaluate(first, n, lab.payload())?;
            self.stats.gc_seconds += t.elapsed().as_secs_f64();
            self.release_before(first + n);
            let ps = &self.specs[first..first + n];
            let offsets = self.offsets.get(first..first + n);
            let vals: Vec<(u64, u32)> = colours
                .iter()
                .enumerate()
                .zip(ps)
                .map(|((i, &c), p)| {
                    let flip = offsets.and_then(|o| o.get(i)).copied().unwrap_or(0);
                    ((c ^ flip) & crate::relu::mask(p.out_bits()), p.out_bits())
                })
                .collect();
            frames.push((first, n, pack_bits(&vals)));
            first += n;
        }
        // Labels are all read before any reply, so neither side ever blocks on a full socket.
        for (first, n, bits) in frames {
            let mut out = BulkOut::new(msg::BITS, first as u64, n as u64, bits.len());
            out.payload().copy_from_slice(&bits);
            out.send(ch)?;
        }
        ch.flush()?;
        self.release_before(self.next);
        self.stats.online_bytes += ch.counters().since(c0).total();
        Ok(())
    }

    /// Evaluates circuits `first..first + n` given the server's labels (16 bytes per server
    /// input bit).
    fn evaluate(&self, first: usize, n: usize, server_labels: &[u8]) -> Result<Vec<u64>, GcError> {
        // Only what the worker threads need is shared with them (the chunk source is not `Sync`).
        let (specs, chunks, hash) = (&self.specs, &self.chunks, &self.hash);
        let ps = &specs[first..first + n];
        let mut lab_off = Vec::with_capacity(n + 1);
        lab_off.push(0usize);
        for p in ps {
            lab_off.push(lab_off[lab_off.len() - 1] + p.server_input_bits());
        }
        let mut srv = Vec::with_capacity(server_labels.len() / 16);
        blocks_from_bytes(server_labels, &mut srv);
        // Locate circuit i's chunk: chunks are contiguous and in order.
        let locate = |c: usize| -> Option<(&ClientChunk, usize)> {
            let front = chunks.front()?;
            let size = front.layout.circuits();
            let idx = c.checked_sub(front.first)? / size.max(1);
            let ch = chunks.get(idx)?;
            (c >= ch.first && c < ch.first + ch.layout.circuits()).then_some((ch, c - ch.first))
        };
        let gs = groups(ps);
        let eval_group = |g: &Group| -> Result<Vec<u64>, GcError> {
            let located: Vec<(&ClientChunk, usize)> = (0..g.len)
                .map(|l| locate(first + g.start + l))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    GcError::Desync(format!("circuit {} has no stored tables", first + g.start))
                })?;
            let run = |range: std::ops::Range<usize>| -> Result<Vec<u64>, GcError> {
                if range.len() == MAX_LANES {
                    eval_lanes::<MAX_LANES>(
                        hash,
                        &g.spec,
                        first + g.start,
                        &located,
                        &srv,
                        &lab_off,
                        g.start,
                    )
                    .map(|v| v.to_vec())
                } else {
                    range
                        .map(|l| {
                            eval_lanes::<1>(
                                hash,
                                &g.spec,
                                first + g.start + l,
                                &located[l..l + 1],
                                &srv,
                                &lab_off,
                                g.start + l,
                            )
                            .map(|v| v[0])
                        })
                        .collect()
                }
            };
            run(0..g.len)
        };
        let results: Vec<Result<Vec<u64>, GcError>> = if crate::run_inline() {
            gs.iter().map(eval_group).collect()
        } else {
            gs.par_iter().map(eval_group).collect()
        };
        let mut out = Vec::with_capacity(n);
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    /// Circuits still available online.
    pub fn remaining(&self) -> usize {
        self.specs.len() - self.next
    }

    /// Offline and online time and traffic so far.
    pub fn stats(&self) -> GcStats {
        self.stats
    }

    /// Bytes held for the circuits not yet evaluated (tables, labels, frame overhead).
    pub fn stored_bytes(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| c.tables.payload().len() + c.labels.len() * 16)
            .sum()
    }
}

fn eval_lanes<const L: usize>(
    hash: &Tccr,
    p: &CircuitSpec,
    circuit: usize,
    located: &[(&ClientChunk, usize)],
    srv: &[Block],
    lab_off: &[usize],
    local: usize,
) -> Result<[u64; L], GcError> {
    let circuits: [u64; L] = std::array::from_fn(|l| (circuit + l) as u64);
    let a = lanes::<L>(p.server_input_bits(), |l, j| srv[lab_off[local + l] + j]);
    let c = lanes::<L>(p.client_input_bits(), |l, j| {
        let (ch, i) = located[l];
        ch.labels[ch.layout.client_off[i] + j]
    });
    let tables: [&[u8]; L] = std::array::from_fn(|l| {
        let (ch, i) = located[l];
        &ch.tables.payload()[ch.layout.table_off[i]..ch.layout.table_off[i + 1]]
    });
    eval_group::<L>(hash, p, circuits, &a, &c, tables)
}
