//! The OT-based ReLU: the same function as the garbled ReLU (`pi_gc::relu_reference`), bit for
//! bit, at a few dozen bytes per ReLU (docs/protocol.md, "OT-based ReLU").
//!
//! The server holds a (its share of the ReLU input), the client b and its next-layer mask r,
//! given as n = −r. The server learns `(max(0, sext_w(a + b) ≫ F) + n) mod 2^k` and nothing
//! else; the client learns nothing. Offline (before any input exists): Ferret COTs become bit
//! triples and random OTs, a reverse SoftSpoken gives one OT per ReLU in the other direction,
//! and the corrections of two precomputed bit products are sent. Online: a ripple-carry
//! comparison on the low w − 1 bits (c_F and the sign), the arithmetic mux in Z_2^m, the lift
//! to Z_2^k, and the client's last message fixes its share to r.

mod bank;
mod bits;
mod carry;
mod cost;
mod material;
mod mux;
mod offline;
mod online;
mod shape;
mod traffic;

use std::io::{Read, Write};
use std::time::Instant;

use pi_gc::ReluParams;
use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

pub use bank::rekey_traffic;
pub use cost::{cost, OtReluCost};
pub use traffic::{traffic, OtTraffic};

use crate::ferret::{FerretPlan, FerretReceiver, FerretSender};
use crate::msg::{self, In, Out};
use crate::OtError;
use material::{ClientRun, Run, ServerRun};
use shape::Shape;

const VERSION: u8 = 1;
pub(crate) const HELLO_LEN: usize = 1 + 8 + 32;

/// Time and traffic of one party (bytes counted at this party's channel, both directions).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct OtReluStats {
    /// Hello frame.
    pub setup_bytes: u64,
    /// Ferret: base OT, SoftSpoken bootstrap and tree corrections.
    pub ferret_bytes: u64,
    /// Reverse-direction SoftSpoken (base OT, setup, correction).
    pub reverse_bytes: u64,
    /// Corrections of the precomputed bit products.
    pub product_bytes: u64,
    /// Banked sets: the differences that re-key the server's material (`REKEY` frames).
    pub rekey_bytes: u64,
    /// Online round messages.
    pub online_bytes: u64,
    /// Ferret compute (this party), seconds.
    pub ferret_seconds: f64,
    /// Hashing COTs into triples and random OTs, seconds.
    pub material_seconds: f64,
    /// Reverse SoftSpoken, seconds.
    pub reverse_seconds: f64,
    /// Online phase wall time of this party, seconds.
    pub online_seconds: f64,
    /// Forward COTs consumed.
    pub forward_cots: u64,
    /// Reverse COTs consumed.
    pub reverse_cots: u64,
}

impl OtReluStats {
    /// All offline bytes.
    pub fn offline_bytes(&self) -> u64 {
        self.setup_bytes
            + self.ferret_bytes
            + self.reverse_bytes
            + self.product_bytes
            + self.rekey_bytes
    }
}

/// Groups consecutive identical parameters into runs.
pub(crate) fn runs(params: &[ReluParams]) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let shape = Shape::new(p);
        match out.last_mut() {
            Some(r) if r.shape == shape => r.len += 1,
            _ => out.push(Run {
                start: i,
                len: 1,
                shape,
            }),
        }
    }
    out
}

fn validate(params: &[ReluParams]) -> Result<(), OtError> {
    let mut last = None;
    for p in params {
        if last != Some(*p) {
            p.validate()?;
            last = Some(*p);
        }
    }
    Ok(())
}

