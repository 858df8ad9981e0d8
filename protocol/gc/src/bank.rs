//! Banking garbled circuits (ReLUs, maxima, ReLU6): preprocessing done long before the input
//! exists.
//!
//! * Client: every verified chunk (its tables frame and the client's active input labels) goes to
//!   a [`ChunkSink`] as it arrives, and comes back from a [`ChunkSource`] online, a few chunks at
//!   a time, so the client's memory does not grow with the circuit count. [`StoredChunk`] has a
//!   byte format of its own (`write_to` / `read_from`) with an XXH3-128 checksum over the whole
//!   record, so a damaged store is an error, never a wrong output. (The tables' BLAKE3 digest was
//!   checked when they arrived; the checksum guards against disk damage, not against the client
//!   itself, and runs at memory speed on the online path.)
//! * Server: what it must remember about one garbling fits in a few bytes ([`RelusSecrets`]: Δ and
//!   the PRF key of its input labels) once its decoding bits are re-keyed: the server sends the
//!   client `e_i = d_i ⊕ PRF_K'(i)` (`OFFSETS` frames, k bits per circuit), the client XORs `e_i`
//!   into the colour bits it returns online, and the server decodes with `PRF_K'(i)` alone. `e_i`
//!   is a one-time pad of d_i under a key the client never sees, so the client learns nothing new.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use pi_net::Channel;
use subtle::ConstantTimeEq;
use xxhash_rust::xxh3::Xxh3;
use zeroize::{Zeroize, Zeroizing};

use crate::block::{Block, Prf, Tccr};
use crate::msg::{self, BulkIn, BulkOut};
use crate::relu::mask;
use crate::session::{
    word_offsets, ClientChunk, ClientCircuits, ClientOffline, GcStats, Layout, ServerCircuits,
};
use crate::{CircuitSpec, GcError};

/// Circuits per `OFFSETS` frame (≤ 416 KiB at 52 bits per circuit).
const OFFSETS_FRAME: usize = 1 << 16;
/// Magic of a stored chunk record.
const CHUNK_MAGIC: [u8; 4] = *b"PICK";
/// Largest tables frame a stored record may announce (a chunk of 2^16 circuits of 64-bit ReLUs).
const MAX_STORED_FRAME: u64 = 1 << 30;
const DECODE_CONTEXT: &str = "pi-gc 2025 decoding mask key v1";

/// One received chunk of garbled circuits as the client keeps it until it is evaluated.
pub struct StoredChunk {
    pub(crate) index: u64,
    pub(crate) first: usize,
    pub(crate) count: usize,
    pub(crate) tables: BulkIn,
    pub(crate) labels: Zeroizing<Vec<Block>>,
}

impl StoredChunk {
    /// Index of the first circuit in this chunk.
    pub fn first(&self) -> usize {
        self.first
    }

    /// Circuits in this chunk.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Bytes [`StoredChunk::write_to`] writes.
    pub fn stored_len(&self) -> u64 {
        (4 + 8 * 4 + self.tables.frame().len() + 8 + self.labels.len() * 16 + 16) as u64
    }

    /// Writes the record: `"PICK" | index | first | count | frame len (u64 LE) | tables frame
    /// (with its digest) | label count (u64 LE) | labels (16 B LE each) | XXH3-128 of everything
    /// before it (16 B LE)`.
    pub fn write_to(&self, w: &mut dyn Write) -> io::Result<()> {
        let mut h = Xxh3::new();
        let mut put = |w: &mut dyn Write, b: &[u8]| -> io::Result<()> {
            h.update(b);
            w.write_all(b)
        };
        put(w, &CHUNK_MAGIC)?;
        for v in [
            self.index,
            self.first as u64,
            self.count as u64,
            self.tables.frame().len() as u64,
        ] {
            put(w, &v.to_le_bytes())?;
        }
        put(w, self.tables.frame())?;
        put(w, &(self.labels.len() as u64).to_le_bytes())?;
        let mut buf = Zeroizing::new(Vec::with_capacity(self.labels.len() * 16));
        for l in self.labels.iter() {
            buf.extend_from_slice(&l.to_le_bytes());
        }
        put(w, &buf)?;
        w.write_all(&h.digest128().to_le_bytes())
    }

