//! Offline and online phases of the garbled-ReLU protocol over a `pi_net::Channel`.
//!
//! Offline (one call per session on each side, in lock step, chunk by chunk):
//! 1. server → client `HELLO`: version, SoftSpoken k, chunk size, circuit count, BLAKE3 digest
//!    of the parameter list (the client refuses a different list: `Desync`), and the random
//!    nonce of this garbling's hash tweaks ([`crate::block::Tccr`]);
//! 2. base OT + GGM setup (`ot::softspoken`), Δ is the server's correlation;
//! 3. per chunk of `chunk` circuits: client → server `OT_CORR` (its choice bits are its inputs
//!    b and n), server → client `TABLES` (garbled with the OT outputs as client input zero labels).
//!
//! Pipelining (one chunk deep): the client computes correction i + 1 while the server garbles
//! chunk i, sends it right after reading table chunk i, and only then verifies that chunk and
//! computes correction i + 2 while the server garbles chunk i + 1. Neither side writes while the
//! other might be blocked writing to it (the client writes correction i + 1 only after draining
//! table chunk i; the server writes table chunk i only after reading correction i), so no socket
//! buffer size is assumed.
//!
//! The server never holds more than one chunk of tables: it keeps Δ, a PRF key from which the
//! zero labels of its own inputs are re-derived online, and k decoding bits per circuit
//! (≈ 20 bytes per ReLU). The client stores, per ReLU, the tables (32 B per AND) and its
//! active input labels (16 B per input bit): 3,040 + 1,264 = 4,304 bytes for the defaults.
//!
//! Online (any number of calls, in lock step): server → client `LABELS` (the active labels of
//! its share a), client evaluates and returns `BITS` (one colour bit per output wire); the
//! server XORs them with its decoding bits. Circuits are consumed in order and never reused.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::time::Instant;

use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::bank::{ChunkSink, ChunkSource, MemoryChunks, StoredChunk};
use crate::block::{bit_mask, blocks_from_bytes, Block, Prf, Tccr};
use crate::garble::MAX_LANES;
use crate::msg::{self, BulkIn, BulkOut};
use crate::ot::{CotReceiver, CotSender};
use crate::relu::{eval_relu_group, garble_relu_group, mask, ReluParams};
use crate::GcError;

const VERSION: u8 = 2;
pub(crate) const HELLO_LEN: usize = 1 + 1 + 4 + 8 + 32 + 16;

/// Tunables of the offline phase (chosen by the server, announced to the client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfflineConfig {
    /// SoftSpoken parameter: 1 (IKNP, 16 B/OT), 2 (8 B/OT), 4 (4 B/OT, default), 8 (2 B/OT).
    pub ot_k: u32,
    /// Circuits per streamed chunk (bounds the memory of the sender side).
    pub chunk_circuits: usize,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig {
            ot_k: 4,
            chunk_circuits: 2048,
        }
    }
}

/// Circuits per online label frame.
pub(crate) const ONLINE_FRAME: usize = 8192;
/// Largest chunk a client accepts.
const MAX_CHUNK: usize = 1 << 16;

/// Time and traffic spent by one party (bytes are counted at this party's channel, both ways).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GcStats {
    /// Base OT, GGM setup and OT-extension compute (seconds, this party only).
    pub ot_seconds: f64,
    /// Garbling (server) or evaluation (client) compute, seconds.
    pub gc_seconds: f64,
    /// Bytes of base-OT, setup and OT-extension frames.
    pub ot_bytes: u64,
    /// Bytes of garbled-table frames.
    pub table_bytes: u64,
    /// Bytes of the hello frame.
    pub setup_bytes: u64,
    /// Bytes of online frames (labels and output bits).
    pub online_bytes: u64,
}

/// A run of consecutive circuits with identical parameters, at most `MAX_LANES` long.
struct Group {
    start: usize,
    len: usize,
    p: ReluParams,
}

fn groups(params: &[ReluParams]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::with_capacity(params.len() / MAX_LANES + 1);
    for (i, p) in params.iter().enumerate() {
        match out.last_mut() {
            Some(g) if g.p == *p && g.len < MAX_LANES => g.len += 1,
            _ => out.push(Group {
                start: i,
                len: 1,
                p: *p,
            }),
        }
    }
    out
}

