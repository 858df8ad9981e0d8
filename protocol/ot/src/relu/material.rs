//! Offline material of one run of identical ReLUs, built from random COTs.
//!
//! From a COT (server q, Δ; client t = q ⊕ c·Δ, c = lsb t) with index i the parties derive a
//! random OT: server keys H(q, i), H(q ⊕ Δ, i), client choice c and key H(t, i) (H the tweakable
//! CCR hash). One-bit keys give a random bit product: the server's bit ρ = s₀ ⊕ s₁ times the
//! client's c is shared as (s₀, s_c). Two such products make a bit triple; m-bit keys give the
//! random OTs of the arithmetic stage.

use zeroize::Zeroizing;

use super::bits::{mask, Bits};
use super::shape::Shape;
use crate::aes::{Block, Ccr};

/// Server keys of random OTs: (K₀, K₁) per OT, `bits` bits each.
pub(crate) struct ServerKeys {
    pub k0: Zeroizing<Vec<u64>>,
    pub k1: Zeroizing<Vec<u64>>,
}

/// Client side of random OTs: choice bits and the chosen key.
pub(crate) struct ClientKeys {
    pub c: Bits,
    pub k: Zeroizing<Vec<u64>>,
}

/// Hashes the server's COT values into ROT keys of `bits` bits (tweaks `tweak`, `tweak` + 1, …).
pub(crate) fn server_keys(
    ccr: &Ccr,
    q: &[Block],
    delta: Block,
    tweak: u128,
    bits: u32,
) -> ServerKeys {
    let mut h0 = Zeroizing::new(vec![0 as Block; q.len()]);
    let mut h1 = Zeroizing::new(vec![0 as Block; q.len()]);
    ccr.hash_tweaked(q, tweak, &mut h0);
    let q1: Zeroizing<Vec<Block>> = Zeroizing::new(q.iter().map(|x| x ^ delta).collect());
    ccr.hash_tweaked(&q1, tweak, &mut h1);
    let m = mask(bits);
    ServerKeys {
        k0: Zeroizing::new(h0.iter().map(|h| *h as u64 & m).collect()),
        k1: Zeroizing::new(h1.iter().map(|h| *h as u64 & m).collect()),
    }
}

/// Hashes the client's COT values into its choice bits and chosen keys.
pub(crate) fn client_keys(ccr: &Ccr, t: &[Block], tweak: u128, bits: u32) -> ClientKeys {
    let mut h = Zeroizing::new(vec![0 as Block; t.len()]);
    ccr.hash_tweaked(t, tweak, &mut h);
    let m = mask(bits);
    let lsb: Vec<u64> = t.iter().map(|x| *x as u64 & 1).collect();
    ClientKeys {
        c: Bits::from_values(&lsb, 0),
        k: Zeroizing::new(h.iter().map(|h| *h as u64 & m).collect()),
    }
}

/// One party's shares of bit triples (α, β, γ = αβ) for a batch of ReLUs.
pub(crate) struct Triples {
    pub a: Bits,
    pub b: Bits,
    pub g: Bits,
}

/// Server triple shares from two batches of one-bit ROTs: α = ρ₁, β = ρ₂, γ = ρ₁ρ₂ ⊕ s₀¹ ⊕ s₀².
pub(crate) fn server_triples(r1: &ServerKeys, r2: &ServerKeys) -> Triples {
    let n = r1.k0.len();
    let rho1 = xor_bits(&r1.k0, &r1.k1);
    let rho2 = xor_bits(&r2.k0, &r2.k1);
    let s1 = Bits::from_values(&r1.k0, 0);
    let s2 = Bits::from_values(&r2.k0, 0);
    let g: Vec<u64> = (0..rho1.words().len())
        .map(|i| (rho1.words()[i] & rho2.words()[i]) ^ s1.words()[i] ^ s2.words()[i])
        .collect();
    Triples {
        a: rho1,
        b: rho2,
        g: Bits::from_words(g, n),
    }
}

/// Client triple shares: α = c₂, β = c₁, γ = c₁c₂ ⊕ k¹ ⊕ k².
pub(crate) fn client_triples(r1: &ClientKeys, r2: &ClientKeys) -> Triples {
    let n = r1.k.len();
    let k1 = Bits::from_values(&r1.k, 0);
    let k2 = Bits::from_values(&r2.k, 0);
    let g: Vec<u64> = (0..k1.words().len())
        .map(|i| (r1.c.words()[i] & r2.c.words()[i]) ^ k1.words()[i] ^ k2.words()[i])
        .collect();
    Triples {
        a: r2.c.clone(),
        b: r1.c.clone(),
        g: Bits::from_words(g, n),
    }
}

/// ρ = lsb K₀ ⊕ lsb K₁ per OT.
pub(crate) fn xor_bits(k0: &[u64], k1: &[u64]) -> Bits {
    let x: Vec<u64> = k0.iter().zip(k1).map(|(a, b)| (a ^ b) & 1).collect();
    Bits::from_values(&x, 0)
}

/// Server material of one run.
pub(crate) struct ServerRun {
    /// Step 0: ρ and the share s₀ of ρ·e.
    pub rho0: Bits,
    pub p0: Bits,
    /// Steps 1..=j.
    pub triples: Vec<Triples>,
    /// Low-carry product: random bit and its share of ρ_S·ρ_C mod 2^m.
    pub cross_rho: Bits,
    pub cross_pi: Zeroizing<Vec<u64>>,
    /// Mux OT (server sends): K₀, K₁ mod 2^m.
    pub mux: ServerKeys,
    /// Reverse OT (server receives): random choice e and key K_e mod 2^m.
    pub rev_e: Bits,
    pub rev_k: Zeroizing<Vec<u64>>,
    /// Lift product: random bit and share of ρ_S·ρ_C mod 2^(k−m).
    pub lift_rho: Bits,
    pub lift_pi: Zeroizing<Vec<u64>>,
}

/// Client material of one run.
pub(crate) struct ClientRun {
    pub e0: Bits,
    pub p0: Bits,
    pub triples: Vec<Triples>,
    pub cross_rho: Bits,
    pub cross_pi: Zeroizing<Vec<u64>>,
    pub mux: ClientKeys,
    /// Reverse OT (client sends): K₀, K₁ mod 2^m.
    pub rev: ServerKeys,
    pub lift_rho: Bits,
    pub lift_pi: Zeroizing<Vec<u64>>,
    /// The client's share b (low w bits) of each ReLU input.
    pub b: Zeroizing<Vec<u64>>,
}

/// A run of consecutive ReLUs with the same parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    /// First ReLU (global index).
    pub start: usize,
    /// Number of ReLUs.
    pub len: usize,
    pub shape: Shape,
}