    /// Reads and verifies one record (tables digest, labels digest, self-consistent lengths);
    /// `Ok(None)` at a clean end of stream. Lengths are checked against the parameters when the
    /// chunk is loaded for evaluation.
    pub fn read_from(r: &mut dyn Read) -> Result<Option<StoredChunk>, GcError> {
        let mut magic = [0u8; 4];
        let mut h = Xxh3::new();
        match read_exact_or_eof(r, &mut magic)? {
            false => return Ok(None),
            true if magic != CHUNK_MAGIC => {
                return Err(GcError::Storage(
                    "stored chunk: bad magic (not a chunk record)".into(),
                ))
            }
            true => {}
        }
        h.update(&magic);
        let index = read_u64(r, &mut h)?;
        let first = read_u64(r, &mut h)?;
        let count = read_u64(r, &mut h)?;
        let frame_len = read_u64(r, &mut h)?;
        if frame_len > MAX_STORED_FRAME || count > 1 << 16 {
            return Err(GcError::Storage(format!(
                "stored chunk {index}: implausible sizes ({count} circuits, {frame_len} table bytes)"
            )));
        }
        let frame = read_vec(r, frame_len as usize)?;
        h.update(&frame);
        let labels_len = read_u64(r, &mut h)?;
        if labels_len > (1 << 16) * 128 {
            return Err(GcError::Storage(format!(
                "stored chunk {index}: implausible label count {labels_len}"
            )));
        }
        let buf = Zeroizing::new(read_vec(r, labels_len as usize * 16)?);
        h.update(&buf);
        let mut digest = [0u8; 16];
        r.read_exact(&mut digest).map_err(truncated)?;
        if !bool::from(h.digest128().to_le_bytes().ct_eq(&digest)) {
            return Err(GcError::Integrity {
                what: "stored chunk",
                index,
            });
        }
        // Tag, index and count are still checked; the tables' digest was checked on arrival and
        // the checksum above covers them since.
        let tables = BulkIn::check_header(frame, msg::TABLES, index, count)?;
        let mut labels = Zeroizing::new(Vec::with_capacity(labels_len as usize));
        crate::block::blocks_from_bytes(&buf, &mut labels);
        Ok(Some(StoredChunk {
            index,
            first: first as usize,
            count: count as usize,
            tables,
            labels,
        }))
    }
}

fn truncated(e: io::Error) -> GcError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        GcError::Storage("stored chunk is truncated".into())
    } else {
        GcError::Storage(format!("reading a stored chunk: {e}"))
    }
}

/// Reads exactly `n` bytes into a fresh vector without zero-filling it first (the reader fills
/// the uninitialised capacity directly).
fn read_vec(r: &mut dyn Read, n: usize) -> Result<Vec<u8>, GcError> {
    let mut v = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut v).map_err(truncated)?;
    if v.len() != n {
        return Err(truncated(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(v)
}

fn read_u64(r: &mut dyn Read, h: &mut Xxh3) -> Result<u64, GcError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b).map_err(truncated)?;
    h.update(&b);
    Ok(u64::from_le_bytes(b))
}

/// Fills `buf`; `false` when the stream ended before its first byte.
fn read_exact_or_eof(r: &mut dyn Read, buf: &mut [u8]) -> Result<bool, GcError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(truncated(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(truncated(e)),
        }
    }
    Ok(true)
}

/// Where the client's chunks go while the offline phase receives them.
pub trait ChunkSink {
    /// Keeps one verified chunk (chunks arrive in order).
    fn put(&mut self, chunk: StoredChunk) -> Result<(), GcError>;
}

/// Where the client's chunks come from online, in the order they were put.
pub trait ChunkSource: Send {
    /// The next chunk, or `None` when there are no more.
    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, GcError>;
}

/// Chunks kept in memory (the one-shot session).
#[derive(Default)]
pub struct MemoryChunks {
    chunks: VecDeque<StoredChunk>,
}

impl ChunkSink for MemoryChunks {
    fn put(&mut self, chunk: StoredChunk) -> Result<(), GcError> {
        self.chunks.push_back(chunk);
        Ok(())
    }
}

impl ChunkSource for MemoryChunks {
    fn next_chunk(&mut self) -> Result<Option<StoredChunk>, GcError> {
        Ok(self.chunks.pop_front())
    }
}

