//! Offline and online phases of the garbled-circuit protocol over a `pi_net::Channel`, for any
//! list of [`CircuitSpec`]s (ReLUs, maxima, ReLU6, in any mix).
//!
//! Offline (one call per session on each side, in lock step, chunk by chunk):
//! 1. server → client `HELLO`: version, SoftSpoken k, chunk size, circuit count, BLAKE3 digest
//!    of the spec list (the client refuses a different list: `Desync`), and the random nonce of
//!    this garbling's hash tweaks ([`crate::block::Tccr`]);
//! 2. base OT + GGM setup (`ot::softspoken`), Δ is the server's correlation;
//! 3. per chunk of `chunk` circuits: client → server `OT_CORR` (its choice bits are its input
//!    words), server → client `TABLES` (garbled with the OT outputs as client input zero labels).
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
//! (≈ 20 bytes per ReLU). The client stores, per circuit, the tables (32 B per AND) and its
//! active input labels (16 B per input bit): 3,040 + 1,264 = 4,304 bytes for a default ReLU.
//!
//! Online (any number of calls, in lock step): server → client `LABELS` (the active labels of
//! its shares), client evaluates and returns `BITS` (one colour bit per output wire); the server
//! XORs them with its decoding bits. Circuits are consumed in order and never reused.

mod client;
mod server;

use crate::block::{Block, Prf};
use crate::garble::MAX_LANES;
use crate::relu::mask;
use crate::{CircuitSpec, GcError};

pub(crate) use client::ClientChunk;
pub use client::{evaluate_offline, evaluate_offline_into, ClientCircuits, ClientOffline};
pub(crate) use server::word_offsets;
pub use server::{garble_offline, garble_offline_with, ServerCircuits};

/// The former name of [`ServerCircuits`] (a session of ReLU circuits only).
pub type ServerRelus = ServerCircuits;
/// The former name of [`ClientCircuits`].
pub type ClientRelus = ClientCircuits;

const VERSION: u8 = 3;
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

/// A run of consecutive circuits with identical specs, at most `MAX_LANES` long.
struct Group {
    start: usize,
    len: usize,
    spec: CircuitSpec,
}

fn groups(specs: &[CircuitSpec]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::with_capacity(specs.len() / MAX_LANES + 1);
    for (i, s) in specs.iter().enumerate() {
        match out.last_mut() {
            Some(g) if g.spec == *s && g.len < MAX_LANES => g.len += 1,
            _ => out.push(Group {
                start: i,
                len: 1,
                spec: *s,
            }),
        }
    }
    out
}

/// Per-circuit sizes, with AND counts computed once per distinct spec run.
pub(crate) struct Layout {
    /// Prefix sums of table bytes (len + 1 entries).
    table_off: Vec<usize>,
    /// Prefix sums of client input bits (len + 1 entries).
    client_off: Vec<usize>,
}

impl Layout {
    pub(crate) fn new(specs: &[CircuitSpec]) -> Self {
        let mut table_off = Vec::with_capacity(specs.len() + 1);
        let mut client_off = Vec::with_capacity(specs.len() + 1);
        table_off.push(0);
        client_off.push(0);
        let mut cache: Option<(CircuitSpec, usize)> = None;
        for s in specs {
            let t = match cache {
                Some((q, t)) if q == *s => t,
                _ => {
                    let t = s.table_bytes();
                    cache = Some((*s, t));
                    t
                }
            };
            table_off.push(table_off.last().copied().unwrap_or(0) + t);
            client_off.push(client_off.last().copied().unwrap_or(0) + s.client_input_bits());
        }
        Layout {
            table_off,
            client_off,
        }
    }
    fn empty() -> Self {
        Layout {
            table_off: vec![0],
            client_off: vec![0],
        }
    }
    pub(crate) fn circuits(&self) -> usize {
        self.table_off.len() - 1
    }
    pub(crate) fn tables(&self) -> usize {
        self.table_off.last().copied().unwrap_or(0)
    }
    pub(crate) fn client_labels(&self) -> usize {
        self.client_off.last().copied().unwrap_or(0)
    }
    fn ot_words(&self) -> usize {
        self.client_off.last().copied().unwrap_or(0).div_ceil(128)
    }
}

fn specs_digest(specs: &[CircuitSpec]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("pi-gc 2025 circuit spec list v2");
    for s in specs {
        h.update(&s.digest_bytes());
    }
    *h.finalize().as_bytes()
}

fn validate_all(specs: &[CircuitSpec]) -> Result<(), GcError> {
    let mut last = None;
    for s in specs {
        if last != Some(*s) {
            s.validate()?;
            last = Some(*s);
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
    v & mask(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaxParams, ReluParams};

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
    fn groups_split_on_spec_change_and_lane_width() {
        let a = CircuitSpec::Relu(ReluParams::DEFAULT);
        let b = CircuitSpec::Relu(ReluParams {
            in_bits: 20,
            shift: 4,
            out_bits: 52,
        });
        let c = CircuitSpec::Max(MaxParams::new(4, 27, 8, 52, true, None).unwrap());
        let ps: Vec<CircuitSpec> = (0..22)
            .map(|i| match i {
                5 | 6 => b,
                20 | 21 => c,
                _ => a,
            })
            .collect();
        let gs: Vec<(usize, usize)> = groups(&ps).iter().map(|g| (g.start, g.len)).collect();
        assert_eq!(gs, vec![(0, 5), (5, 2), (7, 8), (15, 5), (20, 2)]);
    }
}
