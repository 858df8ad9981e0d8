//! Ferret: silent correlated OT from primal LPN with regular noise (Yang, Weng, Lan, Zhang, Wang,
//! CCS 2020), semi-honest, with Half-Tree's correlated GGM trees for the multi-point COT.
//!
//! Correlation: the OT sender (server) holds Δ (lsb 1) and values q with lsb 0; the receiver
//! (client) holds t = q ⊕ c·Δ, so its choice bit c is lsb(t). Choices are pseudorandom (LPN
//! samples), which is what random-OT uses need.
//!
//! A round with parameters (t, k, depth) turns `base()` = k + t·depth COTs into t·2^depth:
//! * MPCOT: tree i covers outputs [i·2^depth, (i+1)·2^depth) and has one noisy position αᵢ,
//!   whose path bits are the complements of the receiver's choice bits in the tree's `depth`
//!   base COTs (so the noise needs no message); the sender sends one block per level
//!   (`cggm`), 16·depth bytes per tree.
//! * LPN: output j is XORed with 10 entries of the k-entry base vector (`lpn`).
//!
//! The first `base()` outputs of every round are kept as the next round's base COTs
//! ("bootstrapping from a stored batch"); the first round's base comes from SoftSpoken (k = 8,
//! 2 bytes per COT, in `pi-gc`). Outputs are produced tree batch by tree batch, so memory stays
//! at one batch plus the stored base, whatever the number of COTs taken.

mod boot;
mod cggm;
mod lpn;
mod params;

use std::io::{Read, Write};

use pi_gc::block::{blocks_from_bytes, blocks_to_bytes};
use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

pub use params::{FerretParams, FerretPlan, LPN_D};

use crate::aes::{Block, Ccr, Prg};
use crate::msg::{self, In, Out};
use crate::OtError;
use lpn::Lpn;

/// Outputs per correction frame (a batch of whole trees).
const BATCH_OUTPUTS: usize = 1 << 16;

fn trees_per_batch(p: &FerretParams) -> usize {
    (BATCH_OUTPUTS >> p.depth).max(1)
}

/// The public seed of round `index`'s LPN code.
fn lpn_seed(p: &FerretParams, index: u64) -> Block {
    let mut h = blake3::Hasher::new_derive_key("pi-ot 2025 Ferret LPN code v1");
    h.update(&(p.t as u64).to_le_bytes());
    h.update(&p.log_k.to_le_bytes());
    h.update(&p.depth.to_le_bytes());
    h.update(&index.to_le_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(b)
}

/// State of the round in progress (both roles).
struct Round {
    params: FerretParams,
    index: u64,
    lpn: Lpn,
    /// The k LPN-secret base COTs, then the t·depth tree base COTs.
    base: Zeroizing<Vec<Block>>,
    next_tree: usize,
    /// Outputs kept for the next round's base.
    reserve: Zeroizing<Vec<Block>>,
    reserve_want: usize,
}

impl Round {
    fn new(
        params: FerretParams,
        index: u64,
        base: Zeroizing<Vec<Block>>,
        next: FerretParams,
    ) -> Self {
        Round {
            params,
            index,
            lpn: Lpn::new(lpn_seed(&params, index), params.log_k),
            base,
            next_tree: 0,
            reserve: Zeroizing::new(Vec::with_capacity(next.base())),
            reserve_want: next.base(),
        }
    }

    fn k(&self) -> usize {
        self.params.k()
    }

    /// Base COTs of tree `i`'s levels.
    fn tree_base(&self, i: usize) -> &[Block] {
        let d = self.params.depth as usize;
        &self.base[self.k() + i * d..self.k() + (i + 1) * d]
    }

    /// Routes a finished tree's outputs: first to the reserve, the rest to `out`.
    fn emit(&mut self, leaves: &[Block], out: &mut Vec<Block>) {
        let room = self.reserve_want - self.reserve.len();
        let r = room.min(leaves.len());
        self.reserve.extend_from_slice(&leaves[..r]);
        out.extend_from_slice(&leaves[r..]);
    }
}

/// Work and traffic counters of one Ferret party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FerretStats {
    /// Rounds run (the bootstrap round included).
    pub rounds: u64,
    /// COTs handed to the user.
    pub delivered: u64,
}

