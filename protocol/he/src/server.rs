//! Server side: weight preparation at model load, and the per-layer reply Enc(L(mask) − s).

use std::io::{Read, Write};
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;
use zeroize::Zeroize;

use crate::arith::Acc52;
use crate::bfv::{self, PublicKey};
use crate::keyswitch::{self, GaloisKey, NttCt};
use crate::params::{HeParams, CBD_ETA};
use crate::sample;
use crate::shape::{Canon, LinearShape, Plan};
use crate::wire::{
    packed_len, BitReader, BitWriter, LayerReply, LayerRequest, REPLY_MAGIC, REQUEST_MAGIC,
};
use crate::{plan_for, revealed, HeError, Revealed, SETUP_MAGIC};

/// Largest NTT-form kernel cache [`prepare_layer`] keeps for one layer; kernels beyond it are
/// transformed on the fly in every session. A server bounds all its layers together instead
/// ([`prepare_layer_with_cache`] with what is left of its budget).
pub const PREPARED_CACHE_BYTES: usize = 256 << 20;

/// The server's view of one client: its validated public key and Galois keys.
pub struct ServerHe {
    params: HeParams,
    pk: PublicKey,
    galois: Vec<GaloisKey>,
    /// Shoup constants of p0 and p1 (the public key is a fixed multiplicand for the session).
    pk_shoup: (Vec<u64>, Vec<u64>),
}

impl ServerHe {
    /// Validates the client's setup message (parameter fingerprint, sizes, residues < q_i).
    pub fn new(params: &HeParams, client_setup: &[u8]) -> Result<Self, HeError> {
        let n = params.n;
        let (pk_body, key_body) = setup_parts(params);
        let digits = params.num_primes();
        let elements = params.galois_elements();
        let want = setup_len(params);
        if client_setup.len() != want {
            return Err(HeError::Malformed(format!(
                "setup has {} bytes, expected {want}",
                client_setup.len()
            )));
        }
        let (mut magic, mut fp) = ([0u8; 4], [0u8; 8]);
        magic.copy_from_slice(&client_setup[0..4]);
        fp.copy_from_slice(&client_setup[4..12]);
        let (magic, fp) = (u32::from_le_bytes(magic), u64::from_le_bytes(fp));
        if magic != SETUP_MAGIC {
            return Err(HeError::Malformed("setup magic".into()));
        }
        if fp != params.fingerprint() {
            return Err(HeError::Malformed(
                "setup is for different HE parameters".into(),
            ));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&client_setup[12..44]);
        let mut off = 44 + pk_body;
        let p0 = read_residues(params, &client_setup[44..off])?;
        let p1 = sample::uniform_from_seed(params, &seed);
        let mut galois = Vec::with_capacity(elements.len());
        for g in elements {
            let mut kseed = [0u8; 32];
            kseed.copy_from_slice(&client_setup[off..off + 32]);
            off += 32;
            let qs = params
                .ks_ntt
                .iter()
                .map(|t| t.p.q)
                .cycle()
                .take(digits * params.ks_ntt.len());
            let widths = params.ks_bits.iter().copied().cycle();
            let b = read_residues_over(qs, widths, n, &client_setup[off..off + key_body])?;
            off += key_body;
            galois.push(GaloisKey {
                g,
                seed: kseed,
                b,
                a: keyswitch::key_uniform(params, &kseed),
            });
        }
        let shoup = |v: &[u64]| -> Vec<u64> {
            v.iter()
                .enumerate()
                .map(|(j, &x)| params.ntt[j / params.n].p.shoup(x))
                .collect()
        };
        let pk_shoup = (shoup(&p0), shoup(&p1));
        Ok(ServerHe {
            params: params.clone(),
            pk: PublicKey { seed, p0, p1 },
            galois,
            pk_shoup,
        })
    }

    /// The parameters this session runs with.
    pub fn params(&self) -> &HeParams {
        &self.params
    }

    #[cfg(test)]
    pub(crate) fn pk_p0(&self) -> &[u64] {
        &self.pk.p0
    }

    pub(crate) fn galois(&self) -> &[GaloisKey] {
        &self.galois
    }
}

/// Reads L·N bit-packed residues (prime-major) and checks each is below its prime.
pub(crate) fn read_residues(params: &HeParams, bytes: &[u8]) -> Result<Vec<u64>, HeError> {
    read_residues_over(
        params.primes.iter().copied(),
        params.prime_bits.iter().copied(),
        params.n,
        bytes,
    )
}

