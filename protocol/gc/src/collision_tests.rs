//! The collision attack on the σ-based garbling hash used before, reproduced at the gate level:
//! a client that chooses its own input labels (its OT seeds fix them, and nobody checks the
//! seeds) makes two gates' hashes coincide and reads Δ off their tables. The same attack
//! against the TCCR hash of Guo–Katz–Wang–Yu (what `Tccr` computes now) yields nothing.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::block::{Block, Tccr};
use crate::circuit::Builder;
use crate::garble::LaneGarbler;

fn sigma(x: Block) -> Block {
    let (hi, lo) = ((x >> 64) as u64, x as u64);
    (((hi ^ lo) as u128) << 64) | hi as u128
}

fn sigma_inv(y: Block) -> Block {
    let (hi, lo) = ((y >> 64) as u64, y as u64);
    ((lo as u128) << 64) | (hi ^ lo) as u128
}

/// The hash the garbler used before: H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i.
fn old_hash(pi: &Tccr, x: Block, i: Block) -> Block {
    let z = sigma(x) ^ i;
    pi.permute(z) ^ z
}

/// Half-gates garbling of one AND gate (as `garble.rs` does): the two table rows and the
/// output zero label, for any hash `h`.
fn and_gate(
    h: &dyn Fn(Block, Block) -> Block,
    delta: Block,
    a0: Block,
    b0: Block,
    tweak: Block,
) -> (Block, Block, Block) {
    let (pa, pb) = ((a0 & 1).wrapping_neg(), (b0 & 1).wrapping_neg());
    let (ha0, ha1) = (h(a0, tweak), h(a0 ^ delta, tweak));
    let (hb0, hb1) = (h(b0, tweak | 1), h(b0 ^ delta, tweak | 1));
    let tg = ha0 ^ ha1 ^ (pb & delta);
    let te = hb0 ^ hb1 ^ a0;
    let out = (ha0 ^ (pa & tg)) ^ (hb0 ^ (pb & (hb0 ^ hb1)));
    (tg, te, out)
}

fn block(rng: &mut ChaCha20Rng) -> Block {
    ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128
}

#[test]
fn the_gate_model_is_the_garbler_in_use() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let hash = Tccr::with_nonce(block(&mut rng));
    let delta = block(&mut rng) | 1;
    let (a0, b0) = (block(&mut rng), block(&mut rng));
    let mut table = [0u8; 32];
    let out = LaneGarbler::<1>::new(&hash, delta, [77], &mut table, 32).and(&[a0], &[b0])[0];
    let h = |x, t| hash.hash(x, t);
    let (tg, te, out_model) = and_gate(&h, delta, a0, b0, 77u128 << 64);
    assert_eq!(table[..16], tg.to_le_bytes());
    assert_eq!(table[16..], te.to_le_bytes());
    assert_eq!(out, out_model);
}

/// The ReLU circuit's first AND gate is and(a_0, b_0): a server input wire and a client input
/// wire. The client takes two circuits c and c' and picks its label of b'_0 so that
/// σ(B0 ⊕ B0') = i ⊕ i' (the two gates' second tweaks). Under the old hash both gates then hash
/// b_0 identically, so TE ⊕ TE' = A0 ⊕ A0'; with the active labels A, A' the server sends online,
/// TE ⊕ TE' ⊕ A ⊕ A' = (a ⊕ a')·Δ: Δ itself whenever the server's share bits differ.
fn attack(h: &dyn Fn(Block, Block) -> Block, rng: &mut ChaCha20Rng) -> (Block, Block, bool) {
    let delta = block(rng) | 1;
    let (c, c2) = (rng.next_u64() >> 1, rng.next_u64() >> 1);
    let (t, t2) = ((c as u128) << 64, (c2 as u128) << 64);
    // Server input wires (labels the client does not know) and the server's share bits.
    let (a0, a0b) = (block(rng), block(rng));
    let (a, a2) = (rng.next_u32() & 1 == 1, rng.next_u32() & 1 == 1);
    // Client input wires: the client chooses both labels (same choice bit on both wires).
    let b0 = block(rng);
    let b0b = b0 ^ sigma_inv((t | 1) ^ (t2 | 1));
    let (_, te, _) = and_gate(h, delta, a0, b0, t);
    let (_, te2, _) = and_gate(h, delta, a0b, b0b, t2);
    let active = |zero: Block, bit: bool| zero ^ if bit { delta } else { 0 };
    let guess = te ^ te2 ^ active(a0, a) ^ active(a0b, a2);
    (guess, delta, a != a2)
}

#[test]
fn chosen_labels_reveal_delta_under_the_old_hash_and_not_under_tccr() {
    let pi = Tccr::new();
    let old = |x, i| old_hash(&pi, x, i);
    let mut rng = ChaCha20Rng::seed_from_u64(2020);
    let mut recovered = 0;
    for _ in 0..64 {
        let (guess, delta, differ) = attack(&old, &mut rng);
        if differ {
            assert_eq!(guess, delta, "the old hash leaks Δ");
            recovered += 1;
        } else {
            assert_eq!(guess, 0);
        }
    }
    assert!(recovered > 16, "Δ recovered in {recovered} of 64 trials");

    let tccr = Tccr::with_nonce(block(&mut rng));
    let new = |x, t| tccr.hash(x, t);
    for _ in 0..64 {
        let (guess, delta, _) = attack(&new, &mut rng);
        assert_ne!(guess, delta, "the TCCR hash must not leak Δ");
        assert_ne!(guess, 0, "nor collide");
    }
}

#[test]
fn the_old_hash_collides_across_tweaks_and_the_new_one_does_not() {
    let pi = Tccr::new();
    let tccr = Tccr::with_nonce(0);
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for _ in 0..32 {
        let (x, i, j) = (block(&mut rng), block(&mut rng), block(&mut rng));
        let x2 = x ^ sigma_inv(i ^ j);
        assert_eq!(old_hash(&pi, x, i), old_hash(&pi, x2, j));
        assert_ne!(tccr.hash(x, i), tccr.hash(x2, j));
    }
}
