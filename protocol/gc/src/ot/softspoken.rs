//! SoftSpoken correlated OT extension (semi-honest), parameter k ∈ {1, 2, 4, 8}; k = 1 is IKNP.
//!
//! Setup: 128/k blocks; per block the OT receiver (the client) builds a GGM tree with 2^k leaves
//! and the OT sender (the server) learns every leaf but the one at its secret point Δ_i ∈ F_2^k
//! through k base OTs (one per level, 128 in all). Δ = (Δ_0, …, Δ_{128/k − 1}) bit-concatenated,
//! lsb forced to 1 for point-and-permute.
//!
//! Extension of m OTs, per block i, with r_x = PRG(seed_x) ∈ F_2^m:
//! receiver u_i = Σ_x r_x, v_i = Σ_x x·r_x (k bit-planes) and sends c_i = u_i ⊕ choices;
//! sender w_i = Σ_{x≠Δ_i} (x ⊕ Δ_i)·r_x = v_i ⊕ u_i·Δ_i, then w_i ⊕ c_i·Δ_i = v_i ⊕ choices·Δ_i.
//! Transposing the 128 bit-planes gives, per OT j, q_j = v_j ⊕ choice_j·Δ. Traffic: 128/k bits
//! per OT (16 B for IKNP, 4 B for k = 4) plus a one-time 128 base OTs.

use std::io::{Read, Write};

use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::{Zeroize, Zeroizing};

use super::aes::Aes;
use super::{base, transpose128};
use crate::block::Block;
use crate::msg::{recv_small, send_small, GGM};
use crate::GcError;

/// Supported SoftSpoken parameters (k must divide 128; 2^k seeds per block).
pub const SUPPORTED_K: [u32; 4] = [1, 2, 4, 8];

fn check_k(k: u32) -> Result<(), GcError> {
    if SUPPORTED_K.contains(&k) {
        Ok(())
    } else {
        Err(GcError::InvalidParams(format!(
            "SoftSpoken k must be one of {SUPPORTED_K:?}, got {k}"
        )))
    }
}

fn rand_block(rng: &mut (impl CryptoRng + RngCore)) -> Block {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    u128::from_le_bytes(b)
}

/// GGM length-doubling PRG: s ↦ (AES_s(0), AES_s(1)).
fn ggm_children(s: Block) -> (Block, Block) {
    let mut b = [0, 1];
    Aes::new(s).encrypt(&mut b);
    (b[0], b[1])
}

/// Words (128 OTs each) per tile: PRG output, corrections and all 128 planes of a tile
/// (64 KiB) stay in L2 from expansion through transposition; tiles are the unit of parallelism.
const TILE: usize = 32;

/// Expands the PRG of one leaf for chunk `chunk`, words `start..start + out.len()`:
/// out[i] = AES_seed(chunk ‖ start + i).
fn prg(c: &Aes, chunk: u64, start: usize, out: &mut [Block]) {
    let hi = (chunk as u128) << 64;
    out.iter_mut()
        .enumerate()
        .for_each(|(w, o)| *o = hi | (start + w) as u128);
    c.encrypt(out);
}

fn xor_into(dst: &mut [Block], src: &[Block]) {
    dst.iter_mut().zip(src).for_each(|(d, s)| *d ^= s);
}

/// Transposes one tile's 128 bit-planes (`n` words each, stride `TILE`) into `n`·128 OT outputs.
fn tile_to_ots(planes: &[Block], n: usize, out: &mut [Block]) {
    let mut a = [0 as Block; 128];
    for (w, o) in out.chunks_exact_mut(128).take(n).enumerate() {
        for (p, ap) in a.iter_mut().enumerate() {
            *ap = planes[p * TILE + w];
        }
        transpose128(&mut a);
        o.copy_from_slice(&a);
    }
    a.zeroize();
}