/// Per-circuit sizes, with AND counts computed once per distinct parameter run.
pub(crate) struct Layout {
    /// Prefix sums of table bytes (len + 1 entries).
    table_off: Vec<usize>,
    /// Prefix sums of client input bits (len + 1 entries).
    client_off: Vec<usize>,
}

impl Layout {
    pub(crate) fn new(params: &[ReluParams]) -> Self {
        let mut table_off = Vec::with_capacity(params.len() + 1);
        let mut client_off = Vec::with_capacity(params.len() + 1);
        table_off.push(0);
        client_off.push(0);
        let mut cache: Option<(ReluParams, usize)> = None;
        for p in params {
            let t = match cache {
                Some((q, t)) if q == *p => t,
                _ => {
                    let t = p.table_bytes();
                    cache = Some((*p, t));
                    t
                }
            };
            table_off.push(table_off.last().copied().unwrap_or(0) + t);
            client_off.push(client_off.last().copied().unwrap_or(0) + p.client_input_bits());
        }
        Layout {
            table_off,
            client_off,
        }
    }
    pub(crate) fn tables(&self) -> usize {
        self.table_off.last().copied().unwrap_or(0)
    }
    pub(crate) fn circuits(&self) -> usize {
        self.table_off.len() - 1
    }
    pub(crate) fn client_labels(&self) -> usize {
        self.client_off.last().copied().unwrap_or(0)
    }
    pub(crate) fn ot_words(&self) -> usize {
        self.client_off.last().copied().unwrap_or(0).div_ceil(128)
    }
}