/// Reads N bit-packed residues per listed prime (at the listed widths), each checked < its prime.
fn read_residues_over(
    primes: impl Iterator<Item = u64>,
    mut widths: impl Iterator<Item = u32>,
    n: usize,
    bytes: &[u8],
) -> Result<Vec<u64>, HeError> {
    let mut out = Vec::new();
    let mut off = 0;
    for q in primes {
        let bits = widths
            .next()
            .ok_or_else(|| HeError::Malformed("residue widths".into()))?;
        let len = packed_len(n, bits);
        let chunk = bytes
            .get(off..off + len)
            .ok_or_else(|| HeError::Malformed("truncated residues".into()))?;
        let mut r = BitReader::new(chunk);
        for _ in 0..n {
            let v = r.get(bits) as u64;
            if v >= q {
                return Err(HeError::Malformed(
                    "residue not reduced modulo its prime".into(),
                ));
            }
            out.push(v);
        }
        off += len;
    }
    if off != bytes.len() {
        return Err(HeError::Malformed("trailing bytes after residues".into()));
    }
    Ok(out)
}

/// Kernel polynomials of one band geometry, block (mg, cb) at mg·n_cb + cb; None = structurally zero.
type Kernels<T> = Vec<Option<T>>;

/// Weights of one layer transformed for the HE phase (Send + Sync; share across sessions).
pub struct PreparedLayer {
    params: HeParams,
    shape: LinearShape,
    canon: Canon,
    plan: Plan,
    /// Per tile geometry, kernel polynomial of block (mg, cb) as (coefficient, centred weight);
    /// None = structurally zero.
    sparse: Vec<Kernels<Vec<(u32, i64)>>>,
    /// The same kernels in NTT form, in block order as far as the layer's cache allowance went
    /// (None = structurally zero or not cached: transformed on the fly from `sparse`).
    ntt: Vec<Kernels<Arc<Vec<u64>>>>,
    /// Kernels (non-zero blocks) in all, and how many of them are cached in NTT form.
    kernels: usize,
    cached: usize,
    l1_log2: f64,
}

impl PreparedLayer {
    /// The layer shape.
    pub fn shape(&self) -> &LinearShape {
        &self.shape
    }

    /// Input and reply ciphertext counts of the block plan.
    pub fn ciphertexts(&self) -> (usize, usize) {
        (self.plan.num_inputs(), self.plan.num_outputs())
    }

    /// Whether every kernel is cached in NTT form.
    pub fn is_cached(&self) -> bool {
        self.cached == self.kernels
    }

    /// Kernel plaintexts of the layer (non-zero blocks of every geometry).
    pub fn kernels(&self) -> usize {
        self.kernels
    }

    /// Kernels cached in NTT form; the others are transformed again in every session.
    pub fn cached_kernels(&self) -> usize {
        self.cached
    }

    /// Bytes of the NTT-form kernel cache.
    pub fn cached_bytes(&self) -> usize {
        self.cached * kernel_bytes(&self.params)
    }

    /// log2 of the largest kernel-group ℓ1 norm (what the noise budget must cover).
    pub fn weight_l1_log2(&self) -> f64 {
        self.l1_log2
    }
}

/// Bytes of one kernel plaintext in NTT form (N residues per chain prime).
pub fn kernel_bytes(params: &HeParams) -> usize {
    params.n * params.num_primes() * 8
}

pub(crate) fn kernel_to_ntt(params: &HeParams, taps: &[(u32, i64)]) -> Vec<u64> {
    let mut out = Vec::new();
    kernel_to_ntt_into(params, taps, &mut out);
    out
}

/// The kernel polynomial of `taps` in NTT form, written into a reused buffer.
fn kernel_to_ntt_into(params: &HeParams, taps: &[(u32, i64)], out: &mut Vec<u64>) {
    let n = params.n;
    out.clear();
    out.resize(n * params.num_primes(), 0);
    for (i, t) in params.ntt.iter().enumerate() {
        let dst = &mut out[i * n..(i + 1) * n];
        let q = t.p.q;
        for &(pos, w) in taps {
            let m = w.unsigned_abs();
            let r = if m < q { m } else { m % q };
            dst[pos as usize] = if w < 0 && r != 0 { q - r } else { r };
        }
        t.forward(dst);
    }
}

