//! Banking the OT ReLU (docs/protocol.md, "Banked preprocessing"): the server's material of a
//! banked set is re-derived from a 32-byte key, the client's is stored with its set.
//!
//! After the offline phase every server value of the material (ROT bits and product shares,
//! triple shares, the low-carry and lift products, the mux-OT keys, the reverse-OT choice and
//! key) is replaced by one drawn from a PRF keyed by the set's key, and the server sends the
//! client the difference between the old value and the new one (`REKEY` frames). The client
//! folds each difference into its own part so that every correlation holds for the new values:
//! * XOR shares (triples, the step-0 product): the client XORs the difference in; a changed
//!   step-0 ROT bit ρ also moves the product ρ·e by dρ·e, which the client (knowing e) adds.
//! * Bit products ρ_S·ρ_C mod 2^b: with ρ'_S = ρ_S ⊕ dρ the product is (1 − 2dρ)·ρ_Sρ_C + dρ·ρ_C,
//!   linear in the old shares with public coefficients; the server's share is then moved to its
//!   PRF value by an additive difference.
//! * Mux OT (server K₀, K₁; client c, K_c): both differences are sent, the client applies its
//!   own.
//! * Reverse OT (server e, K_e; client K₀, K₁): a changed choice swaps the client's pair, then
//!   both client keys move by the key's difference (their difference, the OT's content, stays).
//!
//! Every difference is one-time padded by a fresh PRF output the client never sees, so it is
//! uniform in the client's view, and the online messages of the re-keyed material are those of
//! the original protocol shifted by values the client already holds: the client learns nothing
//! it did not before. The server keeps nothing but the key (derived from the set's seed, sealed
//! in its ticket) and rebuilds its material with [`OtReluServer::restore`] without any message.

use std::io::{Read, Write};

use pi_gc::ReluParams;
use pi_net::Channel;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::{Zeroize, Zeroizing};

use super::bits::{field_bytes, mask, put_fields, take_fields, Bits};
use super::material::{ClientKeys, ClientRun, Run, ServerKeys, ServerRun, Triples};
use super::shape::Shape;
use super::{runs, validate, OtReluClient, OtReluServer, OtReluStats};
use crate::msg::{self, In, Out};
use crate::OtError;

/// ReLUs per `REKEY` frame (a multiple of 64, so frames start on word boundaries).
const CHUNK: usize = 1 << 16;
/// Version of the stored client material.
const STORE_VERSION: u8 = 1;

