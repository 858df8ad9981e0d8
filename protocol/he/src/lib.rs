//! BFV linear layers for the offline phase: the client learns L(mask) − s, the server keeps s.
//!
//! Coefficient encoding over Z_q[X]/(X^8192 + 1) with plaintext modulus t = 2^k: one
//! plaintext–ciphertext product per (input block, output group), no rotations. SEAL (via
//! `sealy`) supplies the NTT-friendly primes and its HE-standard 128-bit security check; the
//! ring arithmetic the protocol needs and SEAL's safe API lacks (NTT-form weights prepared once,
//! seeded ciphertexts, modulus switching to 2^b, partial replies, flooding) is done here in Rust.
//! Parameters, noise analysis and message formats: `docs/protocol.md`, "HE parameters".
//! Set `PI_HE_NO_IFMA=1` to force the portable (non-AVX-512) NTT path.

#![warn(missing_docs)]

mod arith;
mod bfv;
mod client;
mod error;
mod params;
mod reference;
mod sample;
mod server;
mod shape;
#[cfg(test)]
mod tests;
mod wire;

pub use client::{client_linear, ClientHe};
pub use error::HeError;
pub use params::{
    HeParams, CBD_ETA, DEFAULT_FLOOD_BITS, DEFAULT_WEIGHT_L1_BITS, MAX_PRIME_BITS, POLY_DEGREE,
};
pub use server::{
    prepare_layer, prepare_layer_with_cache, server_linear, PreparedLayer, ServerHe,
    PREPARED_CACHE_BYTES,
};
pub use reference::plain_layer;
pub use shape::LinearShape;

use shape::{Canon, CostModel, Plan};

pub(crate) const SETUP_MAGIC: u32 = 0x5049_484B; // "PIHK"

/// The block plan both parties derive from the shape and parameters alone.
pub(crate) fn plan_for(params: &HeParams, canon: &Canon) -> Result<Plan, HeError> {
    let cost = CostModel {
        in_ct_bits: params
            .prime_bits
            .iter()
            .map(|&b| (b as usize * params.n) as f64)
            .sum::<f64>()
            + 256.0,
        c1_bits: params.c1_bits as f64,
        c0_bits: params.c0_bits as f64,
    };
    Plan::choose(canon, params.n, &cost)
}

/// Revealed (coefficient, output index) pairs of output ciphertext (tile t, output group mg).
pub(crate) fn revealed(canon: &Canon, plan: &Plan, t: usize, mg: usize) -> Vec<(usize, usize)> {
    let rows = plan.tile_rows(t, canon.hout);
    let mut v = Vec::with_capacity(plan.mw * rows * canon.wout);
    for m in 0..plan.mw {
        let o = mg * plan.mw + m;
        if o >= canon.cout {
            break;
        }
        for y in 0..rows {
            for x in 0..canon.wout {
                v.push((
                    plan.out_pos(m, y, x),
                    (o * canon.hout + t * plan.ht + y) * canon.wout + x,
                ));
            }
        }
    }
    v
}

/// Block plan summary of a layer: (input ciphertexts, output ciphertexts, C_w, M_w, tile rows).
pub fn plan_summary(
    params: &HeParams,
    shape: &LinearShape,
) -> Result<(usize, usize, usize, usize, usize), HeError> {
    let c = Canon::new(shape)?;
    let p = plan_for(params, &c)?;
    Ok((p.num_inputs(), p.num_outputs(), p.cw, p.mw, p.ht))
}
