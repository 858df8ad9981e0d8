//! Word gadgets over little-endian bit vectors (bit 0 first), generic over any [`Builder`].
//!
//! AND costs are stated per gadget; all XOR/NOT gates are free.

use super::Builder;

/// Full adder step: returns (sum, carry-out) with one AND: c' = c ⊕ ((x ⊕ c) ∧ (y ⊕ c)).
fn full_add<B: Builder + ?Sized>(
    b: &mut B,
    x: &B::Wire,
    y: &B::Wire,
    c: &B::Wire,
) -> (B::Wire, B::Wire) {
    let xc = b.xor(x, c);
    let yc = b.xor(y, c);
    let s = b.xor(&xc, y);
    let t = b.and(&xc, &yc);
    let c2 = b.xor(c, &t);
    (s, c2)
}

/// x + y mod 2^n for equal-width words; n − 1 AND gates.
pub fn add<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire], y: &[B::Wire]) -> Vec<B::Wire> {
    add_mixed(b, x, y)
}

/// x + y mod 2^n where `x` may be narrower than `y` (x is zero-extended); n − 1 AND gates.
///
/// The low bits use full adders, the bits above `x` an incrementer (half adders), and the carry
/// out of the top bit is never computed.
pub fn add_mixed<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire], y: &[B::Wire]) -> Vec<B::Wire> {
    let n = y.len();
    let lx = x.len().min(n);
    if lx == 0 {
        return y.to_vec();
    }
    let mut out = Vec::with_capacity(n);
    out.push(b.xor(&x[0], &y[0]));
    if n == 1 {
        return out;
    }
    let mut carry = b.and(&x[0], &y[0]);
    for i in 1..n {
        let last = i == n - 1;
        if i < lx {
            if last {
                let s = b.xor(&x[i], &y[i]);
                out.push(b.xor(&s, &carry));
            } else {
                let (s, c) = full_add(b, &x[i], &y[i], &carry);
                out.push(s);
                carry = c;
            }
        } else {
            out.push(b.xor(&y[i], &carry));
            if !last {
                carry = b.and(&y[i], &carry);
            }
        }
    }
    out
}

/// x + y with the carry out as an extra top bit (n + 1 bits); n AND gates.
pub fn add_with_carry<B: Builder + ?Sized>(
    b: &mut B,
    x: &[B::Wire],
    y: &[B::Wire],
) -> Vec<B::Wire> {
    let n = x.len().min(y.len());
    let mut out = Vec::with_capacity(n + 1);
    let mut carry = b.zero();
    for i in 0..n {
        if i == 0 {
            out.push(b.xor(&x[0], &y[0]));
            carry = b.and(&x[0], &y[0]);
        } else {
            let (s, c) = full_add(b, &x[i], &y[i], &carry);
            out.push(s);
            carry = c;
        }
    }
    out.push(carry);
    out
}

/// Borrow chain of x − y: returns (difference mod 2^n, borrow-out = [x <u y]); n AND gates.
fn sub_borrow<B: Builder + ?Sized>(
    b: &mut B,
    x: &[B::Wire],
    y: &[B::Wire],
) -> (Vec<B::Wire>, B::Wire) {
    let n = x.len().min(y.len());
    let mut out = Vec::with_capacity(n);
    let mut borrow = b.zero();
    for i in 0..n {
        let d = b.xor(&x[i], &y[i]);
        if i == 0 {
            out.push(d);
            // borrow1 = ¬x0 ∧ y0
            let nx = b.not(&x[0]);
            borrow = b.and(&nx, &y[0]);
        } else {
            out.push(b.xor(&d, &borrow));
            // borrow' = maj(¬x, y, borrow) = borrow ⊕ ((¬x ⊕ borrow) ∧ (y ⊕ borrow))
            let xb = b.xor(&x[i], &borrow);
            let nxb = b.not(&xb);
            let yb = b.xor(&y[i], &borrow);
            let t = b.and(&nxb, &yb);
            borrow = b.xor(&borrow, &t);
        }
    }
    (out, borrow)
}

