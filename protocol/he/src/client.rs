//! Client side: keys, Enc(input share) for each block, and decryption of L(mask) − s.

use std::io::{Read, Write};
use std::sync::Mutex;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;

use crate::bfv::{self, PublicKey, SecretKey};
use crate::keyswitch::{self, GaloisKey};
use crate::params::HeParams;
use crate::shape::{Canon, LinearShape, Plan};
use crate::wire::{
    packed_len, BitReader, BitWriter, LayerReply, LayerRequest, REPLY_MAGIC, REQUEST_MAGIC,
};
use crate::{plan_for, revealed, HeError, Revealed, SETUP_MAGIC};

/// The client's keys and encryption randomness (a ChaCha20 stream seeded from the caller's CSPRNG).
pub struct ClientHe {
    params: HeParams,
    sk: SecretKey,
    pk: PublicKey,
    galois: Vec<GaloisKey>,
    rng: Mutex<ChaCha20Rng>,
}

impl ClientHe {
    /// Generates a fresh secret key, public key and the packing tree's Galois keys.
    pub fn new<G: RngCore + CryptoRng>(params: &HeParams, rng: &mut G) -> Result<Self, HeError> {
        let (sk, pk) = bfv::keygen(params, rng);
        let galois = params
            .galois_elements()
            .into_iter()
            .map(|g| keyswitch::galois_keygen(params, &sk, g, rng))
            .collect();
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Ok(ClientHe {
            params: params.clone(),
            sk,
            pk,
            galois,
            rng: Mutex::new(ChaCha20Rng::from_seed(seed)),
        })
    }

    /// The message the server needs: parameter fingerprint, public key and Galois keys (seeded,
    /// bit-packed).
    pub fn public_setup(&self) -> Vec<u8> {
        let p = &self.params;
        let mut out = Vec::new();
        out.extend_from_slice(&SETUP_MAGIC.to_le_bytes());
        out.extend_from_slice(&p.fingerprint().to_le_bytes());
        out.extend_from_slice(&self.pk.seed);
        out.extend_from_slice(&pack_residues(p, &self.pk.p0));
        for key in &self.galois {
            out.extend_from_slice(&key.seed);
            let widths: Vec<u32> = (0..p.num_primes())
                .flat_map(|_| p.ks_bits.iter().copied())
                .collect();
            out.extend_from_slice(&pack_residues_over(&widths, p.n, &key.b));
        }
        out
    }

    /// The parameters this client runs with.
    pub fn params(&self) -> &HeParams {
        &self.params
    }

    pub(crate) fn sk(&self) -> &SecretKey {
        &self.sk
    }

    #[cfg(test)]
    pub(crate) fn pk_p0(&self) -> &[u64] {
        &self.pk.p0
    }

    fn fresh_seeds(&self, count: usize) -> Vec<([u8; 32], [u8; 32])> {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        (0..count)
            .map(|_| {
                let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
                rng.fill_bytes(&mut a);
                rng.fill_bytes(&mut b);
                (a, b)
            })
            .collect()
    }
}

pub(crate) fn pack_residues(params: &HeParams, poly: &[u64]) -> Vec<u8> {
    pack_residues_over(&params.prime_bits, params.n, poly)
}

/// N residues per width (in order) bit-packed at that width; the inverse of `read_residues_over`.
fn pack_residues_over(widths: &[u32], n: usize, poly: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &bits) in widths.iter().enumerate() {
        let mut w = BitWriter::with_capacity(packed_len(n, bits));
        for &v in &poly[i * n..(i + 1) * n] {
            w.put(v as u128, bits);
        }
        out.extend_from_slice(&w.finish());
    }
    out
}

