//! Server (garbler, OT sender) side: garbles every circuit offline, feeds its shares' labels
//! online and decodes the outputs.

use std::io::{Read, Write};
use std::time::Instant;

use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

use super::{
    groups, lanes, server_zero_labels, specs_digest, unpack_bits, validate_all, GcStats, Group,
    Layout, OfflineConfig, HELLO_LEN, MAX_CHUNK, ONLINE_FRAME, VERSION,
};
use crate::block::{bit_mask, blocks_from_bytes, Block, Prf, Tccr};
use crate::garble::MAX_LANES;
use crate::msg::{self, BulkIn, BulkOut};
use crate::ot::CotSender;
use crate::relu::mask;
use crate::spec::garble_group;
use crate::{CircuitSpec, GcError};

/// Server-side result of the offline phase: everything needed to run the circuits online.
pub struct ServerCircuits {
    pub(crate) specs: Vec<CircuitSpec>,
    /// Prefix sums of server input words (len + 1 entries).
    pub(crate) word_off: Vec<usize>,
    pub(crate) decode: Zeroizing<Vec<u64>>,
    pub(crate) delta: Zeroizing<Block>,
    pub(crate) prf_key: Zeroizing<[u8; 16]>,
    pub(crate) prf: Prf,
    pub(crate) next: usize,
    pub(crate) stats: GcStats,
}

/// Offline, server (garbler + OT sender): garbles one circuit per entry of `specs` and streams
/// tables chunk by chunk, with the default [`OfflineConfig`]. A slice of `ReluParams` converts
/// with `.map(CircuitSpec::from)`.
pub fn garble_offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    specs: &[CircuitSpec],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<ServerCircuits, GcError> {
    garble_offline_with(ch, specs, &OfflineConfig::default(), rng)
}