/// x − y mod 2^n; n − 1 AND gates (the final borrow is dropped).
pub fn sub<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire], y: &[B::Wire]) -> Vec<B::Wire> {
    let n = x.len().min(y.len());
    if n == 0 {
        return Vec::new();
    }
    // Computing the borrow of the top bit would be wasted, so subtract the low n−1 bits with a
    // borrow chain and finish the top bit with XORs.
    let (mut low, borrow) = sub_borrow(b, &x[..n - 1], &y[..n - 1]);
    let d = b.xor(&x[n - 1], &y[n - 1]);
    let top = if n == 1 { d } else { b.xor(&d, &borrow) };
    low.push(top);
    low
}

/// −x mod 2^n (two's complement); n − 1 AND gates.
pub fn neg<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire]) -> Vec<B::Wire> {
    let zeros: Vec<B::Wire> = (0..x.len()).map(|_| b.zero()).collect();
    sub(b, &zeros, x)
}

/// [x < y] for unsigned words; n AND gates.
pub fn lt_unsigned<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire], y: &[B::Wire]) -> B::Wire {
    sub_borrow(b, x, y).1
}

/// [x < y] for two's-complement words; n AND gates (flipping the sign bits is free).
pub fn lt_signed<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire], y: &[B::Wire]) -> B::Wire {
    let n = x.len().min(y.len());
    if n == 0 {
        return b.zero();
    }
    let mut xf = x[..n].to_vec();
    let mut yf = y[..n].to_vec();
    xf[n - 1] = b.not(&x[n - 1]);
    yf[n - 1] = b.not(&y[n - 1]);
    lt_unsigned(b, &xf, &yf)
}

/// [x = y]; n − 1 AND gates.
pub fn eq<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire], y: &[B::Wire]) -> B::Wire {
    let n = x.len().min(y.len());
    let mut acc = b.one();
    for i in 0..n {
        let d = b.xor(&x[i], &y[i]);
        let same = b.not(&d);
        acc = if i == 0 { same } else { b.and(&acc, &same) };
    }
    acc
}

/// `s ? y : x` bit by bit; n AND gates.
pub fn mux<B: Builder + ?Sized>(
    b: &mut B,
    s: &B::Wire,
    x: &[B::Wire],
    y: &[B::Wire],
) -> Vec<B::Wire> {
    x.iter()
        .zip(y)
        .map(|(xi, yi)| {
            let d = b.xor(xi, yi);
            let t = b.and(s, &d);
            b.xor(xi, &t)
        })
        .collect()
}

/// Arithmetic shift right by `f` within the word width (pure rewiring: no gates).
pub fn shr_arith<W: Clone>(x: &[W], f: usize) -> Vec<W> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    (0..n).map(|j| x[(j + f).min(n - 1)].clone()).collect()
}

/// Sign-extends (or truncates) a two's-complement word to `n` bits (rewiring only).
pub fn sext<W: Clone>(x: &[W], n: usize) -> Vec<W> {
    (0..n).map(|j| x[j.min(x.len() - 1)].clone()).collect()
}

/// max(x, 0) for a two's-complement word: each bit ANDed with the inverted sign; n − 1 AND gates.
pub fn relu_signed<B: Builder + ?Sized>(b: &mut B, x: &[B::Wire]) -> Vec<B::Wire> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let pos = b.not(&x[n - 1]);
    let mut out: Vec<B::Wire> = x[..n - 1].iter().map(|xi| b.and(xi, &pos)).collect();
    out.push(b.zero());
    out
}