impl ClientCircuits {
    /// Client material whose chunks come from `source` (e.g. a banked set on disk), as produced by
    /// [`crate::evaluate_offline_into`] with the same `params`.
    pub fn from_source(
        params: &[CircuitSpec],
        source: Box<dyn ChunkSource>,
        offline: &ClientOffline,
    ) -> ClientCircuits {
        ClientCircuits {
            specs: params.to_vec(),
            chunks: VecDeque::new(),
            source,
            offsets: Vec::new(),
            loaded: 0,
            next: 0,
            hash: Tccr::with_nonce(offline.hash_nonce),
            stats: offline.stats,
        }
    }

    /// Sets the decoding offsets received with [`recv_decode_offsets`] (one per circuit).
    pub fn set_decode_offsets(&mut self, offsets: Vec<u64>) -> Result<(), GcError> {
        if offsets.len() != self.specs.len() {
            return Err(GcError::Length {
                what: "decoding offsets",
                expected: self.specs.len(),
                got: offsets.len(),
            });
        }
        self.offsets = offsets;
        Ok(())
    }

    /// Loads chunks from the source until circuits `..end` are all held.
    pub(crate) fn load_until(&mut self, end: usize) -> Result<(), GcError> {
        loop {
            let held = self.loaded;
            if held >= end {
                return Ok(());
            }
            let c = self.source.next_chunk()?.ok_or_else(|| {
                GcError::Storage(format!(
                    "stored material ends at circuit {held}, {} circuits expected",
                    self.specs.len()
                ))
            })?;
            if c.first != held || c.count == 0 || c.first + c.count > self.specs.len() {
                return Err(GcError::Storage(format!(
                    "stored chunk {} covers circuits {}..{}, expected a chunk starting at {held}",
                    c.index,
                    c.first,
                    c.first + c.count
                )));
            }
            let layout = Layout::new(&self.specs[c.first..c.first + c.count]);
            if c.tables.payload().len() != layout.tables() {
                return Err(GcError::Length {
                    what: "stored garbled tables",
                    expected: layout.tables(),
                    got: c.tables.payload().len(),
                });
            }
            let want = layout.client_labels();
            if c.labels.len() != want {
                return Err(GcError::Length {
                    what: "stored client labels",
                    expected: want,
                    got: c.labels.len(),
                });
            }
            self.loaded = c.first + c.count;
            self.chunks.push_back(ClientChunk {
                first: c.first,
                tables: c.tables,
                layout,
                labels: c.labels,
            });
        }
    }

    /// Drops loaded chunks whose circuits all lie below `end`.
    pub(crate) fn release_before(&mut self, end: usize) {
        while let Some(c) = self.chunks.front() {
            if c.first + c.layout.circuits() <= end {
                self.chunks.pop_front();
            } else {
                break;
            }
        }
    }
}

/// What the server must keep about one garbling to run it online, once its decoding bits are
/// re-keyed ([`ServerRelus::rekey_decoding`]): Δ and the PRF key of its input labels.
pub struct RelusSecrets {
    /// The free-XOR offset Δ (lsb 1).
    pub delta: Block,
    /// Key of the PRF that derives the zero labels of the server's inputs.
    pub prf_key: [u8; 16],
}

impl RelusSecrets {
    /// Serialised length.
    pub const LEN: usize = 32;

    /// `Δ (16 B LE) | PRF key (16 B)`.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        out[..16].copy_from_slice(&self.delta.to_le_bytes());
        out[16..].copy_from_slice(&self.prf_key);
        out
    }

    /// Parses [`RelusSecrets::to_bytes`]; refuses a Δ whose colour bit is not set.
    pub fn from_bytes(b: &[u8; 32]) -> Result<Self, GcError> {
        let mut d = [0u8; 16];
        d.copy_from_slice(&b[..16]);
        let delta = u128::from_le_bytes(d);
        d.zeroize();
        if delta & 1 != 1 {
            return Err(GcError::InvalidParams(
                "stored Δ has its colour bit clear".into(),
            ));
        }
        let mut prf_key = [0u8; 16];
        prf_key.copy_from_slice(&b[16..]);
        Ok(RelusSecrets { delta, prf_key })
    }
}

impl Drop for RelusSecrets {
    fn drop(&mut self) {
        self.delta.zeroize();
        self.prf_key.zeroize();
    }
}