/// Transforms a layer's weights ([c_out, c_in/groups, kh, kw] or [out, in]) once, at model load.
pub fn prepare_layer(
    params: &HeParams,
    shape: &LinearShape,
    weights: &[i64],
) -> Result<PreparedLayer, HeError> {
    prepare_layer_with_cache(params, shape, weights, PREPARED_CACHE_BYTES)
}

/// As `prepare_layer`, caching NTT-form kernels (in block order) as long as they fit in
/// `max_cache_bytes`; the others are transformed on the fly in every session.
pub fn prepare_layer_with_cache(
    params: &HeParams,
    shape: &LinearShape,
    weights: &[i64],
    max_cache_bytes: usize,
) -> Result<PreparedLayer, HeError> {
    let canon = Canon::new(shape)?;
    if weights.len() != shape.weight_len() {
        return Err(HeError::Length {
            what: "weights",
            got: weights.len(),
            expected: shape.weight_len(),
        });
    }
    let plan = plan_for(params, &canon)?;
    let k = params.ring_bits;
    // Centred representative of w mod 2^k: the smallest plaintext, hence the smallest noise.
    let centred: Vec<i64> = weights
        .iter()
        .map(|&w| ((w as u64) << (64 - k)) as i64 >> (64 - k))
        .collect();
    let mut sparse = Vec::with_capacity(plan.cfgs.len());
    let mut max_l1 = 0f64;
    for cfg in &plan.cfgs {
        let mut blocks = Vec::with_capacity(cfg.n_mg * cfg.n_cb);
        for mg in 0..cfg.n_mg {
            let mut l1_mg = 0f64;
            for cb in 0..cfg.n_cb {
                let mut taps = Vec::new();
                let mut connected = false;
                for m in 0..cfg.mw {
                    let o = mg * cfg.mw + m;
                    if o >= canon.cout {
                        break;
                    }
                    for cl in 0..cfg.cw {
                        let c = cb * cfg.cw + cl;
                        if c >= canon.cin {
                            break;
                        }
                        if !canon.connected(o, c) {
                            continue;
                        }
                        connected = true;
                        for ky in 0..canon.kh {
                            for kx in 0..canon.kw {
                                if let Some(idx) = canon.weight_index(o, c, ky, kx) {
                                    let w = centred[idx];
                                    if w != 0 {
                                        let (pos, neg) = cfg.kernel_pos(&plan, m, cl, ky, kx);
                                        taps.push((pos as u32, if neg { -w } else { w }));
                                        l1_mg += (w as f64).abs();
                                    }
                                }
                            }
                        }
                    }
                }
                blocks.push(if connected { Some(taps) } else { None });
            }
            max_l1 = max_l1.max(l1_mg);
        }
        sparse.push(blocks);
    }
    let l1_log2 = if max_l1 > 0.0 { max_l1.log2() } else { 0.0 };
    if max_l1 > (2f64).powi(params.weight_l1_bits as i32) {
        return Err(HeError::WeightsTooLarge {
            actual_bits: l1_log2,
            budget_bits: params.weight_l1_bits,
        });
    }
    let kernels: usize = sparse
        .iter()
        .map(|b| b.iter().filter(|s| s.is_some()).count())
        .sum();
    let cached = kernels.min(max_cache_bytes / kernel_bytes(params));
    let mut left = cached;
    let ntt = sparse
        .iter()
        .map(|blocks| {
            // The first `left` non-zero blocks of this geometry are cached.
            let chosen: Vec<Option<&Vec<(u32, i64)>>> = blocks
                .iter()
                .map(|s| {
                    let take = s.is_some() && left > 0;
                    left -= take as usize;
                    s.as_ref().filter(|_| take)
                })
                .collect();
            chosen
                .par_iter()
                .map(|s| s.map(|t| Arc::new(kernel_to_ntt(params, t))))
                .collect()
        })
        .collect();
    Ok(PreparedLayer {
        params: params.clone(),
        shape: shape.clone(),
        canon,
        plan,
        sparse,
        ntt,
        kernels,
        cached,
        l1_log2,
    })
}

/// One reply frame and the (output index, mask s) pairs it carries.
type ReplyCt = (Vec<u8>, Vec<(usize, u64)>);

/// One received input ciphertext in NTT form: c0 from the wire, c1 = a from its seed.
/// Bytes of the public-key body and of one Galois key body in the setup message.
fn setup_parts(params: &HeParams) -> (usize, usize) {
    let n = params.n;
    let pk_body: usize = params.prime_bits.iter().map(|&b| packed_len(n, b)).sum();
    let key_body: usize = params.num_primes()
        * params
            .ks_bits
            .iter()
            .map(|&b| packed_len(n, b))
            .sum::<usize>();
    (pk_body, key_body)
}

