//! The maximum circuit: max pooling over a window of shares, with an optional fused ReLU and an
//! optional cap (ReLU6 is the one-element case with both). docs/protocol.md, "Max circuit".

use crate::circuit::{gadgets, Builder, GateCounter};
use crate::relu::mask;
use crate::GcError;

/// Largest window a max circuit accepts (a 16×16 pool).
pub const MAX_WINDOW: u32 = 256;

/// Parameters of one max circuit: n window elements of w-bit shares, truncation F, output ring
/// bits k, and the fused ReLU / cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaxParams {
    /// n: elements in the window (1 ≤ n ≤ [`MAX_WINDOW`]).
    pub inputs: u32,
    /// w: the circuit reads the low w bits of each input share.
    pub in_bits: u32,
    /// F: arithmetic right shift (fixed-point truncation) of every element.
    pub shift: u32,
    /// k: the output lives in Z_2^k.
    pub out_bits: u32,
    /// Apply `max(0, ·)` to the maximum.
    pub relu: bool,
    /// Apply `min(·, cap)` to the maximum (a value at the output scale).
    pub cap: Option<u64>,
}

/// Reads the low `n` bits of `x` as a two's-complement number.
fn sext(x: u64, n: u32) -> i64 {
    match n {
        0 => 0,
        n if n >= 64 => x as i64,
        n => ((x << (64 - n)) as i64) >> (64 - n),
    }
}

impl MaxParams {
    /// Max pooling over `inputs` elements (optionally with a fused ReLU and cap).
    pub fn new(
        inputs: u32,
        in_bits: u32,
        shift: u32,
        out_bits: u32,
        relu: bool,
        cap: Option<u64>,
    ) -> Result<Self, GcError> {
        let p = MaxParams {
            inputs,
            in_bits,
            shift,
            out_bits,
            relu,
            cap,
        };
        p.validate()?;
        Ok(p)
    }

    /// A capped ReLU (ReLU6): one element, ReLU, cap.
    pub fn relu_capped(in_bits: u32, shift: u32, out_bits: u32, cap: u64) -> Result<Self, GcError> {
        Self::new(1, in_bits, shift, out_bits, true, Some(cap))
    }

    /// Checks 1 ≤ n ≤ MAX_WINDOW, 1 ≤ w ≤ 64, 1 ≤ k ≤ 64, F < w, and that a cap is below 2^62.
    pub fn validate(&self) -> Result<(), GcError> {
        if !(1..=MAX_WINDOW).contains(&self.inputs)
            || !(1..=64).contains(&self.in_bits)
            || !(1..=64).contains(&self.out_bits)
            || self.shift >= self.in_bits
            || self.cap.is_some_and(|c| c >= 1 << 62)
        {
            return Err(GcError::InvalidParams(format!(
                "max circuit needs 1 <= n <= {MAX_WINDOW}, 1 <= w <= 64, 1 <= k <= 64, F < w, \
                 cap < 2^62; got {self:?}"
            )));
        }
        Ok(())
    }

    /// Width of the truncated elements (w − F bits, two's complement).
    fn trunc_bits(&self) -> usize {
        (self.in_bits - self.shift) as usize
    }

    /// Comparisons the circuit makes: n − 1 for the maximum, one more for a cap.
    pub fn comparisons(&self) -> u64 {
        (self.inputs as u64 - 1) + self.cap.is_some() as u64
    }

    /// All gate counts of the circuit (AND, XOR, NOT).
    pub fn gate_count(&self) -> GateCounter {
        let mut c = GateCounter::default();
        let s = vec![(); self.server_input_bits()];
        let cl = vec![(); self.client_input_bits()];
        // The only error is a length mismatch, impossible with these inputs.
        let _ = max_circuit(&mut c, self, &s, &cl);
        c
    }

    /// Garbler (server) input bits: the shares a_i (n·w bits).
    pub fn server_input_bits(&self) -> usize {
        (self.inputs * self.in_bits) as usize
    }

    /// Evaluator (client) input bits: the shares b_i (n·w bits) and n = −r (k bits).
    pub fn client_input_bits(&self) -> usize {
        (self.inputs * self.in_bits + self.out_bits) as usize
    }
}