/// The OT receiver's state (the client): every leaf seed of every block.
pub struct CotReceiver {
    k: u32,
    leaves: Vec<Vec<Aes>>,
    chunk: u64,
}

/// The OT sender's state (the garbler): Δ and all leaves but the punctured one per block.
pub struct CotSender {
    k: u32,
    delta: Zeroizing<Block>,
    /// The pieces Δ_i of Δ (the punctured points), wiped on drop.
    punct: Zeroizing<Vec<usize>>,
    leaves: Vec<Vec<Option<Aes>>>,
    chunk: u64,
}

impl CotReceiver {
    /// Runs the setup as OT receiver (client): base-OT sender, GGM tree builder.
    pub fn setup<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        k: u32,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<Self, GcError> {
        check_k(k)?;
        let nb = (128 / k) as usize;
        let keys = base::send(ch, 128, rng)?;
        let mut msg = Zeroizing::new(Vec::with_capacity(128 * 32));
        let mut leaves = Vec::with_capacity(nb);
        for i in 0..nb {
            let mut level = Zeroizing::new(vec![rand_block(rng)]);
            for l in 0..k as usize {
                let mut next = Zeroizing::new(Vec::with_capacity(level.len() * 2));
                for &s in level.iter() {
                    let (a, b) = ggm_children(s);
                    next.push(a);
                    next.push(b);
                }
                let (mut s0, mut s1) = (0 as Block, 0 as Block);
                for (j, &s) in next.iter().enumerate() {
                    if j & 1 == 0 {
                        s0 ^= s
                    } else {
                        s1 ^= s
                    }
                }
                let [k0, k1] = keys[i * k as usize + l];
                msg.extend_from_slice(&(s0 ^ k0).to_le_bytes());
                msg.extend_from_slice(&(s1 ^ k1).to_le_bytes());
                level = next;
            }
            leaves.push(level.iter().map(|&s| Aes::new(s)).collect());
        }
        send_small(ch, GGM, &msg)?;
        ch.flush()?;
        Ok(CotReceiver {
            k,
            leaves,
            chunk: 0,
        })
    }

    /// The SoftSpoken parameter k.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Bytes of correction per OT-extension chunk of `words`·128 OTs.
    pub fn correction_bytes(&self, words: usize) -> usize {
        self.leaves.len() * words * 16
    }

    /// Extends `choices.len()`·128 OTs (choice j is bit j%128 of `choices[j/128]`).
    ///
    /// Returns this side's outputs v_j (its active labels) and the correction to send.
    pub fn extend(&mut self, choices: &[Block]) -> (Zeroizing<Vec<Block>>, Vec<Block>) {
        let words = choices.len();
        let k = self.k as usize;
        let nb = self.leaves.len();
        let chunk = self.chunk;
        self.chunk += 1;
        let mut out = Zeroizing::new(vec![0 as Block; words * 128]);
        // Correction layout is tile-major: tile t, then block i, then the tile's words.
        let mut corr = vec![0 as Block; nb * words];
        let tile = |(t, (o, u)): (usize, (&mut [Block], &mut [Block]))| {
            let t0 = t * TILE;
            let n = TILE.min(words - t0);
            let mut planes = Zeroizing::new(vec![0 as Block; 128 * TILE]);
            let mut r = Zeroizing::new([0 as Block; TILE]);
            for (i, seeds) in self.leaves.iter().enumerate() {
                let ui = &mut u[i * n..(i + 1) * n];
                for (x, c) in seeds.iter().enumerate() {
                    prg(c, chunk, t0, &mut r[..n]);
                    xor_into(ui, &r[..n]);
                    for b in 0..k {
                        if (x >> b) & 1 == 1 {
                            let p = i * k + b;
                            xor_into(&mut planes[p * TILE..p * TILE + n], &r[..n]);
                        }
                    }
                }
                xor_into(ui, &choices[t0..t0 + n]);
            }
            tile_to_ots(&planes, n, o);
        };
        if crate::run_inline() {
            out.chunks_mut(TILE * 128)
                .zip(corr.chunks_mut(TILE * nb))
                .enumerate()
                .for_each(tile);
        } else {
            out.par_chunks_mut(TILE * 128)
                .zip(corr.par_chunks_mut(TILE * nb))
                .enumerate()
                .for_each(tile);
        }
        (out, corr)
    }
}