/// Exact length of the client's setup message (`ClientHe::public_setup`).
pub fn setup_len(params: &HeParams) -> usize {
    let (pk_body, key_body) = setup_parts(params);
    4 + 8 + 32 + pk_body + params.galois_elements().len() * (32 + key_body)
}

pub(crate) struct InputCt {
    pub(crate) c0: Vec<u64>,
    pub(crate) a: Vec<u64>,
}

/// One input frame (checked to be a whole ciphertext) in NTT form: c0 from the wire, a from its seed.
pub(crate) fn parse_input(params: &HeParams, f: &[u8]) -> Result<InputCt, HeError> {
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&f[..32]);
    let c0 = read_residues(params, &f[32..])?;
    Ok(InputCt {
        c0,
        a: sample::uniform_from_seed(params, &seed),
    })
}

/// Server side of one layer: returns s (len = output elements); the client learns L(mask) − s.
///
/// The masks s come from a fresh seed drawn from `rng` (see [`server_linear_seeded`]).
pub fn server_linear<R: Read, W: Write, G: RngCore + CryptoRng>(
    ch: &mut pi_net::Channel<R, W>,
    he: &ServerHe,
    layer: &PreparedLayer,
    rng: &mut G,
) -> Result<Vec<u64>, HeError> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(seed.as_mut());
    server_linear_seeded(ch, he, layer, &seed, rng)
}

/// The server's shares s of a layer with `len` outputs whose masks derive from `mask_seed`
/// (what [`server_linear_seeded`] returned), re-derived without any HE work.
pub fn server_masks(params: &HeParams, mask_seed: &[u8; 32], len: usize) -> Vec<u64> {
    let mut v = full_masks(mask_seed, len);
    v.iter_mut().for_each(|s| *s &= params.t_mask());
    v
}

/// Mask stream of a layer: output element i takes the i-th u64 of ChaCha20(mask_seed). The
/// ciphertext hides s modulo 2^(k+L)/d (its low bits are the share), so the share s mod 2^k does
/// not depend on the reply's packing factor d and can be re-derived from the seed alone.
fn full_masks(mask_seed: &[u8; 32], len: usize) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(*mask_seed);
    (0..len).map(|_| rng.next_u64()).collect()
}