/// The decoding mask of every circuit: the low k bits of AES_K(i) under a key derived from `key`.
fn decoding_masks(params: &[CircuitSpec], key: &[u8; 32]) -> Vec<u64> {
    let mut k = Zeroizing::new([0u8; 16]);
    k.copy_from_slice(&blake3::derive_key(DECODE_CONTEXT, key)[..16]);
    let prf = Prf::new(u128::from_le_bytes(*k));
    let mut xs: Vec<Block> = (0..params.len() as u128).collect();
    prf.eval_in_place(&mut xs);
    xs.iter()
        .zip(params)
        .map(|(x, p)| *x as u64 & mask(p.out_bits()))
        .collect()
}

impl ServerCircuits {
    /// Δ and the label PRF key: with the parameter list and the decoding key, all the server
    /// needs to run these circuits online later ([`ServerRelus::restore`]).
    pub fn secrets(&self) -> RelusSecrets {
        RelusSecrets {
            delta: *self.delta,
            prf_key: *self.prf_key,
        }
    }

    /// Replaces every circuit's decoding bits d_i by a mask derived from `key` and sends the
    /// client the offsets d_i ⊕ mask_i (`OFFSETS` frames), which it applies online. Call after the
    /// offline phase, before any online call.
    pub fn rekey_decoding<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        key: &[u8; 32],
    ) -> Result<(), GcError> {
        if self.next != 0 {
            return Err(GcError::Desync(
                "decoding re-keyed after circuits were used online".into(),
            ));
        }
        let masks = decoding_masks(&self.specs, key);
        let c0 = ch.counters();
        for (fi, part) in self.specs.chunks(OFFSETS_FRAME).enumerate() {
            let first = fi * OFFSETS_FRAME;
            let bits: usize = part.iter().map(|p| p.out_bits() as usize).sum();
            let mut out = BulkOut::new(
                msg::OFFSETS,
                first as u64,
                part.len() as u64,
                bits.div_ceil(8),
            );
            let vals: Vec<(u64, u32)> = part
                .iter()
                .enumerate()
                .map(|(i, p)| (self.decode[first + i] ^ masks[first + i], p.out_bits()))
                .collect();
            crate::session::pack_bits_into(&vals, out.payload());
            out.send(ch)?;
        }
        ch.flush()?;
        self.stats.setup_bytes += ch.counters().since(c0).total();
        self.decode = Zeroizing::new(masks);
        Ok(())
    }

    /// The server side of a banked garbling, rebuilt from its secrets and decoding key: ready to
    /// run all its circuits online, in order, once.
    pub fn restore(
        params: &[CircuitSpec],
        secrets: &RelusSecrets,
        decoding_key: &[u8; 32],
    ) -> ServerCircuits {
        ServerCircuits {
            specs: params.to_vec(),
            word_off: word_offsets(params),
            decode: Zeroizing::new(decoding_masks(params, decoding_key)),
            delta: Zeroizing::new(secrets.delta),
            prf_key: Zeroizing::new(secrets.prf_key),
            prf: Prf::new(u128::from_le_bytes(secrets.prf_key)),
            next: 0,
            stats: GcStats::default(),
        }
    }
}

/// The `OFFSETS` frames [`ServerRelus::rekey_decoding`] sends (server → client).
pub fn offsets_traffic(params: &[CircuitSpec]) -> crate::Flow {
    let mut f = crate::Flow::default();
    for part in params.chunks(OFFSETS_FRAME) {
        let bits: usize = part.iter().map(|p| p.out_bits() as usize).sum();
        let len = msg::HEADER + bits.div_ceil(8) + msg::DIGEST;
        f.bytes += len as u64;
        f.frames += 1;
        f.max_frame = f.max_frame.max(len);
    }
    f
}

/// Client: receives the decoding offsets the server sent with [`ServerRelus::rekey_decoding`].
pub fn recv_decode_offsets<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[CircuitSpec],
) -> Result<Vec<u64>, GcError> {
    let mut out = Vec::with_capacity(params.len());
    for (fi, part) in params.chunks(OFFSETS_FRAME).enumerate() {
        let first = fi * OFFSETS_FRAME;
        let bits: usize = part.iter().map(|p| p.out_bits() as usize).sum();
        let (frame, _) = BulkIn::recv(
            ch,
            msg::OFFSETS,
            first as u64,
            part.len() as u64,
            bits.div_ceil(8),
        )?;
        let mut pos = 0;
        for p in part {
            out.push(crate::session::unpack_bits(
                frame.payload(),
                &mut pos,
                p.out_bits(),
            ));
        }
    }
    Ok(out)
}