/// Offline, server, with explicit tunables.
pub fn garble_offline_with<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[CircuitSpec],
    cfg: &OfflineConfig,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<ServerCircuits, GcError> {
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
    hello.extend_from_slice(&specs_digest(params));
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
        return Ok(ServerCircuits {
            specs: Vec::new(),
            word_off: vec![0],
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
            let stride = g.spec.table_bytes();
            let base = (first + g.start) as u64;
            if g.len == MAX_LANES {
                garble_lanes::<MAX_LANES>(hash, delta, prf, q, layout, g, base, tables, stride)
                    .map(|d| d.to_vec())
            } else {
                // Lane l of the group garbled on its own (a partial group).
                let single = |l: usize, t: &mut [u8], stride: usize| {
                    let one = Group {
                        start: g.start + l,
                        len: 1,
                        spec: g.spec,
                    };
                    let base = base + l as u64;
                    Ok::<_, GcError>(
                        garble_lanes::<1>(hash, delta, prf, q, layout, &one, base, t, stride)?[0],
                    )
                };
                let mut v = Vec::with_capacity(g.len);
                for (l, t) in tables.chunks_mut(stride.max(1)).take(g.len).enumerate() {
                    v.push(single(l, t, stride)?);
                }
                if stride == 0 {
                    // Zero-AND circuits have no tables; still produce their decoding bits.
                    for l in v.len()..g.len {
                        v.push(single(l, &mut [], 0)?);
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
    Ok(ServerCircuits {
        word_off: word_offsets(params),
        specs: params.to_vec(),
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
    let a0 = server_zero_labels::<L>(prf, circuits, g.spec.server_input_bits());
    let c0 = lanes::<L>(g.spec.client_input_bits(), |l, j| {
        q[layout.client_off[g.start + l] + j]
    });
    garble_group::<L>(hash, delta, &g.spec, circuits, &a0, &c0, tables, stride)
}

/// Prefix sums of the server's input words per circuit.
pub(crate) fn word_offsets(specs: &[CircuitSpec]) -> Vec<usize> {
    let mut v = Vec::with_capacity(specs.len() + 1);
    v.push(0);
    for s in specs {
        v.push(v[v.len() - 1] + s.server_words());
    }
    v
}

impl ServerCircuits {
    /// Online: consumes the next circuits in order, as many as `a` has words for (one word per
    /// ReLU, n per n-element maximum: the server's shares); returns one decoded output per circuit
    /// (= result − r mod 2^k). Only the low w bits of each word are read.
    pub fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        a: &[u64],
    ) -> Result<Vec<u64>, GcError> {
        let start = self.next;
        let base = self.word_off[start];
        let remaining_words = self.word_off[self.specs.len()] - base;
        if a.len() > remaining_words {
            return Err(GcError::Exhausted {
                requested: a.len(),
                remaining: remaining_words,
            });
        }
        // The circuits whose words `a` covers; `a` must end on a circuit boundary.
        let end = self.word_off[start..]
            .binary_search(&(base + a.len()))
            .map(|i| start + i)
            .map_err(|_| GcError::Length {
                what: "server words (not a whole number of circuits)",
                expected: base + a.len(),
                got: a.len(),
            })?;
        let count = end - start;
        let c0 = ch.counters();
        // Commit before any I/O: a failed call never lets the same circuits run twice.
        self.next = end;
        let delta = *self.delta;
        let mut first = start;
        while first < end {
            let n = ONLINE_FRAME.min(end - first);
            let specs = &self.specs[first..first + n];
            let len: usize = specs.iter().map(|p| p.server_input_bits() * 16).sum();
            let mut out = BulkOut::new(msg::LABELS, first as u64, n as u64, len);
            let mut rest = out.payload();
            let mut slices = Vec::with_capacity(n);
            for p in specs {
                let (h, t) = rest.split_at_mut(p.server_input_bits() * 16);
                slices.push(h);
                rest = t;
            }
            let (prf, word_off) = (&self.prf, &self.word_off);
            let fill = |(i, (dst, p)): (usize, (&mut [u8], &CircuitSpec))| {
                let c = first + i;
                let words = &a[word_off[c] - base..word_off[c + 1] - base];
                let w = p.in_bits() as usize;
                let zero = server_zero_labels::<1>(prf, [c as u64], p.server_input_bits());
                for (j, (d, z)) in dst.chunks_exact_mut(16).zip(zero).enumerate() {
                    let bit = (words[j / w] >> (j % w)) & 1 == 1;
                    let lab = z[0] ^ (bit_mask(bit) & delta);
                    d.copy_from_slice(&lab.to_le_bytes());
                }
            };
            if crate::run_inline() {
                slices.into_iter().zip(specs).enumerate().for_each(fill);
            } else {
                slices
                    .into_par_iter()
                    .zip(specs.par_iter())
                    .enumerate()
                    .for_each(fill);
            }
            out.send(ch)?;
            ch.flush()?;
            first += n;
        }
        let mut res = Vec::with_capacity(count);
        let mut first = start;
        while first < end {
            let n = ONLINE_FRAME.min(end - first);
            let specs = &self.specs[first..first + n];
            let nbits: usize = specs.iter().map(|p| p.output_bits()).sum();
            let (bits, _) = BulkIn::recv(ch, msg::BITS, first as u64, n as u64, nbits.div_ceil(8))?;
            let mut pos = 0;
            for (i, p) in specs.iter().enumerate() {
                let colours = unpack_bits(bits.payload(), &mut pos, p.out_bits());
                res.push((colours ^ self.decode[first + i]) & mask(p.out_bits()));
            }
            first += n;
        }
        self.stats.online_bytes += ch.counters().since(c0).total();
        Ok(res)
    }

    /// Circuits still available online.
    pub fn remaining(&self) -> usize {
        self.specs.len() - self.next
    }

    /// Offline and online time and traffic so far.
    pub fn stats(&self) -> GcStats {
        self.stats
    }
}