fn digest(params: &[ReluParams]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("pi-ot 2025 OT ReLU parameter list v1");
    for p in params {
        h.update(&p.in_bits.to_le_bytes());
        h.update(&p.shift.to_le_bytes());
        h.update(&p.out_bits.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// Forward COTs all ReLUs consume.
pub(crate) fn forward_cots(runs: &[Run]) -> usize {
    runs.iter().map(|r| r.len * r.shape.forward_cots()).sum()
}

/// Server-side result of the offline phase.
pub struct OtReluServer {
    runs: Vec<Run>,
    mats: Vec<Option<ServerRun>>,
    total: usize,
    next: usize,
    index: u64,
    stats: OtReluStats,
}

/// Client-side result of the offline phase.
pub struct OtReluClient {
    runs: Vec<Run>,
    mats: Vec<Option<ClientRun>>,
    /// n = −r of every ReLU, low k bits.
    n: Zeroizing<Vec<u64>>,
    total: usize,
    next: usize,
    index: u64,
    stats: OtReluStats,
}

/// A Ferret session for `fwd` forward COTs (none when no ReLU needs one), its setup time and
/// bytes counted in `stats`.
fn ferret_setup<R: Read, W: Write, F>(
    ch: &mut Channel<R, W>,
    fwd: usize,
    stats: &mut OtReluStats,
    setup: impl FnOnce(&mut Channel<R, W>, FerretPlan) -> Result<F, OtError>,
) -> Result<Option<F>, OtError> {
    if fwd == 0 {
        return Ok(None);
    }
    let c0 = ch.counters();
    let t = Instant::now();
    let f = setup(ch, FerretPlan::for_count(fwd))?;
    stats.ferret_seconds += t.elapsed().as_secs_f64();
    stats.ferret_bytes += ch.counters().since(c0).total();
    Ok(Some(f))
}

/// Offline, server: prepares one OT ReLU per entry of `params` (the OT sender of Ferret).
pub fn server_offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[ReluParams],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<OtReluServer, OtError> {
    validate(params)?;
    let mut stats = OtReluStats::default();
    let c0 = ch.counters();
    let mut hello = Out::new(msg::HELLO, 0, params.len() as u64, HELLO_LEN);
    hello.payload()[0] = VERSION;
    hello.payload()[1..9].copy_from_slice(&(params.len() as u64).to_le_bytes());
    hello.payload()[9..].copy_from_slice(&digest(params));
    hello.send(ch)?;
    ch.flush()?;
    stats.setup_bytes = ch.counters().since(c0).total();
    let runs = runs(params);
    let fwd = forward_cots(&runs);
    let mut ferret = ferret_setup(ch, fwd, &mut stats, |ch, plan| {
        FerretSender::setup(ch, plan, rng)
    })?;
    let mats = offline::server(ch, &runs, ferret.as_mut(), rng, &mut stats)?;
    stats.forward_cots = fwd as u64;
    stats.reverse_cots = runs
        .iter()
        .map(|r| (r.len * r.shape.reverse_cots()) as u64)
        .sum();
    Ok(OtReluServer {
        runs,
        mats,
        total: params.len(),
        next: 0,
        index: 0,
        stats,
    })
}

/// Offline, client: `inputs[i] = (b_i mod 2^w, n_i mod 2^k)` with n = −r, r its next-layer mask.
pub fn client_offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    params: &[ReluParams],
    inputs: &[(u64, u64)],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<OtReluClient, OtError> {
    if inputs.len() != params.len() {
        return Err(OtError::InvalidParams(format!(
            "{} client inputs for {} ReLUs",
            inputs.len(),
            params.len()
        )));
    }
    validate(params)?;
    let mut stats = OtReluStats::default();
    let c0 = ch.counters();
    let hello = In::recv(ch, msg::HELLO, 0, params.len() as u64, HELLO_LEN)?.0;
    let h = hello.payload();
    if h[0] != VERSION {
        return Err(OtError::Desync(format!(
            "OT ReLU protocol version {} (this client speaks {VERSION})",
            h[0]
        )));
    }
    if h[9..] != digest(params) {
        return Err(OtError::Desync(
            "the server's ReLU parameter list differs from this client's".into(),
        ));
    }
    stats.setup_bytes = ch.counters().since(c0).total();
    let runs = runs(params);
    let fwd = forward_cots(&runs);
    let mut ferret = ferret_setup(ch, fwd, &mut stats, |ch, plan| {
        FerretReceiver::setup(ch, plan, rng)
    })?;
    let mats = offline::client(ch, &runs, inputs, ferret.as_mut(), rng, &mut stats)?;
    stats.forward_cots = fwd as u64;
    stats.reverse_cots = runs
        .iter()
        .map(|r| (r.len * r.shape.reverse_cots()) as u64)
        .sum();
    let n = Zeroizing::new(
        params
            .iter()
            .zip(inputs)
            .map(|(p, x)| x.1 & bits::mask(p.out_bits))
            .collect(),
    );
    Ok(OtReluClient {
        runs,
        mats,
        n,
        total: params.len(),
        next: 0,
        index: 0,
        stats,
    })
}

/// Splits ReLUs `start..start + count` into (run index, offset in run, length) segments.
fn segments(runs: &[Run], start: usize, count: usize) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = start;
    let end = start + count;
    let mut ri = runs.partition_point(|r| r.start + r.len <= pos);
    while pos < end {
        let Some(r) = runs.get(ri) else { break };
        let lo = pos - r.start;
        let len = (r.len - lo).min(end - pos);
        out.push((ri, lo, len));
        pos += len;
        ri += 1;
    }
    out
}

impl OtReluServer {
    /// Online: the next `a.len()` ReLUs in order; returns ReLU − r per element (mod 2^k).
    ///
    /// Only the low w bits of each `a` are read. ReLUs are consumed before any I/O, so a failed
    /// call never lets the same material run twice.
    pub fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        a: &[u64],
    ) -> Result<Vec<u64>, OtError> {
        if a.len() > self.remaining() {
            return Err(OtError::Exhausted {
                requested: a.len(),
                remaining: self.remaining(),
            });
        }
        let c0 = ch.counters();
        let t = Instant::now();
        let start = self.next;
        self.next += a.len();
        let mut out = Vec::with_capacity(a.len());
        let mut at = 0;
        for (ri, lo, len) in segments(&self.runs, start, a.len()) {
            let run = &self.runs[ri];
            let mat = self.mats.get(ri).and_then(|m| m.as_ref());
            out.extend(online::server(
                ch,
                &run.shape,
                mat,
                lo,
                &a[at..at + len],
                &mut self.index,
            )?);
            at += len;
        }
        self.stats.online_seconds += t.elapsed().as_secs_f64();
        self.stats.online_bytes += ch.counters().since(c0).total();
        Ok(out)
    }

    /// ReLUs still available online.
    pub fn remaining(&self) -> usize {
        self.total - self.next
    }

    /// Time and traffic so far.
    pub fn stats(&self) -> OtReluStats {
        self.stats
    }
}

impl OtReluClient {
    /// Online: runs the next `count` ReLUs with the server.
    pub fn online<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        count: usize,
    ) -> Result<(), OtError> {
        if count > self.remaining() {
            return Err(OtError::Exhausted {
                requested: count,
                remaining: self.remaining(),
            });
        }
        let c0 = ch.counters();
        let t = Instant::now();
        let start = self.next;
        self.next += count;
        for (ri, lo, len) in segments(&self.runs, start, count) {
            let run = &self.runs[ri];
            let mat = self.mats.get(ri).and_then(|m| m.as_ref());
            let g = run.start + lo;
            online::client(
                ch,
                &run.shape,
                mat,
                &self.n[g..g + len],
                lo,
                &mut self.index,
            )?;
        }
        self.stats.online_seconds += t.elapsed().as_secs_f64();
        self.stats.online_bytes += ch.counters().since(c0).total();
        Ok(())
    }

    /// ReLUs still available online.
    pub fn remaining(&self) -> usize {
        self.total - self.next
    }

    /// Time and traffic so far.
    pub fn stats(&self) -> OtReluStats {
        self.stats
    }
}