impl CotSender {
    /// Runs the setup as OT sender (garbler): picks Δ, base-OT receiver, GGM reconstruction.
    pub fn setup<R: Read, W: Write>(
        ch: &mut Channel<R, W>,
        k: u32,
        rng: &mut (impl CryptoRng + RngCore),
    ) -> Result<Self, GcError> {
        check_k(k)?;
        let ku = k as usize;
        let nb = 128 / ku;
        let mut punct: Zeroizing<Vec<usize>> = Zeroizing::new(
            (0..nb)
                .map(|_| (rng.next_u32() as usize) & ((1 << k) - 1))
                .collect(),
        );
        punct[0] |= 1;
        let delta = Zeroizing::new(
            punct
                .iter()
                .enumerate()
                .fold(0 as Block, |d, (i, &p)| d | ((p as Block) << (i * ku))),
        );
        // Level l (0-based) of block i uses path bit δ = bit (k−1−l) of Δ_i; we need the sibling.
        // The base-OT choices are the bits of Δ: wiped with the keys.
        let choices: Zeroizing<Vec<bool>> = Zeroizing::new(
            (0..128)
                .map(|j| ((punct[j / ku] >> (ku - 1 - j % ku)) & 1) == 0)
                .collect(),
        );
        let keys = base::receive(ch, &choices, rng)?;
        let msg = Zeroizing::new(recv_small(ch, GGM, 128 * 32)?);
        let mut leaves = Vec::with_capacity(nb);
        for (i, &d) in punct.iter().enumerate() {
            let mut known: Vec<Option<Block>> = vec![None];
            for l in 0..ku {
                let mut next: Vec<Option<Block>> = vec![None; known.len() * 2];
                for (v, s) in known.iter().enumerate() {
                    if let Some(s) = s {
                        let (a, b) = ggm_children(*s);
                        next[2 * v] = Some(a);
                        next[2 * v + 1] = Some(b);
                    }
                }
                let path = d >> (ku - 1 - l);
                let sib = path ^ 1;
                let j = i * ku + l;
                let side = sib & 1;
                let at = 32 * j + 16 * side;
                let mut e = [0u8; 16];
                e.copy_from_slice(&msg[at..at + 16]);
                let mut s = u128::from_le_bytes(e) ^ keys[j];
                e.zeroize();
                for (t, n) in next.iter().enumerate() {
                    if t & 1 == side && t != sib {
                        if let Some(n) = n {
                            s ^= n;
                        }
                    }
                }
                next[sib] = Some(s);
                known.zeroize_opt();
                known = next;
            }
            leaves.push(known.iter().map(|s| s.map(Aes::new)).collect());
            known.zeroize_opt();
        }
        Ok(CotSender {
            k,
            delta,
            punct,
            leaves,
            chunk: 0,
        })
    }

    /// The correlation Δ (the garbler's free-XOR offset; lsb = 1).
    pub fn delta(&self) -> Block {
        *self.delta
    }

    /// The SoftSpoken parameter k.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Bytes of correction per OT-extension chunk of `words`·128 OTs.
    pub fn correction_bytes(&self, words: usize) -> usize {
        self.leaves.len() * words * 16
    }