/// The PRF the server's banked material is drawn from.
fn material_prf(key: &[u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(blake3::derive_key(
        "pi-ot 2025 banked OT ReLU server material v1",
        key,
    ))
}

fn draw_bits(n: usize, rng: &mut ChaCha20Rng) -> Bits {
    let w = (0..n.div_ceil(64)).map(|_| rng.next_u64()).collect();
    Bits::from_words(w, n)
}

fn draw_fields(n: usize, bits: u32, rng: &mut ChaCha20Rng) -> Zeroizing<Vec<u64>> {
    Zeroizing::new((0..n).map(|_| rng.next_u64() & mask(bits)).collect())
}

/// The server material of one non-trivial run, drawn from the PRF (absent parts are zero).
fn draw(s: &Shape, n: usize, rng: &mut ChaCha20Rng) -> ServerRun {
    let rho0 = draw_bits(n, rng);
    let p0 = draw_bits(n, rng);
    let triples = (0..s.j)
        .map(|_| Triples {
            a: draw_bits(n, rng),
            b: draw_bits(n, rng),
            g: draw_bits(n, rng),
        })
        .collect();
    let (cross_rho, cross_pi) = if s.has_f {
        (draw_bits(n, rng), draw_fields(n, s.m, rng))
    } else {
        (Bits::zeros(n), Zeroizing::new(vec![0; n]))
    };
    let mux = ServerKeys {
        k0: draw_fields(n, s.m, rng),
        k1: draw_fields(n, s.m, rng),
    };
    let rev_e = draw_bits(n, rng);
    let rev_k = draw_fields(n, s.m, rng);
    let (lift_rho, lift_pi) = if s.lift {
        (draw_bits(n, rng), draw_fields(n, s.k - s.m, rng))
    } else {
        (Bits::zeros(n), Zeroizing::new(vec![0; n]))
    };
    ServerRun {
        rho0,
        p0,
        triples,
        cross_rho,
        cross_pi,
        mux,
        rev_e,
        rev_k,
        lift_rho,
        lift_pi,
    }
}

/// Bit planes in a `REKEY` payload: ρ₀, p₀, the triples, ρ of the low-carry product, the
/// reverse-OT choice, ρ of the lift product.
fn planes(s: &Shape) -> usize {
    2 + 3 * s.j as usize + s.has_f as usize + 1 + s.lift as usize
}

/// Bytes of a `REKEY` payload for `len` ReLUs of shape `s`: the planes, then the fields (low
/// carry, mux K₀ and K₁, reverse OT, lift).
fn rekey_len(s: &Shape, len: usize) -> usize {
    planes(s) * len.div_ceil(8)
        + field_bytes(len, s.m) * (3 + s.has_f as usize)
        + if s.lift {
            field_bytes(len, s.k - s.m)
        } else {
            0
        }
}

/// (1 − 2d)·v mod 2^bits.
fn signed(d: bool, v: u64, bits: u32) -> u64 {
    (if d { v.wrapping_neg() } else { v }) & mask(bits)
}

/// The differences old − new of ReLUs `lo..lo + len` of one run.
fn differences(s: &Shape, old: &ServerRun, new: &ServerRun, lo: usize, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(rekey_len(s, len));
    let plane = |a: &Bits, b: &Bits, out: &mut Vec<u8>| {
        let x: Vec<u64> = a
            .range(lo, len)
            .iter()
            .zip(b.range(lo, len))
            .map(|(x, y)| x ^ y)
            .collect();
        Bits::put(&x, len, out);
    };
    plane(&old.rho0, &new.rho0, &mut out);
    plane(&old.p0, &new.p0, &mut out);
    for (o, n) in old.triples.iter().zip(&new.triples) {
        plane(&o.a, &n.a, &mut out);
        plane(&o.b, &n.b, &mut out);
        plane(&o.g, &n.g, &mut out);
    }
    if s.has_f {
        plane(&old.cross_rho, &new.cross_rho, &mut out);
    }
    plane(&old.rev_e, &new.rev_e, &mut out);
    if s.lift {
        plane(&old.lift_rho, &new.lift_rho, &mut out);
    }
    // A product share after its random bit changed by d: (1 − 2d)·π, then moved to the new π.
    let product = |rho_o: &Bits, rho_n: &Bits, pi_o: &[u64], pi_n: &[u64], bits: u32| {
        (lo..lo + len)
            .map(|i| {
                let d = rho_o.get(i) ^ rho_n.get(i);
                signed(d, pi_o[i], bits).wrapping_sub(pi_n[i]) & mask(bits)
            })
            .collect::<Vec<u64>>()
    };
    let sub = |a: &[u64], b: &[u64], bits: u32| {
        (lo..lo + len)
            .map(|i| a[i].wrapping_sub(b[i]) & mask(bits))
            .collect::<Vec<u64>>()
    };
    if s.has_f {
        let d = product(
            &old.cross_rho,
            &new.cross_rho,
            &old.cross_pi,
            &new.cross_pi,
            s.m,
        );
        put_fields(&d, s.m, &mut out);
    }
    put_fields(&sub(&old.mux.k0, &new.mux.k0, s.m), s.m, &mut out);
    put_fields(&sub(&old.mux.k1, &new.mux.k1, s.m), s.m, &mut out);
    put_fields(&sub(&old.rev_k, &new.rev_k, s.m), s.m, &mut out);
    if s.lift {
        let b = s.k - s.m;
        let d = product(&old.lift_rho, &new.lift_rho, &old.lift_pi, &new.lift_pi, b);
        put_fields(&d, b, &mut out);
    }
    out
}

fn short(what: &'static str, expected: usize, got: usize) -> OtError {
    OtError::Length {
        what,
        expected,
        got,
    }
}

/// Client: folds one `REKEY` payload (ReLUs `lo..lo + len`, `lo` a multiple of 64) into `mat`.
fn apply(s: &Shape, mat: &mut ClientRun, lo: usize, len: usize, payload: &[u8]) {
    // The caller checked the payload's length, so every read below succeeds.
    let at = lo / 64;
    let mut rest = payload;
    let mut plane = || {
        let (w, r) = Bits::take(rest, len).unwrap_or_default();
        rest = r;
        w
    };
    let d_rho0 = plane();
    let d_p0 = plane();
    let e0 = mat.e0.range(lo, len);
    let fix: Vec<u64> = d_p0
        .iter()
        .zip(&d_rho0)
        .zip(&e0)
        .map(|((p, r), e)| p ^ (r & e))
        .collect();
    mat.p0.xor_words(at, &fix);
    for t in mat.triples.iter_mut() {
        t.a.xor_words(at, &plane());
        t.b.xor_words(at, &plane());
        t.g.xor_words(at, &plane());
    }
    let d_cross = if s.has_f { plane() } else { Vec::new() };
    let d_e = plane();
    let d_lift = if s.lift { plane() } else { Vec::new() };
    let bit = |w: &[u64], i: usize| (w[i / 64] >> (i % 64)) & 1 == 1;
    let mut fields = |bits: u32| {
        let (v, r) = take_fields(rest, len, bits).unwrap_or_default();
        rest = r;
        v
    };
    // (1 − 2d)·π + d·ρ_C + D: the share of the product with the server's new bit.
    let product = |rho: &Bits, pi: &mut [u64], d: &[u64], diff: &[u64], bits: u32| {
        for i in 0..len {
            let di = bit(d, i);
            let v = signed(di, pi[lo + i], bits)
                .wrapping_add(u64::from(di && rho.get(lo + i)))
                .wrapping_add(diff[i]);
            pi[lo + i] = v & mask(bits);
        }
    };
    if s.has_f {
        let diff = fields(s.m);
        product(&mat.cross_rho, &mut mat.cross_pi, &d_cross, &diff, s.m);
    }
    let (d0, d1) = (fields(s.m), fields(s.m));
    for i in 0..len {
        let d = if mat.mux.c.get(lo + i) { d1[i] } else { d0[i] };
        mat.mux.k[lo + i] = mat.mux.k[lo + i].wrapping_sub(d) & mask(s.m);
    }
    let d_rev = fields(s.m);
    for (i, &dr) in d_rev.iter().enumerate().take(len) {
        let j = lo + i;
        if bit(&d_e, i) {
            let (k0, k1) = (mat.rev.k0[j], mat.rev.k1[j]);
            mat.rev.k0[j] = k1;
            mat.rev.k1[j] = k0;
        }
        mat.rev.k0[j] = mat.rev.k0[j].wrapping_sub(dr) & mask(s.m);
        mat.rev.k1[j] = mat.rev.k1[j].wrapping_sub(dr) & mask(s.m);
    }
    if s.lift {
        let b = s.k - s.m;
        let diff = fields(b);
        product(&mat.lift_rho, &mut mat.lift_pi, &d_lift, &diff, b);
    }
}

/// Segments `(lo, len)` of a run of `n` ReLUs, one `REKEY` frame each.
fn chunks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(CHUNK)
        .map(move |lo| (lo, (n - lo).min(CHUNK)))
}

