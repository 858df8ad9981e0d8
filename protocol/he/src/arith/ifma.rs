//! AVX-512 IFMA butterflies (52-bit lanes, as in Intel HEXL); stages with span < 8 use permutes.

use std::arch::x86_64::*;

use super::ntt::NttTable;

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_shoup52(x: __m512i, w: __m512i, ws: __m512i, q: __m512i) -> __m512i {
    // x·w − ⌊x·ws/2^52⌋·q, exact modulo 2^52, lies in [0, 2q) for x < 2^52.
    let zero = _mm512_setzero_si512();
    let qh = _mm512_madd52hi_epu64(zero, x, ws);
    let l1 = _mm512_madd52lo_epu64(zero, x, w);
    let l2 = _mm512_madd52lo_epu64(zero, qh, q);
    _mm512_and_si512(
        _mm512_sub_epi64(l1, l2),
        _mm512_set1_epi64(((1u64 << 52) - 1) as i64),
    )
}

/// Lane indices that gather the x (first) and y (second) halves of blocks of span t from two
/// vectors, and spread them back.
type Lanes = [i64; 8];

/// (gather x, gather y, scatter to first vector, scatter to second vector, twiddle spread).
fn small_indices(span: usize) -> (Lanes, Lanes, Lanes, Lanes, Lanes) {
    match span {
        4 => (
            [0, 1, 2, 3, 8, 9, 10, 11],
            [4, 5, 6, 7, 12, 13, 14, 15],
            [0, 1, 2, 3, 8, 9, 10, 11],
            [4, 5, 6, 7, 12, 13, 14, 15],
            [0, 0, 0, 0, 1, 1, 1, 1],
        ),
        2 => (
            [0, 1, 4, 5, 8, 9, 12, 13],
            [2, 3, 6, 7, 10, 11, 14, 15],
            [0, 1, 8, 9, 2, 3, 10, 11],
            [4, 5, 12, 13, 6, 7, 14, 15],
            [0, 0, 1, 1, 2, 2, 3, 3],
        ),
        _ => (
            [0, 2, 4, 6, 8, 10, 12, 14],
            [1, 3, 5, 7, 9, 11, 13, 15],
            [0, 8, 1, 9, 2, 10, 3, 11],
            [4, 12, 5, 13, 6, 14, 7, 15],
            [0, 1, 2, 3, 4, 5, 6, 7],
        ),
    }
}

/// A stage with span 1, 2 or 4: 16 values (16/(2·span) blocks) per step, shuffled into x and y lanes.
#[target_feature(enable = "avx512f,avx512ifma")]
unsafe fn small_stage(t: &NttTable, a: &mut [u64], base: usize, span: usize, forward: bool) {
    let q = t.p.q;
    let (vq, v2q) = (
        _mm512_set1_epi64(q as i64),
        _mm512_set1_epi64((2 * q) as i64),
    );
    let (gx, gy, s0, s1, wi) = small_indices(span);
    let load = |v: &[i64; 8]| _mm512_loadu_si512(v.as_ptr() as *const _);
    let (gx, gy, s0, s1, wi) = (load(&gx), load(&gy), load(&s0), load(&s1), load(&wi));
    let (tw, tws) = if forward {
        (&t.psi_rev, &t.psi_rev_shoup52)
    } else {
        (&t.ipsi_rev, &t.ipsi_rev_shoup52)
    };
    let blocks_per_step = 8 / span;
    let p = a.as_mut_ptr();
    let mut j = 0;
    let mut blk = base;
    while j < t.n {
        let v0 = _mm512_loadu_si512(p.add(j) as *const _);
        let v1 = _mm512_loadu_si512(p.add(j + 8) as *const _);
        let x = _mm512_permutex2var_epi64(v0, gx, v1);
        let y = _mm512_permutex2var_epi64(v0, gy, v1);
        // Twiddles of the blocks in this step (tables have n entries; blk + 8 ≤ n here).
        let w = _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(tw.as_ptr().add(blk) as *const _));
        let ws =
            _mm512_permutexvar_epi64(wi, _mm512_loadu_si512(tws.as_ptr().add(blk) as *const _));
        let (nx, ny) = if forward {
            let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
            let tv = mul_shoup52(y, w, ws, vq);
            (
                _mm512_add_epi64(x, tv),
                _mm512_sub_epi64(_mm512_add_epi64(x, v2q), tv),
            )
        } else {
            let s = _mm512_add_epi64(x, y);
            let s = _mm512_min_epu64(s, _mm512_sub_epi64(s, v2q));
            let d = _mm512_sub_epi64(_mm512_add_epi64(x, v2q), y);
            (s, mul_shoup52(d, w, ws, vq))
        };
        _mm512_storeu_si512(p.add(j) as *mut _, _mm512_permutex2var_epi64(nx, s0, ny));
        _mm512_storeu_si512(
            p.add(j + 8) as *mut _,
            _mm512_permutex2var_epi64(nx, s1, ny),
        );
        j += 16;
        blk += blocks_per_step;
    }
}