/// A public constant word of `n` bits.
pub fn constant<B: Builder + ?Sized>(b: &mut B, value: u64, n: usize) -> Vec<B::Wire> {
    (0..n)
        .map(|j| {
            if j < 64 && (value >> j) & 1 == 1 {
                b.one()
            } else {
                b.zero()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::{GateCounter, Plain};
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn mask(n: u32) -> u64 {
        if n >= 64 {
            u64::MAX
        } else {
            (1u64 << n) - 1
        }
    }
    fn sext_val(x: u64, n: u32) -> i64 {
        ((x << (64 - n)) as i64) >> (64 - n)
    }

    /// Edge values for an n-bit word: 0, ±1, largest positive, most negative, and their neighbours.
    fn edges(n: u32) -> Vec<u64> {
        let m = mask(n);
        let half = 1u64 << (n - 1);
        [
            0,
            1,
            m,
            half - 1,
            half,
            half + 1,
            m - 1,
            2,
            half >> 1,
            (half >> 1).wrapping_sub(1),
        ]
        .iter()
        .map(|v| v & m)
        .collect()
    }

    /// Runs `f` with Plain over all pairs drawn from edges and random values and checks `want`.
    fn check2(
        n: u32,
        f: impl Fn(&mut Plain, &[u64], &[u64]) -> Vec<u64>,
        want: impl Fn(u64, u64) -> u64,
        out_bits: u32,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
        let mut xs = edges(n);
        let mut ys = edges(n);
        for _ in 0..54 {
            xs.push(rng.next_u64() & mask(n));
            ys.push(rng.next_u64() & mask(n));
        }
        let mut pairs = Vec::new();
        for &x in &xs {
            for &y in &ys {
                pairs.push((x, y));
            }
        }
        for batch in pairs.chunks(64) {
            let xv: Vec<u64> = batch.iter().map(|p| p.0).collect();
            let yv: Vec<u64> = batch.iter().map(|p| p.1).collect();
            let xw = Plain::slice(&xv, n);
            let yw = Plain::slice(&yv, n);
            let out = f(&mut Plain, &xw, &yw);
            let got = Plain::unslice(&out, batch.len());
            for (i, &(x, y)) in batch.iter().enumerate() {
                assert_eq!(
                    got[i] & mask(out_bits),
                    want(x, y) & mask(out_bits),
                    "n={n} x={x:#x} y={y:#x}"
                );
            }
        }
    }

    macro_rules! gadget_case {
        ($name:ident, $gadget:expr, $want:expr, $out:expr, $ands:expr) => {
            #[test]
            fn $name() {
                for n in [1u32, 2, 3, 8, 27, 52, 63, 64] {
                    check2(
                        n,
                        |b, x, y| $gadget(b, x, y),
                        |x, y| $want(n, x, y),
                        $out(n),
                    );
                    // The counter runs the very same gadget and must report the documented cost.
                    let mut c = GateCounter::default();
                    let u: Vec<()> = vec![(); n as usize];
                    let _ = $gadget(&mut c, &u, &u);
                    assert_eq!(
                        c.ands,
                        $ands(n as usize),
                        "AND count of {} at n={n}",
                        stringify!($name)
                    );
                }
            }
        };
    }

    gadget_case!(
        adder_matches_wrapping_add,
        |b: &mut _, x: &[_], y: &[_]| add(b, x, y),
        |n, x: u64, y: u64| x.wrapping_add(y) & mask(n),
        |n| n,
        |n: usize| n - 1
    );
    gadget_case!(
        adder_with_carry_matches_wide_add,
        |b: &mut _, x: &[_], y: &[_]| add_with_carry(b, x, y),
        |_n, x: u64, y: u64| x.wrapping_add(y),
        |n: u32| (n + 1).min(64),
        |n: usize| n
    );
    gadget_case!(
        subtractor_matches_wrapping_sub,
        |b: &mut _, x: &[_], y: &[_]| sub(b, x, y),
        |n, x: u64, y: u64| x.wrapping_sub(y) & mask(n),
        |n| n,
        |n: usize| n - 1
    );
    gadget_case!(
        unsigned_comparator_matches_lt,
        |b: &mut _, x: &[_], y: &[_]| vec![lt_unsigned(b, x, y)],
        |_n, x: u64, y: u64| (x < y) as u64,
        |_| 1,
        |n: usize| n
    );
    gadget_case!(
        signed_comparator_matches_lt,
        |b: &mut _, x: &[_], y: &[_]| vec![lt_signed(b, x, y)],
        |n, x: u64, y: u64| (sext_val(x, n) < sext_val(y, n)) as u64,
        |_| 1,
        |n: usize| n
    );
    gadget_case!(
        equality_matches_eq,
        |b: &mut _, x: &[_], y: &[_]| vec![eq(b, x, y)],
        |_n, x: u64, y: u64| (x == y) as u64,
        |_| 1,
        |n: usize| n - 1
    );
    gadget_case!(
        negation_matches_wrapping_neg,
        |b: &mut _, x: &[_], _y: &[_]| neg(b, x),
        |n, x: u64, _y: u64| x.wrapping_neg() & mask(n),
        |n| n,
        |n: usize| n - 1
    );
    gadget_case!(
        relu_signed_matches_max0,
        |b: &mut _, x: &[_], _y: &[_]| relu_signed(b, x),
        |n, x: u64, _y: u64| sext_val(x, n).max(0) as u64 & mask(n),
        |n| n,
        |n: usize| n - 1
    );

    #[test]
    fn add_with_carry_top_bit_is_the_carry() {
        for n in [1u32, 5, 27, 52] {
            let mut rng = ChaCha20Rng::seed_from_u64(7);
            let xs: Vec<u64> = (0..64).map(|_| rng.next_u64() & mask(n)).collect();
            let ys: Vec<u64> = (0..64).map(|_| rng.next_u64() & mask(n)).collect();
            let out = add_with_carry(&mut Plain, &Plain::slice(&xs, n), &Plain::slice(&ys, n));
            let got = Plain::unslice(&out, 64);
            for i in 0..64 {
                assert_eq!(got[i], xs[i] + ys[i], "n={n}");
            }
        }
    }

    #[test]
    fn mixed_width_adder_matches_and_costs_n_minus_1() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        for (lx, n) in [(0u32, 5u32), (1, 5), (18, 52), (27, 27), (30, 52), (5, 64)] {
            let xs: Vec<u64> = (0..64)
                .map(|i| {
                    if i < 4 {
                        [0, 1, mask(lx.max(1)), 1 << (lx.max(1) - 1)][i] & mask(lx)
                    } else {
                        rng.next_u64() & mask(lx)
                    }
                })
                .collect();
            let ys: Vec<u64> = (0..64)
                .map(|i| {
                    if i < 3 {
                        [0, mask(n), mask(n) - 1][i]
                    } else {
                        rng.next_u64() & mask(n)
                    }
                })
                .collect();
            let out = add_mixed(&mut Plain, &Plain::slice(&xs, lx), &Plain::slice(&ys, n));
            let got = Plain::unslice(&out, 64);
            for i in 0..64 {
                assert_eq!(got[i], xs[i].wrapping_add(ys[i]) & mask(n), "lx={lx} n={n}");
            }
            let mut c = GateCounter::default();
            add_mixed(
                &mut c,
                &vec![(); lx as usize][..],
                &vec![(); n as usize][..],
            );
            assert_eq!(c.ands, if lx == 0 { 0 } else { n as usize - 1 });
        }
    }

    #[test]
    fn mux_selects_and_shifts_rewire() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let n = 52;
        let xs: Vec<u64> = (0..64).map(|_| rng.next_u64() & mask(n)).collect();
        let ys: Vec<u64> = (0..64).map(|_| rng.next_u64() & mask(n)).collect();
        let s = rng.next_u64();
        let out = mux(&mut Plain, &s, &Plain::slice(&xs, n), &Plain::slice(&ys, n));
        let got = Plain::unslice(&out, 64);
        for i in 0..64 {
            assert_eq!(got[i], if (s >> i) & 1 == 1 { ys[i] } else { xs[i] });
        }
        let mut c = GateCounter::default();
        mux(&mut c, &(), &[(); 52], &[(); 52]);
        assert_eq!(c.ands, 52);
        // Arithmetic shift and sign extension are rewiring, checked against i64 arithmetic.
        for f in [0usize, 1, 8, 26] {
            let sh = Plain::unslice(&shr_arith(&Plain::slice(&xs, 27), f), 64);
            let ext = Plain::unslice(&sext(&Plain::slice(&xs, 27), 52), 64);
            for i in 0..64 {
                assert_eq!(
                    sh[i],
                    ((sext_val(xs[i] & mask(27), 27) >> f) as u64) & mask(27)
                );
                assert_eq!(ext[i], (sext_val(xs[i] & mask(27), 27) as u64) & mask(52));
            }
        }
        let c5 = Plain::unslice(&constant(&mut Plain, 0b10110, 5), 1);
        assert_eq!(c5[0], 0b10110);
    }
}