/// Bytes and frames of the `REKEY` frames for `params` (payloads with this crate's framing).
pub fn rekey_traffic(params: &[ReluParams]) -> pi_gc::Flow {
    let mut f = pi_gc::Flow::default();
    for r in runs(params).iter().filter(|r| !r.shape.trivial) {
        for (_, len) in chunks(r.len) {
            let n = msg::HEADER + rekey_len(&r.shape, len) + msg::DIGEST;
            f.bytes += n as u64;
            f.frames += 1;
            f.max_frame = f.max_frame.max(n);
        }
    }
    f
}

impl OtReluServer {
    /// Banked sets: replaces every server value by one drawn from the PRF keyed by `key` and
    /// sends the client the differences, so that [`OtReluServer::restore`] with the same key
    /// and parameters rebuilds this material exactly. Only before any ReLU ran.
    pub fn rekey<R: Read, W: Write>(
        &mut self,
        ch: &mut Channel<R, W>,
        key: &[u8; 32],
    ) -> Result<(), OtError> {
        if self.next != 0 {
            return Err(OtError::Desync(
                "OT ReLU material re-keyed after it was used".into(),
            ));
        }
        let c0 = ch.counters();
        let mut prf = material_prf(key);
        let mut index = 0u64;
        for (run, mat) in self.runs.iter().zip(self.mats.iter_mut()) {
            let Some(old) = mat.as_mut() else { continue };
            let new = draw(&run.shape, run.len, &mut prf);
            for (lo, len) in chunks(run.len) {
                let mut payload = differences(&run.shape, old, &new, lo, len);
                let mut f = Out::new(msg::REKEY, index, len as u64, payload.len());
                f.payload().copy_from_slice(&payload);
                payload.zeroize();
                f.send(ch)?;
                index += 1;
            }
            *old = new;
        }
        ch.flush()?;
        self.stats.rekey_bytes += ch.counters().since(c0).total();
        Ok(())
    }

