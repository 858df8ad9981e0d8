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

/// COTs hashed per stack batch.
const CHUNK: usize = 256;

/// Hashes the server's COT values into ROT keys of `bits` bits (tweaks `tweak`, `tweak` + 1, …).
pub(crate) fn server_keys(
    ccr: &Ccr,
    q: &[Block],
    delta: Block,
    tweak: u128,
    bits: u32,
) -> ServerKeys {
    let m = mask(bits);
    let mut k0 = Zeroizing::new(Vec::with_capacity(q.len()));
    let mut k1 = Zeroizing::new(Vec::with_capacity(q.len()));
    let mut x = Zeroizing::new([0 as Block; CHUNK]);
    let mut h = Zeroizing::new([0 as Block; CHUNK]);
    for (ci, c) in q.chunks(CHUNK).enumerate() {
        let t = tweak + (ci * CHUNK) as u128;
        let n = c.len();
        ccr.hash_tweaked(c, t, &mut h[..n]);
        k0.extend(h[..n].iter().map(|v| *v as u64 & m));
        for (xi, v) in x.iter_mut().zip(c) {
            *xi = v ^ delta;
        }
        ccr.hash_tweaked(&x[..n], t, &mut h[..n]);
        k1.extend(h[..n].iter().map(|v| *v as u64 & m));
    }
    ServerKeys { k0, k1 }
}

/// Hashes the client's COT values into its choice bits and chosen keys.
pub(crate) fn client_keys(ccr: &Ccr, t: &[Block], tweak: u128, bits: u32) -> ClientKeys {
    let m = mask(bits);
    let mut k = Zeroizing::new(Vec::with_capacity(t.len()));
    let mut h = Zeroizing::new([0 as Block; CHUNK]);
    for (ci, c) in t.chunks(CHUNK).enumerate() {
        let n = c.len();
        ccr.hash_tweaked(c, tweak + (ci * CHUNK) as u128, &mut h[..n]);
        k.extend(h[..n].iter().map(|v| *v as u64 & m));
    }
    let mut c = vec![0u64; t.len().div_ceil(64)];
    for (w, chunk) in c.iter_mut().zip(t.chunks(64)) {
        *w = chunk
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, x)| acc | ((*x as u64 & 1) << i));
    }
    ClientKeys {
        c: Bits::from_words(c, t.len()),
        k,
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