/// What both parties keep between batches: the round in progress, the outputs not yet handed
/// out, and counters.
struct Stream {
    plan: FerretPlan,
    round: Round,
    buf: Zeroizing<Vec<Block>>,
    /// Outputs of `buf` before `pos` are handed out.
    pos: usize,
    batch: u64,
    ccr: Ccr,
    leaves: Zeroizing<Vec<Block>>,
    stats: FerretStats,
}

impl Stream {
    /// The first round (b10) on the bootstrap's base COTs.
    fn new(plan: FerretPlan, first: FerretParams, base: Zeroizing<Vec<Block>>) -> Self {
        Stream {
            plan,
            round: Round::new(first, 0, base, plan.main),
            buf: Zeroizing::new(Vec::new()),
            pos: 0,
            batch: 0,
            ccr: Ccr::new(),
            leaves: Zeroizing::new(vec![0; 1 << first.depth.max(plan.main.depth)]),
            stats: FerretStats::default(),
        }
    }

    /// The next `n` outputs, running `batch` whenever the buffer is used up.
    fn take(
        &mut self,
        n: usize,
        mut batch: impl FnMut(&mut Self) -> Result<(), OtError>,
    ) -> Result<Zeroizing<Vec<Block>>, OtError> {
        let mut out = Zeroizing::new(Vec::with_capacity(n));
        loop {
            let avail = &self.buf[self.pos..];
            let m = avail.len().min(n - out.len());
            out.extend_from_slice(&avail[..m]);
            self.pos += m;
            if out.len() == n {
                break;
            }
            // The buffer is used up: wipe it and make the next batch.
            self.buf.zeroize();
            self.buf.clear();
            self.pos = 0;
            batch(self)?;
        }
        self.stats.delivered += n as u64;
        Ok(out)
    }

    /// Trees in the next batch.
    fn batch_trees(&self) -> usize {
        let p = &self.round.params;
        trees_per_batch(p).min(p.t - self.round.next_tree)
    }

    /// Adds the LPN term to `tree`'s expanded leaves (in `self.leaves`) and routes them.
    fn finish_tree(&mut self, tree: usize) {
        let p = self.round.params;
        let nl = p.leaves();
        let leaves = &mut self.leaves[..nl];
        self.round
            .lpn
            .apply(&self.round.base[..p.k()], (tree * nl) as u64, leaves);
        let buf = &mut *self.buf;
        self.round.emit(&self.leaves[..nl], buf);
    }

    /// Counts a finished batch of `trees` trees; a finished round hands its reserve to the next
    /// one as its base.
    fn end_batch(&mut self, trees: usize) -> Result<(), OtError> {
        self.batch += 1;
        self.round.next_tree += trees;
        if self.round.next_tree < self.round.params.t {
            return Ok(());
        }
        let base = std::mem::take(&mut self.round.reserve);
        if base.len() != self.plan.main.base() {
            return Err(OtError::Desync(
                "Ferret round ended without a full base".into(),
            ));
        }
        self.round = Round::new(self.plan.main, self.round.index + 1, base, self.plan.main);
        self.stats.rounds += 1;
        Ok(())
    }
}

/// Either party's COTs, taken in the same order on both sides.
pub(crate) trait CotStream {
    /// The next `n` COTs of this party.
    fn take_cots<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        n: usize,
    ) -> Result<Zeroizing<Vec<Block>>, OtError>;
}

impl CotStream for FerretSender {
    fn take_cots<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        n: usize,
    ) -> Result<Zeroizing<Vec<Block>>, OtError> {
        self.take(ch, n)
    }
}

impl CotStream for FerretReceiver {
    fn take_cots<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        n: usize,
    ) -> Result<Zeroizing<Vec<Block>>, OtError> {
        self.take(ch, n)
    }
}

/// The OT sender (holds Δ).
pub struct FerretSender {
    delta: Zeroizing<Block>,
    seeds: Prg,
    stream: Stream,
}

/// The OT receiver (choice bits are the lsbs of its values).
pub struct FerretReceiver {
    stream: Stream,
}