fn params_digest(params: &[ReluParams]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("pi-gc 2025 ReLU parameter list v1");
    for p in params {
        h.update(&p.in_bits.to_le_bytes());
        h.update(&p.shift.to_le_bytes());
        h.update(&p.out_bits.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

fn validate_all(params: &[ReluParams]) -> Result<(), GcError> {
    let mut last = None;
    for p in params {
        if last != Some(*p) {
            p.validate()?;
            last = Some(*p);
        }
    }
    Ok(())
}

/// Gathers wire `j` of every lane: `[src(l, j)]_l`.
fn lanes<const L: usize>(bits: usize, src: impl Fn(usize, usize) -> Block) -> Vec<[Block; L]> {
    (0..bits)
        .map(|j| std::array::from_fn(|l| src(l, j)))
        .collect()
}

/// Zero labels of the server's input wires: PRF(c ‖ j), re-derivable online, never stored.
fn server_zero_labels<const L: usize>(prf: &Prf, circuits: [u64; L], w: usize) -> Vec<[Block; L]> {
    let mut xs: Vec<Block> = (0..w * L)
        .map(|t| ((circuits[t % L] as u128) << 64) | (t / L) as u128)
        .collect();
    prf.eval_in_place(&mut xs);
    (0..w)
        .map(|j| std::array::from_fn(|l| xs[j * L + l]))
        .collect()
}

/// Server-side result of the offline phase: everything needed to run the circuits online.
pub struct ServerRelus {
    pub(crate) params: Vec<ReluParams>,
    pub(crate) decode: Zeroizing<Vec<u64>>,
    pub(crate) delta: Zeroizing<Block>,
    pub(crate) prf_key: Zeroizing<[u8; 16]>,
    pub(crate) prf: Prf,
    pub(crate) next: usize,
    pub(crate) stats: GcStats,
}

/// Client-side result of the offline phase: stored tables and input labels, consumed online.
///
/// The chunks come from a [`ChunkSource`] (memory, or a bank on disk) and are held only while
/// their circuits are being evaluated.
pub struct ClientRelus {
    pub(crate) params: Vec<ReluParams>,
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

/// Offline, server (garbler + OT sender): garbles one circuit per entry of `params` and streams
/// tables chunk by chunk, with the default [`OfflineConfig`].
pub fn garble_offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[ReluParams],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<ServerRelus, GcError> {
    garble_offline_with(ch, params, &OfflineConfig::default(), rng)
}

/// Offline, server, with explicit tunables.
pub fn garble_offline_with<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[ReluParams],
    cfg: &OfflineConfig,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<ServerRelus, GcError> {
    validate_all(params)?;
    if !(1..=MAX_CHUNK).contains(&cfg.chunk_circuits) {
        return Err(GcError::InvalidParams(format!(
            "chunk_circuits must be in 1..={MAX_CHUNK}"
        )));
    }
    let mut stats = GcStats::default();
    let c0 = ch.counters();
    let mut hello = Vec::with_capacity(HELLO_LEN);
    hello.push(VERSION);
    hello.push(cfg.ot_k as u8);
    hello.extend_from_slice(&(cfg.chunk_circuits as u32).to_le_bytes());
    hello.extend_from_slice(&(params.len() as u64).to_le_bytes());
    hello.extend_from_slice(&params_digest(params));
    // A fresh nonce per garbling: tweaks never repeat across garblings under the fixed key.
    let mut nonce = [0u8; 16];
    rng.fill_bytes(&mut nonce);
    hello.extend_from_slice(&nonce);
    if cfg.ot_k > 255 {
        return Err(GcError::InvalidParams(format!(
            "SoftSpoken k = {}",
            cfg.ot_k
        )));
    }
    msg::send_small(ch, msg::HELLO, &hello)?;
    ch.flush()?;
    stats.setup_bytes = ch.counters().since(c0).total();

    let mut prf_key = Zeroizing::new([0u8; 16]);
    rng.fill_bytes(prf_key.as_mut());
    let prf = Prf::new(u128::from_le_bytes(*prf_key));
    if params.is_empty() {
        return Ok(ServerRelus {
            params: Vec::new(),
            decode: Zeroizing::new(Vec::new()),
            delta: Zeroizing::new(1),
            prf_key,
            prf,
            next: 0,
            stats,
        });
    }

    let c1 = ch.counters();
    let t = Instant::now();
    let mut ot = CotSender::setup(ch, cfg.ot_k, rng)?;
    stats.ot_seconds += t.elapsed().as_secs_f64();
    stats.ot_bytes += ch.counters().since(c1).total();
    let delta = Zeroizing::new(ot.delta());
    let hash = Tccr::with_nonce(u128::from_le_bytes(nonce));
    let mut decode = Zeroizing::new(Vec::with_capacity(params.len()));
    // The table frame buffer, reused from chunk to chunk (the previous frame is already sent).
    let mut spare = Vec::new();

    for (ci, chunk) in params.chunks(cfg.chunk_circuits).enumerate() {
        let first = ci * cfg.chunk_circuits;
        let layout = Layout::new(chunk);
        let words = layout.ot_words();

        let c2 = ch.counters();
        let frame = ch.recv_frame()?;
        let t = Instant::now();
        let corr_in = BulkIn::check(
            frame,
            msg::OT_CORR,
            ci as u64,
            chunk.len() as u64,
            ot.correction_bytes(words),
        )?;
        let mut corr = Vec::with_capacity(corr_in.payload().len() / 16);
        blocks_from_bytes(corr_in.payload(), &mut corr);
        let q = ot.extend(&corr, words)?;
        stats.ot_seconds += t.elapsed().as_secs_f64();
        stats.ot_bytes += ch.counters().since(c2).total();

        let t = Instant::now();
        let mut out = BulkOut::reuse(
            std::mem::take(&mut spare),
            msg::TABLES,
            ci as u64,
            chunk.len() as u64,
            layout.tables(),
        );
        let gs = groups(chunk);
        let mut slices = Vec::with_capacity(gs.len());
        let mut rest = out.payload();
        for g in &gs {
            let (head, tail) =
                rest.split_at_mut(layout.table_off[g.start + g.len] - layout.table_off[g.start]);
            slices.push(head);
            rest = tail;
        }
        let (hash, delta, prf, q, layout) = (&hash, *delta, &prf, &q, &layout);
        let garble_group = |(g, tables): (&Group, &mut [u8])| -> Result<Vec<u64>, GcError> {
            let stride = g.p.table_bytes();
            let base = (first + g.start) as u64;
            if g.len == MAX_LANES {
                garble_lanes::<MAX_LANES>(hash, delta, prf, q, layout, g, base, tables, stride)
                    .map(|d| d.to_vec())
            } else {
                let mut v = Vec::with_capacity(g.len);
                for (l, t) in tables.chunks_mut(stride.max(1)).take(g.len).enumerate() {
                    let one = Group {
                        start: g.start + l,
                        len: 1,
                        p: g.p,
                    };
                    v.push(
                        garble_lanes::<1>(
                            hash,
                            delta,
                            prf,
                            q,
                            layout,
                            &one,
                            base + l as u64,
                            t,
                            stride,
                        )?[0],
                    );
                }
                if stride == 0 {
                    // Zero-AND circuits have no tables; still produce their decoding bits.
                    for l in v.len()..g.len {
                        let one = Group {
                            start: g.start + l,
                            len: 1,
                            p: g.p,
                        };
                        v.push(
                            garble_lanes::<1>(
                                hash,
                                delta,
                                prf,
                                q,
                                layout,
                                &one,
                                base + l as u64,
                                &mut [],
                                0,
                            )?[0],
                        );
                    }
                }
                Ok(v)
            }
        };
        let results: Vec<Result<Vec<u64>, GcError>> = if crate::run_inline() {
            gs.iter().zip(slices).map(garble_group).collect()
        } else {
            gs.par_iter()
                .zip(slices.into_par_iter())
                .map(garble_group)
                .collect()
        };
        for r in results {
            decode.extend(r?);
        }
        stats.gc_seconds += t.elapsed().as_secs_f64();
        let (n, buf) = out.send_keep(ch)?;
        stats.table_bytes += n as u64;
        spare = buf;
        ch.flush()?;
    }
    Ok(ServerRelus {
        params: params.to_vec(),
        decode,
        delta,
        prf_key,
        prf,
        next: 0,
        stats,
    })
}

#[allow(clippy::too_many_arguments)]
fn garble_lanes<const L: usize>(
    hash: &Tccr,
    delta: Block,
    prf: &Prf,
    q: &[Block],
    layout: &Layout,
    g: &Group,
    base: u64,
    tables: &mut [u8],
    stride: usize,
) -> Result<[u64; L], GcError> {
    let circuits: [u64; L] = std::array::from_fn(|l| base + l as u64);
    let a0 = server_zero_labels::<L>(prf, circuits, g.p.server_input_bits());
    let c0 = lanes::<L>(g.p.client_input_bits(), |l, j| {
        q[layout.client_off[g.start + l] + j]
    });
    garble_relu_group::<L>(hash, delta, &g.p, circuits, &a0, &c0, tables, stride)
}

/// Offline, client (evaluator + OT receiver): `inputs[i] = (b_i mod 2^w, n_i mod 2^k)`; the
/// chunks are kept in memory.
pub fn evaluate_offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[ReluParams],
    inputs: &[(u64, u64)],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<ClientRelus, GcError> {
    let mut memory = MemoryChunks::default();
    let done = evaluate_offline_into(ch, params, inputs, rng, &mut memory)?;
    Ok(ClientRelus::from_source(params, Box::new(memory), &done))
}

/// Offline, client, handing every verified chunk to `sink` as it arrives (a bank on disk keeps
/// the client's memory independent of the circuit count); returns what the online phase needs
/// besides the chunks (the garbling's hash nonce) and this party's statistics.
pub fn evaluate_offline_into<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[ReluParams],
    inputs: &[(u64, u64)],
    rng: &mut (impl CryptoRng + RngCore),
    sink: &mut dyn ChunkSink,
) -> Result<ClientOffline, GcError> {
    if inputs.len() != params.len() {
        return Err(GcError::Length {
            what: "client inputs",
            expected: params.len(),
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
    if count != params.len() as u64 || hello[14..46] != params_digest(params) {
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
    let mut out = OfflineProgress {
        stats,
        hash_nonce: u128::from_le_bytes(n16),
    };
    if params.is_empty() {
        return Ok(out.done());
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
    let parts: Vec<_> = params
        .chunks(chunk_circuits)
        .zip(inputs.chunks(chunk_circuits))
        .collect();
    let mut prepare = |ci: usize,
                       stats: &mut GcStats|
     -> (Layout, Zeroizing<Vec<Block>>, BulkOut) {
        let (chunk, inp) = parts[ci];
        let layout = Layout::new(chunk);
        let words = layout.ot_words();
        let t = Instant::now();
        // Choice bits: per circuit, b (w bits) then n (k bits), concatenated.
        let mut choices = Zeroizing::new(vec![0 as Block; words]);
        for (i, (p, &(b, n))) in chunk.iter().zip(inp).enumerate() {
            let (w, k) = (p.in_bits as usize, p.out_bits as usize);
            let bits = (b & mask(p.in_bits)) as u128 | (((n & mask(p.out_bits)) as u128) << w);
            let at = layout.client_off[i];
            for j in 0..w + k {
                let pos = at + j;
                choices[pos / 128] |= ((bits >> j) & 1) << (pos % 128);
            }
        }
        let (labels, corr) = ot.extend(&choices);
        let mut frame = BulkOut::new(msg::OT_CORR, ci as u64, chunk.len() as u64, corr.len() * 16);
        for (dst, c) in frame.payload().chunks_exact_mut(16).zip(&corr) {
            dst.copy_from_slice(&c.to_le_bytes());
        }
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
        let (l, lab) = next.unwrap_or_else(|| {
            (
                Layout {
                    table_off: vec![0],
                    client_off: vec![0],
                },
                Zeroizing::new(Vec::new()),
            )
        });
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
    Ok(out.done())
}

/// What `evaluate_offline_into` accumulates while it runs.
struct OfflineProgress {
    stats: GcStats,
    hash_nonce: u128,
}

impl OfflineProgress {
    fn done(self) -> ClientOffline {
        ClientOffline {
            stats: self.stats,
            hash_nonce: self.hash_nonce,
        }
    }
}

/// What the client's online phase needs from its offline phase besides the chunks.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientOffline {
    /// This party's offline statistics.
    pub stats: GcStats,
    /// The garbling's hash nonce (public: the server sent it in its hello).
    pub hash_nonce: u128,
}

/// Packs `k`-bit values into a little-endian bit stream.
fn pack_bits(vals: &[(u64, u32)]) -> Vec<u8> {
    let total: usize = vals.iter().map(|v| v.1 as usize).sum();
    let mut out = vec![0u8; total.div_ceil(8)];
    pack_bits_into(vals, &mut out);
    out
}

/// Packs `k`-bit values into `out` (zeroed, at least the total bit length long).
pub(crate) fn pack_bits_into(vals: &[(u64, u32)], out: &mut [u8]) {
    let mut pos = 0usize;
    for &(v, k) in vals {
        for j in 0..k as usize {
            if let Some(b) = out.get_mut((pos + j) / 8) {
                *b |= (((v >> j) & 1) as u8) << ((pos + j) % 8);
            }
        }
        pos += k as usize;
    }
}

/// Reads the next `k`-bit value from a little-endian bit stream.
pub(crate) fn unpack_bits(bytes: &[u8], pos: &mut usize, k: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..k as usize {
        let p = *pos + j;
        v |= (((bytes.get(p / 8).copied().unwrap_or(0) >> (p % 8)) & 1) as u64) << j;
    }
    *pos += k as usize;
    v
}

impl ServerRelus {
    /// Online: consumes the next `a.len()` circuits in order; returns decoded outputs (= ReLU − r mod 2^k).
    ///
    /// Only the low w bits of each `a` are read (as in [`crate::relu_reference`]).
    pub fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        a: &[u64],
    ) -> Result<Vec<u64>, GcError> {
        if a.len() > self.remaining() {
            return Err(GcError::Exhausted {
                requested: a.len(),
                remaining: self.remaining(),
            });
        }
        let c0 = ch.counters();
        let start = self.next;
        // Commit before any I/O: a failed call never lets the same circuits run twice.
        self.next += a.len();
        let delta = *self.delta;
        for (fi, part) in a.chunks(ONLINE_FRAME).enumerate() {
            let first = start + fi * ONLINE_FRAME;
            let ps = &self.params[first..first + part.len()];
            let len: usize = ps.iter().map(|p| p.server_input_bits() * 16).sum();
            let mut out = BulkOut::new(msg::LABELS, first as u64, part.len() as u64, len);
            let mut rest = out.payload();
            let mut slices = Vec::with_capacity(part.len());
            for p in ps {
                let (h, t) = rest.split_at_mut(p.server_input_bits() * 16);
                slices.push(h);
                rest = t;
            }
            let prf = &self.prf;
            let fill = |(i, ((dst, &av), p)): (usize, ((&mut [u8], &u64), &ReluParams))| {
                let zero =
                    server_zero_labels::<1>(prf, [(first + i) as u64], p.server_input_bits());
                for (j, (d, z)) in dst.chunks_exact_mut(16).zip(zero).enumerate() {
                    let lab = z[0] ^ (bit_mask((av >> j) & 1 == 1) & delta);
                    d.copy_from_slice(&lab.to_le_bytes());
                }
            };
            if crate::run_inline() {
                slices
                    .into_iter()
                    .zip(part)
                    .zip(ps)
                    .enumerate()
                    .for_each(fill);
            } else {
                slices
                    .into_par_iter()
                    .zip(part.par_iter())
                    .zip(ps.par_iter())
                    .enumerate()
                    .for_each(fill);
            }
            out.send(ch)?;
            ch.flush()?;
        }
        let mut res = Vec::with_capacity(a.len());
        for (fi, part) in a.chunks(ONLINE_FRAME).enumerate() {
            let first = start + fi * ONLINE_FRAME;
            let ps = &self.params[first..first + part.len()];
            let nbits: usize = ps.iter().map(|p| p.output_bits()).sum();
            let (bits, _) = BulkIn::recv(
                ch,
                msg::BITS,
                first as u64,
                part.len() as u64,
                nbits.div_ceil(8),
            )?;
            let mut pos = 0;
            for (i, p) in ps.iter().enumerate() {
                let colours = unpack_bits(bits.payload(), &mut pos, p.out_bits);
                res.push((colours ^ self.decode[first + i]) & mask(p.out_bits));
            }
        }
        self.stats.online_bytes += ch.counters().since(c0).total();
        Ok(res)
    }

    /// Circuits still available online.
    pub fn remaining(&self) -> usize {
        self.params.len() - self.next
    }

    /// Offline and online time and traffic so far.
    pub fn stats(&self) -> GcStats {
        self.stats
    }
}

impl ClientRelus {
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
            let len: usize = self.params[first..first + n]
                .iter()
                .map(|p| p.server_input_bits() * 16)
                .sum();
            let (lab, _) = BulkIn::recv(ch, msg::LABELS, first as u64, n as u64, len)?;
            self.load_until(first + n)?;
            let t = Instant::now();
            let colours = self.evaluate(first, n, lab.payload())?;
            self.stats.gc_seconds += t.elapsed().as_secs_f64();
            self.release_before(first + n);
            let ps = &self.params[first..first + n];
            let offsets = self.offsets.get(first..first + n);
            let vals: Vec<(u64, u32)> = colours
                .iter()
                .enumerate()
                .zip(ps)
                .map(|((i, &c), p)| {
                    let flip = offsets.and_then(|o| o.get(i)).copied().unwrap_or(0);
                    ((c ^ flip) & mask(p.out_bits), p.out_bits)
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

    /// Evaluates circuits `first..first + n` given the server's labels (`w`·16 bytes each).
    fn evaluate(&self, first: usize, n: usize, server_labels: &[u8]) -> Result<Vec<u64>, GcError> {
        // Only what the worker threads need is shared with them (the chunk source is not `Sync`).
        let (params, chunks, hash) = (&self.params, &self.chunks, &self.hash);
        let ps = &params[first..first + n];
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
            let size = front.layout.table_off.len() - 1;
            let idx = (c - front.first) / size.max(1);
            let ch = chunks.get(idx)?;
            (c >= ch.first && c < ch.first + ch.layout.table_off.len() - 1)
                .then_some((ch, c - ch.first))
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
                        &g.p,
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
                                &g.p,
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
        self.params.len() - self.next
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
    p: &ReluParams,
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
    eval_relu_group::<L>(hash, p, circuits, &a, &c, tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_packing_round_trips() {
        let vals = [
            (0x5u64, 3u32),
            (0xfff_ffff_ffff_ffff, 60),
            (0, 1),
            (1, 1),
            (u64::MAX, 64),
        ];
        let b = pack_bits(&vals);
        assert_eq!(b.len(), (3 + 60 + 1 + 1 + 64usize).div_ceil(8));
        let mut pos = 0;
        for &(v, k) in &vals {
            assert_eq!(unpack_bits(&b, &mut pos, k), v & mask(k));
        }
    }

    #[test]
    fn groups_split_on_parameter_change_and_lane_width() {
        let a = ReluParams::DEFAULT;
        let b = ReluParams {
            in_bits: 20,
            shift: 4,
            out_bits: 52,
        };
        let ps: Vec<ReluParams> = (0..20)
            .map(|i| if (5..7).contains(&i) { b } else { a })
            .collect();
        let gs: Vec<(usize, usize)> = groups(&ps).iter().map(|g| (g.start, g.len)).collect();
        assert_eq!(gs, vec![(0, 5), (5, 2), (7, 8), (15, 5)]);
    }
}
