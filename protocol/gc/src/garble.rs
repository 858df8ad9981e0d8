//! Half-gates garbling with free-XOR and point-and-permute, run on `L` circuits in lock step.
//!
//! Wires are `[Block; L]`: lane `l` belongs to circuit `l` of a group of identical circuits. Each
//! AND gate hashes all lanes in one batch (4·L AES blocks for the garbler, 2·L for the
//! evaluator) so the AES pipeline stays full even though a ripple-carry circuit is sequential.
//! Lane `l` writes/reads its own circuit's table, so the table layout is per circuit and any
//! grouping (including `L = 1`) produces and consumes the same bytes.
//!
//! Tweaks: AND gate `g` of the circuit with global index `c` uses tweaks (c << 64) | 2g and
//! (c << 64) | (2g + 1), unique within a garbling (one Δ is never used for two circuit lists);
//! the hash XORs its per-garbling random nonce into every tweak, so they also differ across
//! garblings.

use crate::block::{lsb_mask, Block, Tccr};
use crate::circuit::Builder;

/// Bytes of garbled table per AND gate (two 16-byte ciphertexts).
pub const TABLE_BYTES_PER_AND: usize = 32;

/// Largest lane count (the scratch buffers are sized for it).
pub const MAX_LANES: usize = 8;

/// The garbler's interpretation of a circuit: wires are zero labels, AND gates write tables.
pub struct LaneGarbler<'a, const L: usize> {
    hash: &'a Tccr,
    delta: Block,
    tweak_hi: [Block; L],
    gate: u64,
    tables: &'a mut [u8],
    stride: usize,
}

impl<'a, const L: usize> LaneGarbler<'a, L> {
    /// Starts garbling circuits `circuits[l]` into `tables` (lane l at offset l·stride).
    pub fn new(
        hash: &'a Tccr,
        delta: Block,
        circuits: [u64; L],
        tables: &'a mut [u8],
        stride: usize,
    ) -> Self {
        assert!(L <= MAX_LANES);
        LaneGarbler {
            hash,
            delta,
            tweak_hi: circuits.map(|c| (c as u128) << 64),
            gate: 0,
            tables,
            stride,
        }
    }

    /// AND gates garbled so far.
    pub fn gates(&self) -> u64 {
        self.gate
    }
}

impl<const L: usize> Builder for LaneGarbler<'_, L> {
    type Wire = [Block; L];

    #[inline]
    fn xor(&mut self, a: &Self::Wire, b: &Self::Wire) -> Self::Wire {
        std::array::from_fn(|l| a[l] ^ b[l])
    }

    #[inline]
    fn not(&mut self, a: &Self::Wire) -> Self::Wire {
        std::array::from_fn(|l| a[l] ^ self.delta)
    }

    #[inline]
    fn zero(&mut self) -> Self::Wire {
        [0; L]
    }

    #[inline]
    fn and(&mut self, a: &Self::Wire, b: &Self::Wire) -> Self::Wire {
        let j0 = (self.gate as u128) << 1;
        let mut z = [0 as Block; 4 * MAX_LANES];
        let mut t = [0 as Block; 4 * MAX_LANES];
        for l in 0..L {
            let (ta, tb) = (self.tweak_hi[l] | j0, self.tweak_hi[l] | j0 | 1);
            z[4 * l] = a[l];
            z[4 * l + 1] = a[l] ^ self.delta;
            z[4 * l + 2] = b[l];
            z[4 * l + 3] = b[l] ^ self.delta;
            t[4 * l..4 * l + 4].copy_from_slice(&[ta, ta, tb, tb]);
        }
        self.hash.hash_many(&mut z[..4 * L], &t[..4 * L]);
        let off = self.gate as usize * TABLE_BYTES_PER_AND;
        let mut out = [0 as Block; L];
        for l in 0..L {
            let (ha0, ha1, hb0, hb1) = (z[4 * l], z[4 * l + 1], z[4 * l + 2], z[4 * l + 3]);
            let pa = lsb_mask(a[l]);
            let pb = lsb_mask(b[l]);
            // Garbler half gate: the evaluator learns H(A) ⊕ sa·TG.
            let tg = ha0 ^ ha1 ^ (pb & self.delta);
            let wg = ha0 ^ (pa & tg);
            // Evaluator half gate: the evaluator learns H(B) ⊕ sb·(TE ⊕ A).
            let hb = hb0 ^ hb1;
            let te = hb ^ a[l];
            let we = hb0 ^ (pb & hb);
            out[l] = wg ^ we;
            let at = l * self.stride + off;
            if let Some(dst) = self.tables.get_mut(at..at + TABLE_BYTES_PER_AND) {
                dst[..16].copy_from_slice(&tg.to_le_bytes());
                dst[16..].copy_from_slice(&te.to_le_bytes());
            }
        }
        self.gate += 1;
        out
    }
}