/// Server side of one layer with the masks s drawn from their own stream, seeded by `mask_seed`
/// (so [`server_masks`] re-derives them later); `rng` supplies the re-randomisation and flooding
/// noise. Returns s mod 2^k (len = output elements); the client learns L(mask) − s.
pub fn server_linear_seeded<R: Read, W: Write, G: RngCore + CryptoRng>(
    ch: &mut pi_net::Channel<R, W>,
    he: &ServerHe,
    layer: &PreparedLayer,
    mask_seed: &[u8; 32],
    rng: &mut G,
) -> Result<Vec<u64>, HeError> {
    let params = &he.params;
    if params.fingerprint() != layer.params.fingerprint() {
        return Err(HeError::Params(
            "layer was prepared for different HE parameters".into(),
        ));
    }
    let plan = &layer.plan;
    let req: LayerRequest = ch.recv()?;

    if req.magic != REQUEST_MAGIC
        || req.params != params.fingerprint()
        || req.shape != layer.shape.fingerprint()
    {
        return Err(HeError::Malformed(
            "layer request for other parameters or another layer".into(),
        ));
    }
    if req.plan != plan.fingerprint() {
        return Err(HeError::Malformed(
            "the client cut this layer into other blocks than the server: the two sides \
             disagree on the HE planner (different versions or link settings)"
                .into(),
        ));
    }
    if req.num_cts as usize != plan.num_inputs() {
        return Err(HeError::Malformed(format!(
            "{} input ciphertexts announced, layer needs {}",
            req.num_cts,
            plan.num_inputs()
        )));
    }
    let n = params.n;
    let ct_len = 32
        + params
            .prime_bits
            .iter()
            .map(|&b| packed_len(n, b))
            .sum::<usize>();
    let mut frames = Vec::with_capacity(plan.num_inputs());
    for _ in 0..plan.num_inputs() {
        let f = ch.recv_frame()?;
        if f.len() != ct_len {
            return Err(HeError::Malformed(format!(
                "ciphertext of {} bytes, expected {ct_len}",
                f.len()
            )));
        }
        frames.push(f);
    }
    let inputs: Vec<InputCt> = frames
        .par_iter()
        .map(|f| parse_input(params, f))
        .collect::<Result<_, HeError>>()?;
    drop(frames);

    // Work units: (geometry, pack group), each covering every tile of that geometry.
    let units: Vec<(usize, usize, [u8; 32])> = plan
        .cfgs
        .iter()
        .enumerate()
        .flat_map(|(ci, cfg)| (0..cfg.n_pack).map(move |pg| (ci, pg)))
        .map(|(ci, pg)| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            (ci, pg, s)
        })
        .collect();
    let masks = zeroize::Zeroizing::new(full_masks(mask_seed, layer.shape.output_len()));
    let done: Vec<Vec<(usize, ReplyCt)>> = units
        .par_iter()
        .map(|&(ci, pg, seed)| {
            compute_unit(
                he,
                layer,
                &inputs,
                &masks,
                ci,
                pg,
                &mut ChaCha20Rng::from_seed(seed),
            )
        })
        .collect();
    // Reply order: tile-major, then pack group.
    let mut slots: Vec<Vec<Option<ReplyCt>>> = plan
        .tiles
        .iter()
        .map(|t| vec![None; plan.cfgs[t.cfg].n_pack])
        .collect();
    for ((_, pg, _), per_tile) in units.iter().zip(done) {
        for (t, reply) in per_tile {
            slots[t][*pg] = Some(reply);
        }
    }
    let mut s_out = vec![0u64; layer.shape.output_len()];
    ch.send(&LayerReply {
        magic: REPLY_MAGIC,
        num_cts: plan.num_outputs() as u32,
    })?;
    for (bytes, mut masks) in slots.into_iter().flatten().flatten() {
        ch.send_frame(&bytes)?;
        for &(idx, s) in &masks {
            s_out[idx] = s;
        }
        masks.zeroize();
    }
    ch.flush()?;
    Ok(s_out)
}

/// Products of pack group pg for every tile of geometry ci, packed, finished and serialised.
fn compute_unit(
    he: &ServerHe,
    layer: &PreparedLayer,
    inputs: &[InputCt],
    masks: &[u64],
    ci: usize,
    pg: usize,
    rng: &mut ChaCha20Rng,
) -> Vec<(usize, ReplyCt)> {
    let params = &he.params;
    let plan = &layer.plan;
    let cfg = &plan.cfgs[ci];
    let ln = params.n * params.num_primes();
    let tables = &params.ntt[..];
    let tiles: Vec<usize> = (0..plan.tiles.len())
        .filter(|&t| plan.tiles[t].cfg == ci)
        .collect();
    let offsets: Vec<usize> = tiles.iter().map(|&t| plan.input_offset(t)).collect();
    let mut products: Vec<Vec<Option<NttCt>>> = vec![vec![None; cfg.d]; tiles.len()];
    let mut buf = Vec::new();
    let mut acc0: Vec<Acc52> = tiles.iter().map(|_| Acc52::new(ln)).collect();
    let mut acc1: Vec<Acc52> = tiles.iter().map(|_| Acc52::new(ln)).collect();
    for j in 0..cfg.d {
        let mg = pg * cfg.d + j;
        if mg >= cfg.n_mg {
            break;
        }
        acc0.iter_mut()
            .chain(acc1.iter_mut())
            .for_each(Acc52::clear);
        for cb in 0..cfg.n_cb {
            let block = mg * cfg.n_cb + cb;
            let cached;
            let k: &[u64] = match (&layer.ntt[ci][block], &layer.sparse[ci][block]) {
                (Some(k), _) => {
                    cached = k.clone();
                    &cached
                }
                (None, Some(taps)) => {
                    kernel_to_ntt_into(params, taps, &mut buf);
                    &buf
                }
                (None, None) => continue,
            };
            for (ti, &off) in offsets.iter().enumerate() {
                let ct = &inputs[off + cb];
                acc0[ti].mac(&ct.c0, k, tables);
                acc1[ti].mac(&ct.a, k, tables);
            }
        }
        for ((p, a0), a1) in products.iter_mut().zip(&acc0).zip(&acc1) {
            p[j] = Some(NttCt {
                c0: a0.reduce(tables),
                c1: a1.reduce(tables),
            });
        }
    }
    tiles
        .iter()
        .enumerate()
        .map(|(ti, &t)| {
            let cts = std::mem::take(&mut products[ti]);
            let packed = keyswitch::pack(params, &he.galois, cts);
            let rev = revealed(&layer.canon, plan, t, pg);
            (t, finish_reply(params, he, packed, &rev, masks, cfg.d, rng))
        })
        .collect()
}