impl FerretSender {
    /// Bootstraps (base OT, SoftSpoken for b10's base) and prepares the first round.
    pub fn setup<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        plan: FerretPlan,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<Self, OtError> {
        plan.main.validate()?;
        let first = FerretParams::B10;
        let (delta, base) = boot::send(ch, first.base(), rng)?;
        let mut key = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(key.as_mut());
        Ok(FerretSender {
            delta: Zeroizing::new(delta),
            seeds: Prg::new(u128::from_le_bytes(*key)),
            stream: Stream::new(plan, first, base),
        })
    }

    /// The correlation Δ (lsb 1).
    pub fn delta(&self) -> Block {
        *self.delta
    }

    /// Counters so far.
    pub fn stats(&self) -> FerretStats {
        self.stream.stats
    }

    /// The next `n` COTs (values q, lsb 0; the receiver holds q ⊕ c·Δ).
    pub fn take<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        n: usize,
    ) -> Result<Zeroizing<Vec<Block>>, OtError> {
        let (delta, seeds) = (*self.delta, &mut self.seeds);
        self.stream.take(n, |s| Self::batch(s, delta, seeds, ch))
    }

    fn batch<R: Read, W: Write>(
        s: &mut Stream,
        delta: Block,
        seeds: &mut Prg,
        ch: &mut Channel<R, W>,
    ) -> Result<(), OtError> {
        let p = s.round.params;
        let d = p.depth as usize;
        let trees = s.batch_trees();
        let mut frame = Out::new(msg::TREES, s.batch, trees as u64, trees * d * 16);
        let mut k0 = [0 as Block; 32];
        let mut corr = [0 as Block; 32];
        for (ti, dst) in frame.payload().chunks_exact_mut(d * 16).enumerate() {
            let tree = s.round.next_tree + ti;
            let mut seed = [0 as Block];
            seeds.fill(s.round.index, tree as u64, &mut seed);
            let leaves = &mut s.leaves[..p.leaves()];
            cggm::build(&s.ccr, d, delta, seed[0], leaves, &mut k0[..d]);
            for (c, (q, k)) in corr
                .iter_mut()
                .zip(s.round.tree_base(tree).iter().zip(&k0[..d]))
            {
                *c = q ^ k;
            }
            blocks_to_bytes(dst, &corr[..d]);
            s.finish_tree(tree);
        }
        k0.iter_mut().chain(corr.iter_mut()).for_each(|x| *x = 0);
        frame.send(ch)?;
        ch.flush()?;
        s.end_batch(trees)
    }
}