/// The evaluator's interpretation: wires are active labels, AND gates read tables.
pub struct LaneEvaluator<'a, const L: usize> {
    hash: &'a Tccr,
    tweak_hi: [Block; L],
    gate: u64,
    tables: [&'a [u8]; L],
}

impl<'a, const L: usize> LaneEvaluator<'a, L> {
    /// Starts evaluating circuits `circuits[l]` from their tables (lengths checked by the caller).
    pub fn new(hash: &'a Tccr, circuits: [u64; L], tables: [&'a [u8]; L]) -> Self {
        assert!(L <= MAX_LANES);
        LaneEvaluator {
            hash,
            tweak_hi: circuits.map(|c| (c as u128) << 64),
            gate: 0,
            tables,
        }
    }
}

#[inline(always)]
fn read_block(bytes: &[u8], at: usize) -> Block {
    // Lengths are validated before evaluation; a short table reads as zeros, never panics.
    match bytes.get(at..at + 16) {
        Some(s) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            u128::from_le_bytes(a)
        }
        None => 0,
    }
}

impl<const L: usize> Builder for LaneEvaluator<'_, L> {
    type Wire = [Block; L];

    #[inline]
    fn xor(&mut self, a: &Self::Wire, b: &Self::Wire) -> Self::Wire {
        std::array::from_fn(|l| a[l] ^ b[l])
    }

    #[inline]
    fn not(&mut self, a: &Self::Wire) -> Self::Wire {
        *a
    }

    #[inline]
    fn zero(&mut self) -> Self::Wire {
        [0; L]
    }

    #[inline]
    fn and(&mut self, a: &Self::Wire, b: &Self::Wire) -> Self::Wire {
        let j0 = (self.gate as u128) << 1;
        let mut z = [0 as Block; 2 * MAX_LANES];
        let mut t = [0 as Block; 2 * MAX_LANES];
        for l in 0..L {
            z[2 * l] = a[l];
            z[2 * l + 1] = b[l];
            t[2 * l] = self.tweak_hi[l] | j0;
            t[2 * l + 1] = self.tweak_hi[l] | j0 | 1;
        }
        self.hash.hash_many(&mut z[..2 * L], &t[..2 * L]);
        let off = self.gate as usize * TABLE_BYTES_PER_AND;
        let mut out = [0 as Block; L];
        for l in 0..L {
            let tg = read_block(self.tables[l], off);
            let te = read_block(self.tables[l], off + 16);
            out[l] =
                z[2 * l] ^ (lsb_mask(a[l]) & tg) ^ z[2 * l + 1] ^ (lsb_mask(b[l]) & (te ^ a[l]));
        }
        self.gate += 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::lsb;
    use crate::circuit::{gadgets, GateCounter};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn rand_block(rng: &mut ChaCha20Rng) -> Block {
        ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128
    }

    fn garble_eval_add<const L: usize>(seed: u64, n: usize) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let hash = Tccr::new();
        let delta = rand_block(&mut rng) | 1;
        let mut c = GateCounter::default();
        gadgets::add(&mut c, &vec![(); n], &vec![(); n]);
        let stride = c.ands * TABLE_BYTES_PER_AND;
        let circuits: [u64; L] = std::array::from_fn(|l| 1000 + l as u64);
        let x0: Vec<[Block; L]> = (0..n)
            .map(|_| std::array::from_fn(|_| rand_block(&mut rng)))
            .collect();
        let y0: Vec<[Block; L]> = (0..n)
            .map(|_| std::array::from_fn(|_| rand_block(&mut rng)))
            .collect();
        let mut tables = vec![0u8; L * stride];
        let out0 = {
            let mut g = LaneGarbler::<L>::new(&hash, delta, circuits, &mut tables, stride);
            let o = gadgets::add(&mut g, &x0, &y0);
            assert_eq!(g.gates() as usize, c.ands);
            o
        };
        let xs: [u64; L] = std::array::from_fn(|_| rng.next_u64() & ((1u64 << n) - 1));
        let ys: [u64; L] = std::array::from_fn(|_| rng.next_u64() & ((1u64 << n) - 1));
        let act = |zero: &[[Block; L]], v: &[u64; L]| -> Vec<[Block; L]> {
            zero.iter()
                .enumerate()
                .map(|(j, w)| {
                    std::array::from_fn(|l| w[l] ^ if (v[l] >> j) & 1 == 1 { delta } else { 0 })
                })
                .collect()
        };
        let (xa, ya) = (act(&x0, &xs), act(&y0, &ys));
        let slices: [&[u8]; L] = std::array::from_fn(|l| &tables[l * stride..(l + 1) * stride]);
        let mut e = LaneEvaluator::<L>::new(&hash, circuits, slices);
        let out = gadgets::add(&mut e, &xa, &ya);
        for l in 0..L {
            let mut got = 0u64;
            for j in 0..n {
                // Active label is the zero label or the zero label ⊕ Δ: never anything else.
                assert!(out[j][l] == out0[j][l] || out[j][l] == out0[j][l] ^ delta);
                got |= ((lsb(out[j][l]) ^ lsb(out0[j][l])) as u64) << j;
            }
            assert_eq!(got, xs[l].wrapping_add(ys[l]) & ((1u64 << n) - 1));
        }
    }

    #[test]
    fn garbled_adder_decodes_to_the_sum_for_every_lane_width() {
        for seed in 0..20 {
            garble_eval_add::<1>(seed, 27);
            garble_eval_add::<3>(seed, 13);
            garble_eval_add::<8>(seed, 52);
        }
    }

    #[test]
    fn a_flipped_table_bit_changes_the_output_label() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let hash = Tccr::new();
        let delta = rand_block(&mut rng) | 1;
        let (a0, b0) = (rand_block(&mut rng), rand_block(&mut rng));
        let mut t = vec![0u8; 32];
        let w0 = LaneGarbler::<1>::new(&hash, delta, [7], &mut t, 32).and(&[a0], &[b0])[0];
        for (x, y) in [(0u8, 0u8), (0, 1), (1, 0), (1, 1)] {
            let a = a0 ^ if x == 1 { delta } else { 0 };
            let b = b0 ^ if y == 1 { delta } else { 0 };
            let w = LaneEvaluator::<1>::new(&hash, [7], [&t]).and(&[a], &[b])[0];
            assert_eq!(w, w0 ^ if x & y == 1 { delta } else { 0 });
            let mut bad = t.clone();
            bad[3] ^= 0x10;
            bad[19] ^= 0x01;
            let wb = LaneEvaluator::<1>::new(&hash, [7], [&bad]).and(&[a], &[b])[0];
            // With the colour bits set, the tampered half is used; for (0,0) colours may skip it.
            if lsb(a) || lsb(b) {
                assert!(wb != w0 && wb != w0 ^ delta);
            }
        }
    }
}