/// The plaintext coefficients of input block (tile t, channel block cb).
pub(crate) fn input_block(
    canon: &Canon,
    plan: &Plan,
    input: &[u64],
    mask: u64,
    t: usize,
    cb: usize,
) -> Vec<u64> {
    let tile = &plan.tiles[t];
    let cfg = &plan.cfgs[tile.cfg];
    let mut m = vec![0u64; plan.n];
    for cl in 0..cfg.cw {
        let c = cb * cfg.cw + cl;
        if c >= canon.cin {
            break;
        }
        for il in 0..cfg.hi {
            let i = tile.y0 + il;
            if i >= canon.hin {
                break;
            }
            for j in 0..plan.wi {
                if let Some(idx) = canon.input_index(c, i, j) {
                    m[cfg.input_pos(cl, il * plan.wi + j)] = input[idx] & mask;
                }
            }
        }
    }
    m
}

/// The frame of one input ciphertext: the seed of its uniform half, then c0's residues.
pub(crate) fn encrypt_frame(
    params: &HeParams,
    sk: &SecretKey,
    m: &[u64],
    seed_a: &[u8; 32],
    seed_e: &[u8; 32],
) -> Vec<u8> {
    let c0 = bfv::encrypt_sym(params, sk, m, seed_a, &mut ChaCha20Rng::from_seed(*seed_e));
    let mut f = seed_a.to_vec();
    f.extend_from_slice(&pack_residues(params, &c0));
    f
}

/// Client side of one layer: sends Enc(input share), returns L(input) − s mod 2^k (CHW order).
pub fn client_linear<R: Read, W: Write>(
    ch: &mut pi_net::Channel<R, W>,
    he: &ClientHe,
    shape: &LinearShape,
    input: &[u64],
) -> Result<Vec<u64>, HeError> {
    let params = &he.params;
    let canon = Canon::new(shape)?;
    if input.len() != shape.input_len() {
        return Err(HeError::Length {
            what: "input",
            got: input.len(),
            expected: shape.input_len(),
        });
    }
    let plan = plan_for(params, &canon)?;
    let mask = params.t_mask();
    let seeds = he.fresh_seeds(plan.num_inputs());
    let blocks: Vec<(usize, usize)> = (0..plan.tiles.len())
        .flat_map(|t| (0..plan.cfgs[plan.tiles[t].cfg].n_cb).map(move |cb| (t, cb)))
        .collect();
    let frames: Vec<Vec<u8>> = seeds
        .par_iter()
        .zip(&blocks)
        .map(|((seed_a, seed_e), &(t, cb))| {
            let m = input_block(&canon, &plan, input, mask, t, cb);
            encrypt_frame(params, &he.sk, &m, seed_a, seed_e)
        })
        .collect();
    ch.send(&LayerRequest {
        magic: REQUEST_MAGIC,
        params: params.fingerprint(),
        shape: shape.fingerprint(),
        plan: plan.fingerprint(),
        num_cts: plan.num_inputs() as u32,
    })?;
    for f in &frames {
        ch.send_frame(f)?;
    }
    ch.flush()?;
    drop(frames);

    let reply: LayerReply = ch.recv()?;
    if reply.magic != REPLY_MAGIC || reply.num_cts as usize != plan.num_outputs() {
        return Err(HeError::Malformed(format!(
            "reply announces {} ciphertexts, expected {}",
            reply.num_cts,
            plan.num_outputs()
        )));
    }
    let mut cts = Vec::with_capacity(plan.num_outputs());
    let replies = (0..plan.tiles.len())
        .flat_map(|t| (0..plan.cfgs[plan.tiles[t].cfg].n_pack).map(move |pg| (t, pg)));
    for (t, pg) in replies {
        let rev = revealed(&canon, &plan, t, pg);
        let d = plan.cfgs[plan.tiles[t].cfg].d;
        let f = ch.recv_frame()?;
        let want = packed_len(params.n, params.c1_bits) + packed_len(rev.len(), params.c0_bits);
        if f.len() != want {
            return Err(HeError::Malformed(format!(
                "reply ciphertext of {} bytes, expected {want}",
                f.len()
            )));
        }
        cts.push((f, rev, d));
    }
    let parts: Vec<Vec<(usize, u64)>> = cts
        .par_iter()
        .map(|(f, rev, d)| decrypt_reply(params, &he.sk, f, rev, *d))
        .collect();
    let mut out = vec![0u64; shape.output_len()];
    for part in parts {
        for (idx, v) in part {
            out[idx] = v;
        }
    }
    Ok(out)
}