impl FerretReceiver {
    /// Bootstraps (base OT, SoftSpoken for b10's base) and prepares the first round.
    pub fn setup<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        plan: FerretPlan,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<Self, OtError> {
        plan.main.validate()?;
        let first = FerretParams::B10;
        let base = boot::receive(ch, first.base(), rng)?;
        Ok(FerretReceiver {
            stream: Stream::new(plan, first, base),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> FerretStats {
        self.stream.stats
    }

    /// The next `n` COTs (values t = q ⊕ c·Δ; the choice bit c is lsb(t)).
    pub fn take<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        n: usize,
    ) -> Result<Zeroizing<Vec<Block>>, OtError> {
        self.stream.take(n, |s| Self::batch(s, ch))
    }

    fn batch<R: Read, W: Write>(s: &mut Stream, ch: &mut Channel<R, W>) -> Result<(), OtError> {
        let p = s.round.params;
        let d = p.depth as usize;
        let trees = s.batch_trees();
        let frame = In::recv(ch, msg::TREES, s.batch, trees as u64, trees * d * 16)?.0;
        let mut corr = Vec::with_capacity(trees * d);
        blocks_from_bytes(frame.payload(), &mut corr);
        let mut k_recv = [0 as Block; 32];
        for (ti, corr) in corr.chunks_exact(d).enumerate() {
            let tree = s.round.next_tree + ti;
            let mut alpha = 0usize;
            for (l, (&t, &c)) in s.round.tree_base(tree).iter().zip(corr).enumerate() {
                // Choice b = lsb(t) selects K^{b}; the path bit is its complement.
                alpha = (alpha << 1) | (1 - (t & 1) as usize);
                k_recv[l] = t ^ c;
            }
            cggm::eval(&s.ccr, d, alpha, &k_recv[..d], &mut s.leaves[..p.leaves()]);
            s.finish_tree(tree);
        }
        k_recv.iter_mut().for_each(|x| *x = 0);
        s.end_batch(trees)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Runs both parties, takes `sizes` in turn, and checks the COT correlation on every output.
    fn run(plan: FerretPlan, sizes: &[usize]) -> (Block, Vec<Block>, Vec<Block>) {
        let (mut s, mut r) = pi_net::loopback_pair().unwrap();
        let sz = sizes.to_vec();
        let t = std::thread::spawn(move || {
            let mut snd =
                FerretSender::setup(&mut s, plan, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
            let mut all = Vec::new();
            for n in sz {
                all.extend_from_slice(&snd.take(&mut s, n).unwrap());
            }
            (snd.delta(), all)
        });
        let mut rcv =
            FerretReceiver::setup(&mut r, plan, &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
        let mut mine = Vec::new();
        for &n in sizes {
            mine.extend_from_slice(&rcv.take(&mut r, n).unwrap());
        }
        let (delta, theirs) = t.join().unwrap();
        (delta, theirs, mine)
    }

    #[test]
    fn outputs_satisfy_the_cot_correlation_across_rounds() {
        let plan = FerretPlan {
            main: FerretParams::B10,
        };
        // More than one b10 round (796,364 outputs each) to exercise the bootstrap-from-reserve.
        let sizes = [1, 1000, 900_000, 3];
        let (delta, q, t) = run(plan, &sizes);
        assert_eq!(delta & 1, 1);
        assert_eq!(q.len(), t.len());
        let mut ones = 0usize;
        for (j, (&q, &t)) in q.iter().zip(&t).enumerate() {
            assert_eq!(q & 1, 0, "sender lsb at {j}");
            let c = t & 1;
            ones += c as usize;
            assert_eq!(t, q ^ if c == 1 { delta } else { 0 }, "COT {j}");
        }
        // Choice bits are pseudorandom: about half are ones.
        let n = q.len() as f64;
        assert!(
            (ones as f64 - n / 2.0).abs() < 5.0 * (n / 4.0).sqrt(),
            "{ones} of {n}"
        );
        // No two outputs repeat (no reused pads).
        let mut sorted = q.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), q.len());
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn time_ferret() {
        for (n, plan) in [
            (800_000usize, FerretPlan::for_count(800_000)),
            (5_500_000, FerretPlan::for_count(5_500_000)),
        ] {
            let (mut s, mut r) = pi_net::loopback_pair().unwrap();
            let t0 = Instant::now();
            let t = std::thread::spawn(move || {
                let t0 = Instant::now();
                let mut snd =
                    FerretSender::setup(&mut s, plan, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
                let setup = t0.elapsed().as_secs_f64();
                let mut x = 0u128;
                let mut left = n;
                while left > 0 {
                    let m = left.min(200_000);
                    x ^= snd.take(&mut s, m).unwrap()[0];
                    left -= m;
                }
                (setup, t0.elapsed().as_secs_f64(), x, s.counters())
            });
            let t1 = Instant::now();
            let mut rcv =
                FerretReceiver::setup(&mut r, plan, &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
            let rsetup = t1.elapsed().as_secs_f64();
            let mut left = n;
            while left > 0 {
                let m = left.min(200_000);
                rcv.take(&mut r, m).unwrap();
                left -= m;
            }
            let rt = t1.elapsed().as_secs_f64();
            let (ss, st, _, c) = t.join().unwrap();
            let wall = t0.elapsed().as_secs_f64();
            eprintln!(
                "n={n} plan={:?}: wall {:.3}s = {:.1} M COT/s; sender setup {ss:.3}s total {st:.3}s; receiver setup {rsetup:.3}s total {rt:.3}s; bytes {} ({:.3} B/COT)",
                plan.main,
                wall,
                n as f64 / wall / 1e6,
                c.sent + c.received,
                (c.sent + c.received) as f64 / n as f64
            );
        }
    }
}