/// dst = centred lift of src (mod `from`) into this prime, 8 lanes at a time.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn lift_centred(t: &NttTable, src: &[u64], from: u64, dst: &mut [u64]) {
    let q = t.p.q;
    let s1 = ((1u128 << 52) / q as u128) as u64;
    let (vq, one, vs1) = (
        _mm512_set1_epi64(q as i64),
        _mm512_set1_epi64(1),
        _mm512_set1_epi64(s1 as i64),
    );
    let (vfrom, vhalf) = (
        _mm512_set1_epi64(from as i64),
        _mm512_set1_epi64((from / 2) as i64),
    );
    let zero = _mm512_setzero_si512();
    let (ps, pd) = (src.as_ptr(), dst.as_mut_ptr());
    let mut j = 0;
    while j < dst.len() {
        let x = _mm512_loadu_si512(ps.add(j) as *const _);
        let neg = _mm512_cmpgt_epu64_mask(x, vhalf);
        let m = _mm512_mask_sub_epi64(x, neg, vfrom, x);
        let r = mul_shoup52(m, one, vs1, vq);
        let r = _mm512_min_epu64(r, _mm512_sub_epi64(r, vq));
        // q − r for the negative lanes (0 stays 0).
        let nr = _mm512_sub_epi64(vq, r);
        let nr = _mm512_mask_mov_epi64(nr, _mm512_cmpeq_epu64_mask(r, zero), zero);
        let out = _mm512_mask_mov_epi64(r, neg, nr);
        _mm512_storeu_si512(pd.add(j) as *mut _, out);
        j += 8;
    }
}

/// a = (a − b)·w mod q, 8 lanes at a time (inputs < q).
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn sub_mul_const(t: &NttTable, a: &mut [u64], b: &[u64], w: u64) {
    let q = t.p.q;
    let ws = (((w as u128) << 52) / q as u128) as u64;
    let (vq, vw, vws) = (
        _mm512_set1_epi64(q as i64),
        _mm512_set1_epi64(w as i64),
        _mm512_set1_epi64(ws as i64),
    );
    let (pa, pb) = (a.as_mut_ptr(), b.as_ptr());
    let mut j = 0;
    while j < a.len() {
        let x = _mm512_loadu_si512(pa.add(j) as *const _);
        let y = _mm512_loadu_si512(pb.add(j) as *const _);
        let d = _mm512_sub_epi64(_mm512_add_epi64(x, vq), y);
        let r = mul_shoup52(d, vw, vws, vq);
        _mm512_storeu_si512(
            pa.add(j) as *mut _,
            _mm512_min_epu64(r, _mm512_sub_epi64(r, vq)),
        );
        j += 8;
    }
}

/// out = (hi·2^52 + lo) mod q for any 64-bit hi and lo, 8 lanes at a time.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn reduce(t: &NttTable, lo: &[u64], hi: &[u64], out: &mut [u64]) {
    let q = t.p.q;
    let c = ((1u128 << 52) % q as u128) as u64;
    let cs = (((c as u128) << 52) / q as u128) as u64;
    let s1 = ((1u128 << 52) / q as u128) as u64;
    let (vq, v2q, v4q) = (
        _mm512_set1_epi64(q as i64),
        _mm512_set1_epi64((2 * q) as i64),
        _mm512_set1_epi64((4 * q) as i64),
    );
    let (vc, vcs, one, vs1) = (
        _mm512_set1_epi64(c as i64),
        _mm512_set1_epi64(cs as i64),
        _mm512_set1_epi64(1),
        _mm512_set1_epi64(s1 as i64),
    );
    let mask = _mm512_set1_epi64(((1u64 << 52) - 1) as i64);
    let (pl, ph, po) = (lo.as_ptr(), hi.as_ptr(), out.as_mut_ptr());
    let mut j = 0;
    while j < out.len() {
        let l = _mm512_loadu_si512(pl.add(j) as *const _);
        let h = _mm512_loadu_si512(ph.add(j) as *const _);
        // h mod q (< 4q): h = h_hi·2^52 + h_lo.
        let h1 = _mm512_add_epi64(
            mul_shoup52(_mm512_srli_epi64(h, 52), vc, vcs, vq),
            mul_shoup52(_mm512_and_si512(h, mask), one, vs1, vq),
        );
        // (h1·2^52 + l_hi·2^52 + l_lo) mod q, each term < 2q.
        let x = _mm512_add_epi64(
            _mm512_add_epi64(
                mul_shoup52(h1, vc, vcs, vq),
                mul_shoup52(_mm512_srli_epi64(l, 52), vc, vcs, vq),
            ),
            mul_shoup52(_mm512_and_si512(l, mask), one, vs1, vq),
        );
        let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v4q));
        let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
        let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, vq));
        _mm512_storeu_si512(po.add(j) as *mut _, x);
        j += 8;
    }
}

