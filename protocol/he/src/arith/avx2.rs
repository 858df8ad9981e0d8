//! AVX2 + FMA butterflies on doubles: every value the NTT touches is an integer below 2^52, so a
//! double holds it exactly, and the product y·w (below 2^102) is split exactly into h + l with one
//! FMA. The quotient ⌊h/q⌋ is estimated in floating point (off by at most one), and the remainder
//! h − ⌊h/q⌋·q + l is again an exact small integer. Results equal the scalar path's bit for bit.
//!
//! The array is converted to doubles in place at the start and back at the end; stages of span ≥ 4
//! broadcast one twiddle per block, the span-2 and span-1 stages shuffle two vectors into x and y
//! lanes and load pre-expanded twiddles.

use std::arch::x86_64::*;

use super::ntt::{NttTable, TwiddlesF64};

/// 2^52 as a double and as its bit pattern: for 0 ≤ x < 2^52, bits(2^52 + x) = bits(2^52) | x.
const MAGIC: f64 = 4503599627370496.0;
const MAGIC_BITS: i64 = 0x4330_0000_0000_0000;

/// The constants every butterfly needs, broadcast once.
#[derive(Clone, Copy)]
struct Consts {
    q: __m256d,
    two_q: __m256d,
    q_inv: __m256d,
}

impl Consts {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new(q: u64) -> Self {
        Consts {
            q: _mm256_set1_pd(q as f64),
            two_q: _mm256_set1_pd((2 * q) as f64),
            q_inv: _mm256_set1_pd(1.0 / q as f64),
        }
    }
}

/// x − c where x ≥ c, else x (x, c exact integers).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sub_if_ge(x: __m256d, c: __m256d) -> __m256d {
    let ge = _mm256_cmp_pd::<_CMP_GE_OQ>(x, c);
    _mm256_sub_pd(x, _mm256_and_pd(ge, c))
}

/// y·w mod q in [0, 2q) for y < 2q and w < q (both exact integers, q < 2^50).
///
/// With Q = y·w/q < 2q < 2^51, the estimate fl(fl(y·w)·fl(1/q)) is within 3·2^−53·Q < 0.75 of Q, so
/// its floor is ⌊Q⌋ − 1, ⌊Q⌋ or ⌊Q⌋ + 1 and the exact remainder r lies in [−q, 2q); one
/// conditional +q brings it to [0, 2q). h − ⌊·⌋·q is exact (an integer below 2^52 in magnitude,
/// computed by one FMA), and so is adding the low part l (|l| ≤ 2^48).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn mul_mod_lazy(y: __m256d, w: __m256d, c: Consts) -> __m256d {
    let h = _mm256_mul_pd(y, w);
    let l = _mm256_fmsub_pd(y, w, h);
    let qt =
        _mm256_round_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(h, c.q_inv));
    let r = _mm256_add_pd(_mm256_fnmadd_pd(qt, c.q, h), l);
    let neg = _mm256_cmp_pd::<_CMP_LT_OQ>(r, _mm256_setzero_pd());
    _mm256_add_pd(r, _mm256_and_pd(neg, c.q))
}

/// Forward (Cooley–Tukey, Harvey-lazy) butterfly: inputs in [0, 4q), outputs in [0, 4q).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn forward_bfly(x: __m256d, y: __m256d, w: __m256d, c: Consts) -> (__m256d, __m256d) {
    let x = sub_if_ge(x, c.two_q);
    let v = mul_mod_lazy(sub_if_ge(y, c.two_q), w, c);
    (
        _mm256_add_pd(x, v),
        _mm256_sub_pd(_mm256_add_pd(x, c.two_q), v),
    )
}

/// Inverse (Gentleman–Sande) butterfly: inputs in [0, 2q), outputs in [0, 2q).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn inverse_bfly(x: __m256d, y: __m256d, w: __m256d, c: Consts) -> (__m256d, __m256d) {
    let s = sub_if_ge(_mm256_add_pd(x, y), c.two_q);
    let d = sub_if_ge(_mm256_sub_pd(_mm256_add_pd(x, c.two_q), y), c.two_q);
    (s, mul_mod_lazy(d, w, c))
}

/// Reinterprets integers below 2^52 as doubles of the same value, in place.
#[target_feature(enable = "avx2,fma")]
unsafe fn to_f64(a: &mut [u64]) -> &mut [f64] {
    let magic = _mm256_set1_pd(MAGIC);
    let bits = _mm256_set1_epi64x(MAGIC_BITS);
    let p = a.as_mut_ptr();
    let mut j = 0;
    while j + 4 <= a.len() {
        let x = _mm256_loadu_si256(p.add(j) as *const __m256i);
        let f = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(x, bits)), magic);
        _mm256_storeu_pd(p.add(j) as *mut f64, f);
        j += 4;
    }
    // SAFETY: u64 and f64 have the same size and alignment; every element now holds a double.
    std::slice::from_raw_parts_mut(p as *mut f64, a.len())
}

/// Turns doubles holding integers in [0, 2^52) back into integers, in place.
#[target_feature(enable = "avx2,fma")]
unsafe fn to_u64(a: &mut [f64]) {
    let magic = _mm256_set1_pd(MAGIC);
    let bits = _mm256_set1_epi64x(MAGIC_BITS);
    let p = a.as_mut_ptr();
    let mut j = 0;
    while j + 4 <= a.len() {
        let f = _mm256_add_pd(_mm256_loadu_pd(p.add(j)), magic);
        let x = _mm256_xor_si256(_mm256_castpd_si256(f), bits);
        _mm256_storeu_si256(p.add(j) as *mut __m256i, x);
        j += 4;
    }
}