    /// The material of a banked set, rebuilt from its key (see [`OtReluServer::rekey`]).
    pub fn restore(params: &[ReluParams], key: &[u8; 32]) -> Result<Self, OtError> {
        validate(params)?;
        let runs = runs(params);
        let mut prf = material_prf(key);
        let mats = runs
            .iter()
            .map(|r| (!r.shape.trivial).then(|| draw(&r.shape, r.len, &mut prf)))
            .collect();
        Ok(OtReluServer {
            runs,
            mats,
            total: params.len(),
            next: 0,
            index: 0,
            stats: OtReluStats::default(),
        })
    }
}

/// Digest of the run layout (what stored material must fit).
fn layout_digest(runs: &[Run]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("pi-ot 2025 banked OT ReLU layout v1");
    for r in runs {
        for v in [r.start, r.len] {
            h.update(&(v as u64).to_le_bytes());
        }
        for v in [r.shape.w, r.shape.f, r.shape.k] {
            h.update(&v.to_le_bytes());
        }
    }
    *h.finalize().as_bytes()
}

const STORE_HEADER: usize = 1 + 8 + 32;

/// Bytes of the stored client material of `runs`.
fn stored_len(runs: &[Run]) -> usize {
    let mut n = STORE_HEADER;
    for r in runs {
        let s = &r.shape;
        let b = r.len.div_ceil(8);
        if !s.trivial {
            // e₀, p₀, triples, low-carry ρ, mux choice, lift ρ; then the fields.
            n += b * (2 + 3 * s.j as usize + s.has_f as usize + 1 + s.lift as usize);
            n += field_bytes(r.len, s.m) * (3 + s.has_f as usize);
            if s.lift {
                n += field_bytes(r.len, s.k - s.m);
            }
            n += field_bytes(r.len, s.w);
        }
        n += field_bytes(r.len, s.k);
    }
    n
}

const WHAT: &str = "banked OT ReLU material";

/// Length and header of stored material for `runs` (`total` ReLUs).
fn check(runs: &[Run], total: usize, bytes: &[u8]) -> Result<(), OtError> {
    let want = stored_len(runs);
    if bytes.len() != want {
        return Err(short(WHAT, want, bytes.len()));
    }
    if bytes[0] != STORE_VERSION
        || bytes[1..9] != (total as u64).to_le_bytes()
        || bytes[9..STORE_HEADER] != layout_digest(runs)
    {
        return Err(OtError::Desync(
            "the stored OT ReLU material was made for other ReLU parameters".into(),
        ));
    }
    Ok(())
}

impl OtReluClient {
    /// Banked sets: receives the server's `REKEY` frames and folds them into this material.
    pub fn recv_rekey<R: Read, W: Write>(&mut self, ch: &mut Channel<R, W>) -> Result<(), OtError> {
        if self.next != 0 {
            return Err(OtError::Desync(
                "OT ReLU material re-keyed after it was used".into(),
            ));
        }
        let c0 = ch.counters();
        let mut index = 0u64;
        for (run, mat) in self.runs.iter().zip(self.mats.iter_mut()) {
            let Some(mat) = mat.as_mut() else { continue };
            for (lo, len) in chunks(run.len) {
                let f = In::recv(
                    ch,
                    msg::REKEY,
                    index,
                    len as u64,
                    rekey_len(&run.shape, len),
                )?
                .0;
                apply(&run.shape, mat, lo, len, f.payload());
                index += 1;
            }
        }
        self.stats.rekey_bytes += ch.counters().since(c0).total();
        Ok(())
    }