/// lo += low52(x·k), hi += high52(x·k), 8 lanes at a time.
#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn mac(lo: &mut [u64], hi: &mut [u64], x: &[u64], k: &[u64]) {
    let (pl, ph, px, pk) = (lo.as_mut_ptr(), hi.as_mut_ptr(), x.as_ptr(), k.as_ptr());
    let mut j = 0;
    while j < lo.len() {
        let a = _mm512_loadu_si512(px.add(j) as *const _);
        let b = _mm512_loadu_si512(pk.add(j) as *const _);
        let l = _mm512_loadu_si512(pl.add(j) as *const _);
        let h = _mm512_loadu_si512(ph.add(j) as *const _);
        _mm512_storeu_si512(pl.add(j) as *mut _, _mm512_madd52lo_epu64(l, a, b));
        _mm512_storeu_si512(ph.add(j) as *mut _, _mm512_madd52hi_epu64(h, a, b));
        j += 8;
    }
}

#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn forward(t: &NttTable, a: &mut [u64]) {
    let q = t.p.q;
    let (vq, v2q) = (
        _mm512_set1_epi64(q as i64),
        _mm512_set1_epi64((2 * q) as i64),
    );
    let n = t.n;
    let mut span = n;
    let mut m = 1;
    while m < n {
        span >>= 1;
        if span >= 8 {
            for i in 0..m {
                let j1 = 2 * i * span;
                let w = _mm512_set1_epi64(t.psi_rev[m + i] as i64);
                let ws = _mm512_set1_epi64(t.psi_rev_shoup52[m + i] as i64);
                let px = a.as_mut_ptr().add(j1);
                let py = px.add(span);
                let mut j = 0;
                while j < span {
                    let x = _mm512_loadu_si512(px.add(j) as *const _);
                    let y = _mm512_loadu_si512(py.add(j) as *const _);
                    let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
                    let tv = mul_shoup52(y, w, ws, vq);
                    _mm512_storeu_si512(px.add(j) as *mut _, _mm512_add_epi64(x, tv));
                    _mm512_storeu_si512(
                        py.add(j) as *mut _,
                        _mm512_sub_epi64(_mm512_add_epi64(x, v2q), tv),
                    );
                    j += 8;
                }
            }
        } else {
            small_stage(t, a, m, span, true);
        }
        m <<= 1;
    }
    let p = a.as_mut_ptr();
    let mut j = 0;
    while j < n {
        let x = _mm512_loadu_si512(p.add(j) as *const _);
        let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, v2q));
        let x = _mm512_min_epu64(x, _mm512_sub_epi64(x, vq));
        _mm512_storeu_si512(p.add(j) as *mut _, x);
        j += 8;
    }
}

#[target_feature(enable = "avx512f,avx512ifma")]
pub(super) unsafe fn inverse(t: &NttTable, a: &mut [u64]) {
    let q = t.p.q;
    let (vq, v2q) = (
        _mm512_set1_epi64(q as i64),
        _mm512_set1_epi64((2 * q) as i64),
    );
    let n = t.n;
    let mut span = 1;
    let mut m = n;
    while m > 1 {
        let h = m >> 1;
        if span >= 8 {
            let mut j1 = 0;
            for i in 0..h {
                let w = _mm512_set1_epi64(t.ipsi_rev[h + i] as i64);
                let ws = _mm512_set1_epi64(t.ipsi_rev_shoup52[h + i] as i64);
                let px = a.as_mut_ptr().add(j1);
                let py = px.add(span);
                let mut j = 0;
                while j < span {
                    let x = _mm512_loadu_si512(px.add(j) as *const _);
                    let y = _mm512_loadu_si512(py.add(j) as *const _);
                    let s = _mm512_add_epi64(x, y);
                    let s = _mm512_min_epu64(s, _mm512_sub_epi64(s, v2q));
                    let d = _mm512_sub_epi64(_mm512_add_epi64(x, v2q), y);
                    _mm512_storeu_si512(px.add(j) as *mut _, s);
                    _mm512_storeu_si512(py.add(j) as *mut _, mul_shoup52(d, w, ws, vq));
                    j += 8;
                }
                j1 += 2 * span;
            }
        } else {
            small_stage(t, a, h, span, false);
        }
        span <<= 1;
        m = h;
    }
    let (w, ws) = (
        _mm512_set1_epi64(t.n_inv as i64),
        _mm512_set1_epi64(t.n_inv_shoup52 as i64),
    );
    let p = a.as_mut_ptr();
    let mut j = 0;
    while j < n {
        let x = mul_shoup52(_mm512_loadu_si512(p.add(j) as *const _), w, ws, vq);
        _mm512_storeu_si512(
            p.add(j) as *mut _,
            _mm512_min_epu64(x, _mm512_sub_epi64(x, vq)),
        );
        j += 8;
    }
}