/// Largest decryption noise observed (tests only).
#[cfg(test)]
pub(crate) static MAX_NOISE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Decrypts the revealed coefficients of one reply packed from d products:
/// v = round((c0 + c1·s)/2^(b0−k−L)) mod 2^(k+L) = d·(L(mask) − s), and returns (v/d) mod 2^k.
pub(crate) fn decrypt_reply(
    params: &HeParams,
    sk: &SecretKey,
    frame: &[u8],
    rev: &[Revealed],
    d: usize,
) -> Vec<(usize, u64)> {
    let n = params.n;
    let (b0, b1, k) = (params.c0_bits, params.c1_bits, params.plain_bits);
    let log_d = d.trailing_zeros();
    let c1_len = packed_len(n, b1);
    let mut rd = BitReader::new(&frame[..c1_len]);
    let c1: Vec<u128> = (0..n).map(|_| rd.get(b1)).collect();
    // c1·s over the integers (|·| < N·2^b1) via NTT modulo the leading primes and Garner's CRT.
    let dp = params.dec_primes;
    let prods: Vec<Vec<u64>> = (0..dp)
        .map(|i| {
            let t = &params.ntt[i];
            let mut v: Vec<u64> = c1.iter().map(|&x| t.p.reduce_u128(x)).collect();
            t.forward(&mut v);
            for (j, x) in v.iter_mut().enumerate() {
                *x = t.p.mul(*x, sk.s_ntt[i * n + j]);
            }
            t.inverse(&mut v);
            v
        })
        .collect();
    // Garner constants: inv[i] = (q_0···q_{i−1})^{-1} mod q_i.
    let inv: Vec<u64> = (0..dp)
        .map(|i| {
            let p = &params.ntt[i].p;
            let prod = (0..i).fold(1u64, |acc, j| p.mul(acc, params.ntt[j].p.q % p.q));
            if i == 0 {
                1
            } else {
                p.inv(prod)
            }
        })
        .collect();
    let big_q: u128 = (0..dp).map(|i| params.ntt[i].p.q as u128).product();
    let mut rd = BitReader::new(&frame[c1_len..]);
    rev.iter()
        .map(|r| {
            let (pos, out_idx) = (d * r.y + r.j, r.out);
            // x = Σ h_i·(q_0···q_{i−1}), h_i the mixed-radix digits.
            let mut x: u128 = 0;
            let mut radix: u128 = 1;
            for i in 0..dp {
                let p = &params.ntt[i].p;
                let h = p.mul(p.sub(prods[i][pos], p.reduce_u128(x)), inv[i]);
                x += radix * h as u128;
                radix *= p.q as u128;
            }
            let v = if x > big_q / 2 {
                (x as i128) - big_q as i128
            } else {
                x as i128
            };
            let c0 = rd.get(b0);
            let phase = c0.wrapping_add((v as u128).wrapping_shl(b0 - b1)) & ((1u128 << b0) - 1);
            let m = ((phase + (1u128 << (b0 - k - 1))) >> (b0 - k)) as u64 & ((1u64 << k) - 1);
            #[cfg(test)]
            {
                // Test hook: the largest |phase − m·Δ| seen, to check the noise analysis.
                let err = phase.wrapping_sub((m as u128) << (b0 - k)) & ((1u128 << b0) - 1);
                let err = err.min((1u128 << b0) - err) as u64;
                MAX_NOISE.fetch_max(err, std::sync::atomic::Ordering::Relaxed);
            }
            (out_idx, (m >> log_d) & params.t_mask())
        })
        .collect()
}