    /// Finishes `words`·128 OTs from the receiver's correction: returns q_j = v_j ⊕ choice_j·Δ.
    pub fn extend(
        &mut self,
        corr: &[Block],
        words: usize,
    ) -> Result<Zeroizing<Vec<Block>>, GcError> {
        let nb = self.leaves.len();
        if corr.len() != nb * words {
            return Err(GcError::Length {
                what: "OT correction",
                expected: nb * words,
                got: corr.len(),
            });
        }
        let k = self.k as usize;
        let chunk = self.chunk;
        self.chunk += 1;
        let mut out = Zeroizing::new(vec![0 as Block; words * 128]);
        let tile = |(t, (o, c)): (usize, (&mut [Block], &[Block]))| {
            let t0 = t * TILE;
            let n = TILE.min(words - t0);
            let mut planes = Zeroizing::new(vec![0 as Block; 128 * TILE]);
            let mut r = Zeroizing::new([0 as Block; TILE]);
            for (i, (seeds, &d)) in self.leaves.iter().zip(self.punct.iter()).enumerate() {
                for (x, s) in seeds.iter().enumerate() {
                    let Some(s) = s else { continue };
                    prg(s, chunk, t0, &mut r[..n]);
                    let e = x ^ d;
                    for b in 0..k {
                        if (e >> b) & 1 == 1 {
                            let p = i * k + b;
                            xor_into(&mut planes[p * TILE..p * TILE + n], &r[..n]);
                        }
                    }
                }
                let ci = &c[i * n..(i + 1) * n];
                for b in 0..k {
                    if (d >> b) & 1 == 1 {
                        let p = i * k + b;
                        xor_into(&mut planes[p * TILE..p * TILE + n], ci);
                    }
                }
            }
            tile_to_ots(&planes, n, o);
        };
        if crate::run_inline() {
            out.chunks_mut(TILE * 128)
                .zip(corr.chunks(TILE * nb))
                .enumerate()
                .for_each(tile);
        } else {
            out.par_chunks_mut(TILE * 128)
                .zip(corr.par_chunks(TILE * nb))
                .enumerate()
                .for_each(tile);
        }
        Ok(out)
    }
}

/// Wipes the seeds of a partially known GGM level.
trait ZeroizeOpt {
    fn zeroize_opt(&mut self);
}

impl ZeroizeOpt for Vec<Option<Block>> {
    fn zeroize_opt(&mut self) {
        for s in self.iter_mut().flatten() {
            s.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn run(k: u32, words: usize, chunks: usize) {
        let (mut s, mut r) = pi_net::loopback_pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut rng = ChaCha20Rng::seed_from_u64(10 + k as u64);
            let mut snd = CotSender::setup(&mut s, k, &mut rng).unwrap();
            let mut out = Vec::new();
            for _ in 0..chunks {
                let f = s.recv_frame().unwrap();
                let mut corr = Vec::new();
                crate::block::blocks_from_bytes(&f, &mut corr);
                out.push(snd.extend(&corr, words).unwrap().to_vec());
            }
            (snd.delta(), out)
        });
        let mut rng = ChaCha20Rng::seed_from_u64(20 + k as u64);
        let mut rcv = CotReceiver::setup(&mut r, k, &mut rng).unwrap();
        let mut mine = Vec::new();
        let mut all_choices = Vec::new();
        for _ in 0..chunks {
            let choices: Vec<Block> = (0..words).map(|_| rand_block(&mut rng)).collect();
            let (v, corr) = rcv.extend(&choices);
            let bytes: Vec<u8> = corr.iter().flat_map(|c| c.to_le_bytes()).collect();
            assert_eq!(bytes.len(), rcv.correction_bytes(words));
            r.send_frame(&bytes).unwrap();
            r.flush().unwrap();
            mine.push(v.to_vec());
            all_choices.push(choices);
        }
        let (delta, theirs) = t.join().unwrap();
        assert_eq!(delta & 1, 1, "Δ lsb must be 1");
        for c in 0..chunks {
            for j in 0..words * 128 {
                let bit = (all_choices[c][j / 128] >> (j % 128)) & 1 == 1;
                let q = theirs[c][j];
                let v = mine[c][j];
                // The receiver holds exactly the label of its choice ...
                assert_eq!(v, if bit { q ^ delta } else { q }, "k={k} chunk={c} ot={j}");
                // ... and never the other one.
                assert_ne!(v, if bit { q } else { q ^ delta });
            }
            // Outputs of different OTs and chunks are unrelated (no repeated pads).
            assert_ne!(mine[c][0], mine[c][1]);
        }
        if chunks > 1 {
            assert_ne!(mine[0][0], mine[1][0]);
        }
    }