/// The ring-level function the circuit replaces: with `t_i = sext_w(a_i + b_i) >> F`,
/// `m = max_i t_i`, then `max(0, m)` when `relu`, then `min(m, cap)` when capped; the output is
/// `(m + n) mod 2^k`. Only the low w bits of `a_i`, `b_i` and the low k bits of `n` are read.
pub fn max_reference(p: &MaxParams, a: &[u64], b: &[u64], n: u64) -> u64 {
    let mut m = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| sext(x.wrapping_add(y) & mask(p.in_bits), p.in_bits) >> p.shift.min(63))
        .max()
        .unwrap_or(0);
    if p.relu {
        m = m.max(0);
    }
    if let Some(c) = p.cap {
        m = m.min(c as i64);
    }
    (m as u64).wrapping_add(n) & mask(p.out_bits)
}

/// The max circuit written once for every interpretation.
///
/// Server wires: `a_0 … a_{n−1}` (w each). Client wires: `b_0 … b_{n−1}` (w each), then `n`
/// (k). Output: k wires. Cost: n·(w − 1) to add the shares, (n − 1)·2(w − F) for the comparison
/// tree (compare, select), w − F − 1 for a fused ReLU, 2·L for a cap on L-bit values, k − 1 to add
/// the mask.
pub fn max_circuit<B: Builder + ?Sized>(
    bld: &mut B,
    p: &MaxParams,
    server: &[B::Wire],
    client: &[B::Wire],
) -> Result<Vec<B::Wire>, GcError> {
    let (n, w, f, k) = (
        p.inputs as usize,
        p.in_bits as usize,
        p.shift as usize,
        p.out_bits as usize,
    );
    if server.len() != n * w || client.len() != n * w + k {
        return Err(GcError::Length {
            what: "max circuit inputs",
            expected: 2 * n * w + k,
            got: server.len() + client.len(),
        });
    }
    let tb = p.trunc_bits();
    // t_i = (a_i + b_i mod 2^w) >> F, a (w − F)-bit two's-complement word (the shift is rewiring).
    let mut words: Vec<Vec<B::Wire>> = (0..n)
        .map(|i| {
            let y = gadgets::add(
                bld,
                &server[i * w..(i + 1) * w],
                &client[i * w..(i + 1) * w],
            );
            y[f..].to_vec()
        })
        .collect();
    // Balanced comparison tree: max(x, y) = [x < y] ? y : x.
    while words.len() > 1 {
        let mut next = Vec::with_capacity(words.len().div_ceil(2));
        let mut it = words.into_iter();
        while let Some(x) = it.next() {
            match it.next() {
                Some(y) => {
                    let lt = gadgets::lt_signed(bld, &x, &y);
                    next.push(gadgets::mux(bld, &lt, &x, &y));
                }
                None => next.push(x),
            }
        }
        words = next;
    }
    let mut m = words.pop().unwrap_or_default();
    let nmask = &client[n * w..];
    // Width of m as an unsigned value once rectified (the sign bit is then 0 and dropped).
    let signed = !p.relu;
    if p.relu {
        m = gadgets::relu_signed(bld, &m);
        m.truncate(tb - 1);
    }
    if let Some(c) = p.cap {
        let bits = m.len();
        // A cap at or beyond the largest representable value can never apply.
        let fits = if signed {
            bits > 0 && (c as i128) < (1i128 << (bits - 1))
        } else {
            (c as u128) < (1u128 << bits)
        };
        if fits {
            let cw = gadgets::constant(bld, c, bits);
            let over = if signed {
                gadgets::lt_signed(bld, &cw, &m)
            } else {
                gadgets::lt_unsigned(bld, &cw, &m)
            };
            m = gadgets::mux(bld, &over, &m, &cw);
        }
    }
    if m.is_empty() {
        return Ok(nmask.to_vec());
    }
    // Into Z_2^k: sign-extend a signed maximum, zero-extend a rectified one (add_mixed does).
    let m = if signed { gadgets::sext(&m, k) } else { m };
    let m = &m[..m.len().min(k)];
    Ok(gadgets::add_mixed(bld, m, nmask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Plain;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn grid() -> Vec<MaxParams> {
        let mk = |inputs, in_bits, shift, out_bits, relu, cap| MaxParams {
            inputs,
            in_bits,
            shift,
            out_bits,
            relu,
            cap,
        };
        vec![
            mk(9, 27, 8, 52, true, None),
            mk(9, 19, 0, 52, false, None),
            mk(4, 27, 8, 52, true, None),
            mk(2, 8, 3, 8, false, None),
            mk(3, 8, 0, 8, true, Some(100)),
            mk(1, 27, 8, 52, true, Some(6 * 256)),
            mk(1, 12, 4, 20, false, Some(50)),
            mk(5, 64, 12, 64, true, None),
            mk(6, 20, 19, 52, false, None),
            mk(7, 20, 18, 52, true, Some(1)),
            mk(2, 40, 4, 20, false, Some(3)),
            mk(1, 1, 0, 1, false, None),
        ]
    }

    fn check(p: &MaxParams, rng: &mut ChaCha20Rng, trials: usize) {
        let n = p.inputs as usize;
        let mw = mask(p.in_bits);
        let mk = mask(p.out_bits);
        let mut cases: Vec<(Vec<u64>, Vec<u64>, u64)> = Vec::new();
        for t in 0..trials {
            let mut a = Vec::with_capacity(n);
            let mut b = Vec::with_capacity(n);
            for _ in 0..n {
                // Mix uniform shares with shares of small values around 0 and around the cap.
                let y = match t % 3 {
                    0 => rng.next_u64(),
                    1 => (rng.next_u64() % 2048).wrapping_sub(1024) << p.shift.min(20),
                    _ => p
                        .cap
                        .unwrap_or(0)
                        .wrapping_shl(p.shift)
                        .wrapping_add(rng.next_u64() % 5)
                        .wrapping_sub(2),
                } & mw;
                let s = rng.next_u64() & mw;
                a.push(s);
                b.push(y.wrapping_sub(s) & mw);
            }
            cases.push((a, b, rng.next_u64() & mk));
        }
        for batch in cases.chunks(64) {
            let mut server = Vec::new();
            let mut client = Vec::new();
            for i in 0..n {
                let ai: Vec<u64> = batch.iter().map(|c| c.0[i]).collect();
                let bi: Vec<u64> = batch.iter().map(|c| c.1[i]).collect();
                server.extend(Plain::slice(&ai, p.in_bits));
                client.extend(Plain::slice(&bi, p.in_bits));
            }
            let nm: Vec<u64> = batch.iter().map(|c| c.2).collect();
            client.extend(Plain::slice(&nm, p.out_bits));
            let out = max_circuit(&mut Plain, p, &server, &client).unwrap();
            let got = Plain::unslice(&out, batch.len());
            for (j, (a, b, nn)) in batch.iter().enumerate() {
                assert_eq!(
                    got[j],
                    max_reference(p, a, b, *nn),
                    "{p:?} a={a:x?} b={b:x?}"
                );
            }
        }
    }

    #[test]
    fn plain_circuit_equals_reference() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for p in grid() {
            check(&p, &mut rng, 1500);
        }
    }

    #[test]
    fn gate_counts_follow_the_documented_formula() {
        // 3×3 window, w = 27, F = 8, k = 52, fused ReLU: 9·26 + 8·2·19 + 18 + 51 = 607.
        let p = MaxParams::new(9, 27, 8, 52, true, None).unwrap();
        assert_eq!(p.gate_count().ands, 9 * 26 + 8 * 2 * 19 + 18 + 51);
        assert_eq!(p.comparisons(), 8);
        // ReLU6: the ReLU's 95 gates plus a comparison and a selection on 18 bits.
        let r6 = MaxParams::relu_capped(27, 8, 52, 6 << 8).unwrap();
        assert_eq!(r6.gate_count().ands, 95 + 2 * 18);
        assert_eq!(r6.comparisons(), 1);
        // Without the cap the one-element circuit is exactly the ReLU circuit.
        let r = MaxParams::new(1, 27, 8, 52, true, None).unwrap();
        assert_eq!(r.gate_count().ands, crate::ReluParams::DEFAULT.and_gates());
    }

    #[test]
    fn invalid_params_are_refused() {
        assert!(MaxParams::new(0, 27, 8, 52, true, None).is_err());
        assert!(MaxParams::new(MAX_WINDOW + 1, 27, 8, 52, true, None).is_err());
        assert!(MaxParams::new(4, 27, 27, 52, true, None).is_err());
        assert!(MaxParams::new(4, 65, 8, 52, true, None).is_err());
        assert!(MaxParams::new(4, 27, 8, 52, true, Some(1 << 62)).is_err());
        let p = MaxParams::new(2, 8, 0, 8, false, None).unwrap();
        assert!(matches!(
            max_circuit(&mut Plain, &p, &[0; 15], &[0; 24]),
            Err(GcError::Length { .. })
        ));
    }
}