/// Re-randomise a packed reply, subtract the masks, flood, switch to 2^b and serialise it.
pub(crate) fn finish_reply(
    params: &HeParams,
    he: &ServerHe,
    packed: Option<NttCt>,
    rev: &[Revealed],
    stream: &[u64],
    d: usize,
    rng: &mut ChaCha20Rng,
) -> ReplyCt {
    let n = params.n;
    let ln = n * params.num_primes();
    let NttCt { mut c0, mut c1 } = packed.unwrap_or_else(|| NttCt {
        c0: vec![0; ln],
        c1: vec![0; ln],
    });
    // Fresh public-key encryption of zero: c1 becomes an RLWE sample the client cannot open.
    let u = sample::ternary(rng, n);
    let u_ntt = bfv::small_to_ntt(params, &u);
    let (pk, (p0s, p1s)) = (&he.pk, &he.pk_shoup);
    for (i, t) in params.ntt.iter().enumerate() {
        let r = i * n..(i + 1) * n;
        for j in r.clone() {
            c0[j] = t.p.add(c0[j], t.p.mul_shoup(u_ntt[j], pk.p0[j], p0s[j]));
            c1[j] = t.p.add(c1[j], t.p.mul_shoup(u_ntt[j], pk.p1[j], p1s[j]));
        }
        t.inverse(&mut c0[r.clone()]);
        t.inverse(&mut c1[r]);
    }
    let e2 = sample::cbd(rng, n);
    for (i, t) in params.ntt.iter().enumerate() {
        for j in 0..n {
            let e = e2[j] as i64;
            c1[i * n + j] = t.p.add(
                c1[i * n + j],
                if e < 0 { t.p.q - (-e) as u64 } else { e as u64 },
            );
        }
    }
    // Flooding: uniform in [−B_f, B_f], B_f = 2^σ·4^L·(2^W·(η+½) + 1 + 2^20) ≥ 2^σ × the
    // weight-dependent noise of a reply packed from up to 2^L products (docs/protocol.md).
    let (sigma, w, l) = (params.flood_bits, params.weight_l1_bits, params.pack_bits);
    let b_pub: u128 = ((2 * CBD_ETA as u128 + 1) << (w - 1)) + 1 + (1 << 20);
    let b_f: u128 = (b_pub << (2 * l)) << sigma;
    // The client sees d·(L(c) − s) mod 2^(k+L): s is uniform modulo 2^(k+L)/d.
    let log_d = d.trailing_zeros();
    let s_mask = (1u64 << (params.plain_bits - log_d)) - 1;
    let t_mask = (1u64 << params.plain_bits) - 1;
    let mut masks = Vec::with_capacity(rev.len());
    for r in rev {
        let pos = d * r.y + r.j;
        let s = stream.get(r.out).copied().unwrap_or(0) & s_mask;
        let m_neg = (s << log_d).wrapping_neg() & t_mask;
        let e1 = sample::cbd1(rng) as i128;
        let noise = e1 + sample::uniform_i128(rng, b_f);
        for (i, t) in params.ntt.iter().enumerate() {
            let j = i * n + pos;
            c0[j] = t.p.add(
                t.p.add(c0[j], bfv::encode_scaled(params, i, m_neg)),
                t.p.reduce_i128(noise),
            );
        }
        masks.push((r.out, s & params.t_mask()));
    }
    let (b0, b1) = (params.c0_bits, params.c1_bits);
    let mut wtr = BitWriter::with_capacity(packed_len(n, b1) + packed_len(rev.len(), b0) + 16);
    for j in 0..n {
        wtr.put(
            bfv::switch_to_pow2(params, &c1, j, b1, &params.switch_c1),
            b1,
        );
    }
    let mut bytes = wtr.finish();
    let mut wtr = BitWriter::with_capacity(packed_len(rev.len(), b0));
    for r in rev {
        wtr.put(
            bfv::switch_to_pow2(params, &c0, d * r.y + r.j, b0, &params.switch_c0),
            b0,
        );
    }
    bytes.extend_from_slice(&wtr.finish());
    (bytes, masks)
}