    #[test]
    fn iknp_k1_gives_chosen_labels() {
        run(1, 3, 2);
    }

    #[test]
    fn softspoken_k2_k4_k8_give_chosen_labels() {
        run(2, 2, 1);
        run(4, 5, 3);
        run(8, 1, 1);
    }

    #[test]
    fn flipped_choice_yields_the_other_label_only_through_delta() {
        // Same seeds, flipped choice bit: the receiver's output does not change (v is independent
        // of the choices), so the sender's q moves by Δ; the receiver never learns both labels.
        let (mut s, mut r) = pi_net::loopback_pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut rng = ChaCha20Rng::seed_from_u64(1);
            let mut snd = CotSender::setup(&mut s, 4, &mut rng).unwrap();
            let mut qs = Vec::new();
            for _ in 0..2 {
                let f = s.recv_frame().unwrap();
                let mut corr = Vec::new();
                crate::block::blocks_from_bytes(&f, &mut corr);
                qs.push(snd.extend(&corr, 1).unwrap().to_vec());
            }
            (snd.delta(), qs)
        });
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut rcv = CotReceiver::setup(&mut r, 4, &mut rng).unwrap();
        let (v0, c0) = rcv.extend(&[0]);
        let (v1, c1) = rcv.extend(&[u128::MAX]);
        for c in [c0, c1] {
            let bytes: Vec<u8> = c.iter().flat_map(|c| c.to_le_bytes()).collect();
            r.send_frame(&bytes).unwrap();
        }
        r.flush().unwrap();
        let (delta, qs) = t.join().unwrap();
        for j in 0..128 {
            assert_eq!(v0[j], qs[0][j]);
            assert_eq!(v1[j], qs[1][j] ^ delta);
            assert_ne!(v1[j], qs[1][j]);
        }
    }

    #[test]
    fn unsupported_k_and_wrong_correction_length_are_errors() {
        assert!(check_k(3).is_err());
        assert!(check_k(16).is_err());
        let (mut s, mut r) = pi_net::loopback_pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut snd = CotSender::setup(&mut s, 2, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
            matches!(snd.extend(&[0; 5], 1), Err(GcError::Length { .. }))
        });
        let _rcv = CotReceiver::setup(&mut r, 2, &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
        assert!(t.join().unwrap());
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore]
    fn time_ot_parts() {
        let words = 10_000;
        let c = Aes::new(u128::from_le_bytes([7u8; 16]));
        let mut r = vec![0u128; words];
        let t = std::time::Instant::now();
        for i in 0..16 {
            prg(&c, i, 0, &mut r);
        }
        eprintln!(
            "prg: {:.2} ns/block",
            t.elapsed().as_nanos() as f64 / (16 * words) as f64
        );
        let mut m = [5u128; 128];
        let t = std::time::Instant::now();
        for i in 0..10_000 {
            m[i % 128] ^= i as u128;
            transpose128(&mut m);
        }
        eprintln!(
            "transpose128 hot: {:.2} ns/OT ({})",
            t.elapsed().as_nanos() as f64 / (128 * 10_000) as f64,
            m[3]
        );
        let mut x = vec![0u128; words];
        let t = std::time::Instant::now();
        for _ in 0..16 {
            xor_into(&mut x, &r);
        }
        eprintln!(
            "xor: {:.2} ns/block",
            t.elapsed().as_nanos() as f64 / (16 * words) as f64
        );
    }
}