/// One stage of span ≥ 4: `blocks` blocks starting at twiddle index `first`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn wide_stage(a: &mut [f64], tw: &[f64], first: usize, span: usize, fwd: bool, c: Consts) {
    let blocks = a.len() / (2 * span);
    for i in 0..blocks {
        let w = _mm256_set1_pd(tw[first + i]);
        let px = a.as_mut_ptr().add(2 * i * span);
        let py = px.add(span);
        let mut j = 0;
        while j < span {
            let x = _mm256_loadu_pd(px.add(j));
            let y = _mm256_loadu_pd(py.add(j));
            let (nx, ny) = if fwd {
                forward_bfly(x, y, w, c)
            } else {
                inverse_bfly(x, y, w, c)
            };
            _mm256_storeu_pd(px.add(j), nx);
            _mm256_storeu_pd(py.add(j), ny);
            j += 4;
        }
    }
}

/// The span-2 stage: two blocks per pair of vectors, x and y halves exchanged across 128-bit lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn span2_stage(a: &mut [f64], tw: &[f64], fwd: bool, c: Consts) {
    let p = a.as_mut_ptr();
    let mut j = 0;
    while j < a.len() {
        let v0 = _mm256_loadu_pd(p.add(j));
        let v1 = _mm256_loadu_pd(p.add(j + 4));
        let x = _mm256_permute2f128_pd::<0x20>(v0, v1);
        let y = _mm256_permute2f128_pd::<0x31>(v0, v1);
        let w = _mm256_loadu_pd(tw.as_ptr().add(j / 2));
        let (nx, ny) = if fwd {
            forward_bfly(x, y, w, c)
        } else {
            inverse_bfly(x, y, w, c)
        };
        _mm256_storeu_pd(p.add(j), _mm256_permute2f128_pd::<0x20>(nx, ny));
        _mm256_storeu_pd(p.add(j + 4), _mm256_permute2f128_pd::<0x31>(nx, ny));
        j += 8;
    }
}

/// The span-1 stage: four blocks per pair of vectors, x and y interleaved.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn span1_stage(a: &mut [f64], tw: &[f64], fwd: bool, c: Consts) {
    let p = a.as_mut_ptr();
    let mut j = 0;
    while j < a.len() {
        let v0 = _mm256_loadu_pd(p.add(j));
        let v1 = _mm256_loadu_pd(p.add(j + 4));
        let x = _mm256_unpacklo_pd(v0, v1);
        let y = _mm256_unpackhi_pd(v0, v1);
        let w = _mm256_loadu_pd(tw.as_ptr().add(j / 2));
        let (nx, ny) = if fwd {
            forward_bfly(x, y, w, c)
        } else {
            inverse_bfly(x, y, w, c)
        };
        _mm256_storeu_pd(p.add(j), _mm256_unpacklo_pd(nx, ny));
        _mm256_storeu_pd(p.add(j + 4), _mm256_unpackhi_pd(nx, ny));
        j += 8;
    }
}

/// Forward transform; `a` holds residues below q on entry and on exit. Requires n ≥ 8, q < 2^50.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn forward(t: &NttTable, tw: &TwiddlesF64, a: &mut [u64]) {
    let c = Consts::new(t.p.q);
    let n = t.n;
    let f = to_f64(a);
    let mut span = n;
    let mut m = 1;
    while m < n {
        span >>= 1;
        match span {
            2 => span2_stage(f, &tw.fwd_s2, true, c),
            1 => span1_stage(f, &tw.fwd_s1, true, c),
            _ => wide_stage(f, &tw.fwd, m, span, true, c),
        }
        m <<= 1;
    }
    let p = f.as_mut_ptr();
    let q = c.q;
    let mut j = 0;
    while j < n {
        let x = sub_if_ge(sub_if_ge(_mm256_loadu_pd(p.add(j)), c.two_q), q);
        _mm256_storeu_pd(p.add(j), x);
        j += 4;
    }
    to_u64(f);
}

/// Inverse transform; `a` holds residues below q on entry and on exit. Requires n ≥ 8, q < 2^50.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn inverse(t: &NttTable, tw: &TwiddlesF64, a: &mut [u64]) {
    let c = Consts::new(t.p.q);
    let n = t.n;
    let f = to_f64(a);
    let mut span = 1;
    let mut m = n;
    while m > 1 {
        let h = m >> 1;
        match span {
            1 => span1_stage(f, &tw.inv_s1, false, c),
            2 => span2_stage(f, &tw.inv_s2, false, c),
            _ => wide_stage(f, &tw.inv, h, span, false, c),
        }
        span <<= 1;
        m = h;
    }
    let w = _mm256_set1_pd(t.n_inv as f64);
    let p = f.as_mut_ptr();
    let mut j = 0;
    while j < n {
        let x = mul_mod_lazy(_mm256_loadu_pd(p.add(j)), w, c);
        _mm256_storeu_pd(p.add(j), sub_if_ge(x, c.q));
        j += 4;
    }
    to_u64(f);
}