    /// The material as bytes, to be stored with a banked set (secret: the client's shares and
    /// masks).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(stored_len(&self.runs)));
        out.push(STORE_VERSION);
        out.extend_from_slice(&(self.total as u64).to_le_bytes());
        out.extend_from_slice(&layout_digest(&self.runs));
        for (r, mat) in self.runs.iter().zip(&self.mats) {
            let s = &r.shape;
            if let Some(m) = mat.as_ref().filter(|_| !s.trivial) {
                let mut bits = |b: &Bits| Bits::put(b.words(), r.len, &mut out);
                bits(&m.e0);
                bits(&m.p0);
                for t in &m.triples {
                    bits(&t.a);
                    bits(&t.b);
                    bits(&t.g);
                }
                if s.has_f {
                    bits(&m.cross_rho);
                }
                bits(&m.mux.c);
                if s.lift {
                    bits(&m.lift_rho);
                }
                if s.has_f {
                    put_fields(&m.cross_pi, s.m, &mut out);
                }
                put_fields(&m.mux.k, s.m, &mut out);
                put_fields(&m.rev.k0, s.m, &mut out);
                put_fields(&m.rev.k1, s.m, &mut out);
                if s.lift {
                    put_fields(&m.lift_pi, s.k - s.m, &mut out);
                }
                put_fields(&m.b, s.w, &mut out);
            }
            put_fields(&self.n[r.start..r.start + r.len], s.k, &mut out);
        }
        out
    }

    /// Whether `bytes` has the length and header of material stored for the ReLUs `params`
    /// (a cheap check before a banked set is offered; [`OtReluClient::from_bytes`] repeats it).
    pub fn check_stored(params: &[ReluParams], bytes: &[u8]) -> Result<(), OtError> {
        validate(params)?;
        check(&runs(params), params.len(), bytes)
    }

    /// Material stored by [`OtReluClient::to_bytes`] for the ReLUs `params`.
    pub fn from_bytes(params: &[ReluParams], bytes: &[u8]) -> Result<Self, OtError> {
        validate(params)?;
        let runs = runs(params);
        check(&runs, params.len(), bytes)?;
        let want = bytes.len();
        let mut rest = &bytes[STORE_HEADER..];
        let mut mats = Vec::with_capacity(runs.len());
        let mut n = Zeroizing::new(Vec::with_capacity(params.len()));
        for r in &runs {
            let (s, len) = (r.shape, r.len);
            let mut bits = || -> Result<Bits, OtError> {
                let (w, x) = Bits::take(rest, len).ok_or_else(|| short(WHAT, want, 0))?;
                rest = x;
                Ok(Bits::from_words(w, len))
            };
            if s.trivial {
                mats.push(None);
            } else {
                let e0 = bits()?;
                let p0 = bits()?;
                let mut triples = Vec::with_capacity(s.j as usize);
                for _ in 0..s.j {
                    triples.push(Triples {
                        a: bits()?,
                        b: bits()?,
                        g: bits()?,
                    });
                }
                let cross_rho = if s.has_f { bits()? } else { Bits::zeros(len) };
                let mux_c = bits()?;
                let lift_rho = if s.lift { bits()? } else { Bits::zeros(len) };
                let mut fields = |b: u32| -> Result<Zeroizing<Vec<u64>>, OtError> {
                    let (v, x) = take_fields(rest, len, b).ok_or_else(|| short(WHAT, want, 0))?;
                    rest = x;
                    Ok(Zeroizing::new(v))
                };
                let cross_pi = if s.has_f {
                    fields(s.m)?
                } else {
                    Zeroizing::new(vec![0; len])
                };
                let mux_k = fields(s.m)?;
                let rev = ServerKeys {
                    k0: fields(s.m)?,
                    k1: fields(s.m)?,
                };
                let lift_pi = if s.lift {
                    fields(s.k - s.m)?
                } else {
                    Zeroizing::new(vec![0; len])
                };
                let b = fields(s.w)?;
                mats.push(Some(ClientRun {
                    e0,
                    p0,
                    triples,
                    cross_rho,
                    cross_pi,
                    mux: ClientKeys { c: mux_c, k: mux_k },
                    rev,
                    lift_rho,
                    lift_pi,
                    b,
                }));
            }
            let (v, x) = take_fields(rest, len, s.k).ok_or_else(|| short(WHAT, want, 0))?;
            rest = x;
            n.extend_from_slice(&v);
        }
        Ok(OtReluClient {
            runs,
            mats,
            n,
            total: params.len(),
            next: 0,
            index: 0,
            stats: OtReluStats::default(),
        })
    }
}
