//! The ReLU circuit over the share ring Z_2^k (docs/protocol.md, "ReLU garbled circuit").

use crate::circuit::{gadgets, Builder, GateCounter};
use crate::GcError;

/// Parameters of one ReLU circuit: input share width w, truncation F, output ring bits k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReluParams {
    /// w: the circuit reads the low w bits of each input share.
    pub in_bits: u32,
    /// F: arithmetic right shift (fixed-point truncation) applied before the ReLU.
    pub shift: u32,
    /// k: the output lives in Z_2^k.
    pub out_bits: u32,
}

impl Default for ReluParams {
    fn default() -> Self {
        ReluParams::DEFAULT
    }
}

/// Low `n` bits set (n ≥ 64 gives all ones).
#[inline]
pub(crate) fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Reads the low `n` bits of `x` as a two's-complement number.
#[inline]
fn sext(x: u64, n: u32) -> i64 {
    match n {
        0 => 0,
        n if n >= 64 => x as i64,
        n => ((x << (64 - n)) as i64) >> (64 - n),
    }
}

impl ReluParams {
    /// The defaults of docs/protocol.md: w = 27, F = 8, k = 52.
    pub const DEFAULT: ReluParams = ReluParams {
        in_bits: 27,
        shift: 8,
        out_bits: 52,
    };

    /// Builds and validates parameters.
    pub fn new(in_bits: u32, shift: u32, out_bits: u32) -> Result<Self, GcError> {
        let p = ReluParams {
            in_bits,
            shift,
            out_bits,
        };
        p.validate()?;
        Ok(p)
    }

    /// Checks 1 ≤ w ≤ 64, 1 ≤ k ≤ 64 and F < w.
    pub fn validate(&self) -> Result<(), GcError> {
        if !(1..=64).contains(&self.in_bits)
            || !(1..=64).contains(&self.out_bits)
            || self.shift >= self.in_bits
        {
            return Err(GcError::InvalidParams(format!(
                "ReLU needs 1 <= w <= 64, 1 <= k <= 64, F < w; got w={}, F={}, k={}",
                self.in_bits, self.shift, self.out_bits
            )));
        }
        Ok(())
    }

    /// AND gates of the circuit, counted by running it through [`GateCounter`].
    pub fn and_gates(&self) -> usize {
        self.gate_count().ands
    }

    /// All gate counts of the circuit (AND, XOR, NOT).
    pub fn gate_count(&self) -> GateCounter {
        let mut c = GateCounter::default();
        let a = vec![(); self.in_bits as usize];
        let n = vec![(); self.out_bits as usize];
        // The only error is a length mismatch, impossible with these inputs.
        let _ = relu_circuit(&mut c, self, &a, &a, &n);
        c
    }

    /// Garbler (server) input bits: the share a (w bits).
    pub fn server_input_bits(&self) -> usize {
        self.in_bits as usize
    }

    /// Evaluator (client) input bits: the share b (w bits) and n = −r (k bits).
    pub fn client_input_bits(&self) -> usize {
        (self.in_bits + self.out_bits) as usize
    }

    /// Output bits decoded by the server (k).
    pub fn output_bits(&self) -> usize {
        self.out_bits as usize
    }

    /// Bytes of garbled table for one circuit.
    pub fn table_bytes(&self) -> usize {
        self.and_gates() * crate::garble::TABLE_BYTES_PER_AND
    }
}

/// The ring-level function the circuit replaces: `(max(0, sext_w(a + b) >> F) + n) mod 2^k`.
///
/// With n = −r this is ReLU − r, the server's share of the output. Only the low w bits of `a`
/// and `b` and the low k bits of `n` are read.
pub fn relu_reference(p: &ReluParams, a: u64, b: u64, n: u64) -> u64 {
    let y = a.wrapping_add(b) & mask(p.in_bits);
    let t = sext(y, p.in_bits) >> p.shift.min(63);
    let r = t.max(0) as u64;
    r.wrapping_add(n) & mask(p.out_bits)
}

/// Inputs `(a, b, n)` at the boundaries of [`relu_reference`] for tests of every ReLU
/// implementation: y = a + b at 0, ±1, the sign boundary, the shift boundary and just past the
/// largest positive value, n at 0, 1, the top and the sign bit; each y shared three ways (random
/// `a`, `a = y`, `b = y`), the random shares drawn from `rng`.
pub fn relu_edge_cases(p: &ReluParams, rng: &mut impl rand_core::RngCore) -> Vec<(u64, u64, u64)> {
    let mw = mask(p.in_bits);
    let mk = mask(p.out_bits);
    let half = 1u64 << (p.in_bits.clamp(1, 64) - 1);
    let sh = 1u64.checked_shl(p.shift).unwrap_or(0);
    let ys = [
        0,
        1,
        mw,
        (half - 1) & mw,
        half & mw,
        (half + 1) & mw,
        sh & mw,
        sh.wrapping_sub(1) & mw,
        sh.wrapping_neg() & mw,
        (sh + 1) & mw,
        (half - 1) & !(sh.wrapping_sub(1)) & mw,
        half.wrapping_sub(sh) & mw,
    ];
    let ns = [
        0,
        1,
        mk,
        mk.wrapping_sub(1) & mk,
        1u64 << (p.out_bits.clamp(1, 64) - 1),
    ];
    let mut v = Vec::with_capacity(ys.len() * ns.len() * 3);
    for &y in &ys {
        for &n in &ns {
            let a = rng.next_u64() & mw;
            v.push((a, y.wrapping_sub(a) & mw, n)); // shares of y
            v.push((y, 0, n));
            v.push((0, y, n));
        }
    }
    v
}

/// The ReLU circuit written once for every interpretation.
///
/// Inputs are little-endian wires: `a` (w), `b` (w), `n` (k); the output has k wires. Cost
/// (w − 1) + min(w − F − 1, k) + (k − 1) AND gates (zero when w − F − 1 = 0: the output is n).
pub fn relu_circuit<B: Builder + ?Sized>(
    bld: &mut B,
    p: &ReluParams,
    a: &[B::Wire],
    b: &[B::Wire],
    n: &[B::Wire],
) -> Result<Vec<B::Wire>, GcError> {
    let (w, f, k) = (p.in_bits as usize, p.shift as usize, p.out_bits as usize);
    if a.len() != w || b.len() != w || n.len() != k {
        return Err(GcError::Length {
            what: "ReLU circuit inputs",
            expected: 2 * w + k,
            got: a.len() + b.len() + n.len(),
        });
    }
    // Bits of the shifted, rectified value that can be nonzero and land inside Z_2^k.
    let len = w.saturating_sub(f + 1).min(k);
    if len == 0 {
        return Ok(n.to_vec());
    }
    let y = gadgets::add(bld, a, b);
    let positive = bld.not(&y[w - 1]);
    let z: Vec<B::Wire> = (0..len).map(|j| bld.and(&y[j + f], &positive)).collect();
    Ok(gadgets::add_mixed(bld, &z, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Plain;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn params_grid() -> Vec<ReluParams> {
        vec![
            ReluParams::DEFAULT,
            ReluParams {
                in_bits: 1,
                shift: 0,
                out_bits: 1,
            },
            ReluParams {
                in_bits: 2,
                shift: 0,
                out_bits: 3,
            },
            ReluParams {
                in_bits: 8,
                shift: 3,
                out_bits: 8,
            },
            ReluParams {
                in_bits: 27,
                shift: 26,
                out_bits: 52,
            },
            ReluParams {
                in_bits: 27,
                shift: 25,
                out_bits: 52,
            },
            ReluParams {
                in_bits: 40,
                shift: 0,
                out_bits: 20,
            },
            ReluParams {
                in_bits: 52,
                shift: 16,
                out_bits: 52,
            },
            ReluParams {
                in_bits: 64,
                shift: 12,
                out_bits: 64,
            },
            ReluParams {
                in_bits: 64,
                shift: 0,
                out_bits: 64,
            },
            ReluParams {
                in_bits: 20,
                shift: 4,
                out_bits: 64,
            },
        ]
    }

    #[test]
    fn default_circuit_has_95_and_gates_as_documented() {
        assert_eq!(ReluParams::DEFAULT.and_gates(), 95);
        for p in params_grid() {
            let (w, f, k) = (p.in_bits as usize, p.shift as usize, p.out_bits as usize);
            let len = w.saturating_sub(f + 1).min(k);
            let doc = if len == 0 { 0 } else { (w - 1) + len + (k - 1) };
            assert_eq!(p.and_gates(), doc, "{p:?}");
        }
    }

    #[test]
    fn invalid_params_are_refused() {
        assert!(ReluParams::new(0, 0, 52).is_err());
        assert!(ReluParams::new(27, 27, 52).is_err());
        assert!(ReluParams::new(27, 8, 65).is_err());
        assert!(ReluParams::new(65, 8, 52).is_err());
        assert!(ReluParams::new(27, 8, 52).is_ok());
        let p = ReluParams::DEFAULT;
        assert!(matches!(
            relu_circuit(&mut Plain, &p, &[0; 26], &[0; 27], &[0; 52]),
            Err(GcError::Length { .. })
        ));
    }

    #[test]
    fn reference_matches_hand_computed_values() {
        let p = ReluParams::DEFAULT;
        let m = mask(52);
        // y = 1000 (positive): 1000 >> 8 = 3.
        assert_eq!(relu_reference(&p, 600, 400, 0), 3);
        // Negative y: ReLU = 0, output = n.
        assert_eq!(relu_reference(&p, (1 << 27) - 5, 0, 77), 77);
        // Wrap-around inside w bits: a + b = 2^27 + 512 reads as 512.
        assert_eq!(relu_reference(&p, (1 << 27) - 1, 513, 0), 2);
        // n = −r: the output is ReLU − r.
        assert_eq!(relu_reference(&p, 256 * 10, 0, 3u64.wrapping_neg() & m), 7);
        // Largest positive w-bit value and the most negative one.
        assert_eq!(
            relu_reference(&p, (1 << 26) - 1, 0, 0),
            ((1u64 << 26) - 1) >> 8
        );
        assert_eq!(relu_reference(&p, 1 << 26, 0, 0), 0);
        // Truncation boundary: 255 → 0, 256 → 1, −1 → 0.
        assert_eq!(relu_reference(&p, 255, 0, 0), 0);
        assert_eq!(relu_reference(&p, 256, 0, 0), 1);
        assert_eq!(relu_reference(&p, (1 << 27) - 1, 0, 0), 0);
    }

    /// Runs the circuit in Plain on 64 cases at a time and compares with the reference.
    fn plain_matches(p: &ReluParams, cases: &[(u64, u64, u64)]) {
        for batch in cases.chunks(64) {
            let a: Vec<u64> = batch.iter().map(|c| c.0).collect();
            let b: Vec<u64> = batch.iter().map(|c| c.1).collect();
            let n: Vec<u64> = batch.iter().map(|c| c.2).collect();
            let out = relu_circuit(
                &mut Plain,
                p,
                &Plain::slice(&a, p.in_bits),
                &Plain::slice(&b, p.in_bits),
                &Plain::slice(&n, p.out_bits),
            )
            .unwrap();
            let got = Plain::unslice(&out, batch.len());
            for (i, &(a, b, n)) in batch.iter().enumerate() {
                assert_eq!(
                    got[i],
                    relu_reference(p, a, b, n),
                    "{p:?} a={a:#x} b={b:#x} n={n:#x}"
                );
            }
        }
    }

    #[test]
    fn plain_circuit_equals_reference_on_edges_and_random() {
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        for p in params_grid() {
            let mut cases = relu_edge_cases(&p, &mut rng);
            for _ in 0..2000 {
                cases.push((
                    rng.next_u64() & mask(p.in_bits),
                    rng.next_u64() & mask(p.in_bits),
                    rng.next_u64() & mask(p.out_bits),
                ));
            }
            plain_matches(&p, &cases);
        }
    }

    #[test]
    fn plain_circuit_equals_reference_1e5_random_cases() {
        let mut rng = ChaCha20Rng::seed_from_u64(100);
        let p = ReluParams::DEFAULT;
        let cases: Vec<(u64, u64, u64)> = (0..100_000)
            .map(|_| {
                (
                    rng.next_u64() & mask(27),
                    rng.next_u64() & mask(27),
                    rng.next_u64() & mask(52),
                )
            })
            .collect();
        plain_matches(&p, &cases);
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::block::{Block, Tccr};
    use crate::garble::TABLE_BYTES_PER_AND;
    use crate::spec::{eval_group, garble_group};
    use crate::CircuitSpec;

    #[test]
    #[ignore]
    fn time_garble_and_eval() {
        let p = ReluParams::DEFAULT;
        let hash = Tccr::new();
        let stride = p.and_gates() * TABLE_BYTES_PER_AND;
        let groups = 20_000;
        let mut tables = vec![0u8; 8 * stride];
        let a0: Vec<[Block; 8]> = (0..27)
            .map(|j| std::array::from_fn(|l| (j * 31 + l) as u128 * 0x9e3779b97f4a7c15))
            .collect();
        let c0: Vec<[Block; 8]> = (0..79)
            .map(|j| std::array::from_fn(|l| (j * 17 + l) as u128 * 0x7f4a7c159e3779b9))
            .collect();
        let t = std::time::Instant::now();
        let mut acc = 0u64;
        for g in 0..groups {
            let d = garble_group::<8>(
                &hash,
                0x1235,
                &CircuitSpec::Relu(p),
                std::array::from_fn(|l| (g * 8 + l) as u64),
                &a0,
                &c0,
                &mut tables,
                stride,
            )
            .unwrap();
            acc ^= d[0];
        }
        let el = t.elapsed().as_nanos() as f64 / (groups * 8) as f64;
        eprintln!(
            "garble: {:.0} ns/ReLU = {:.1} M AND/s ({acc})",
            el,
            95e3 / el
        );
        let t = std::time::Instant::now();
        for g in 0..groups {
            let sl: [&[u8]; 8] = std::array::from_fn(|l| &tables[l * stride..(l + 1) * stride]);
            let d = eval_group::<8>(
                &hash,
                &CircuitSpec::Relu(p),
                std::array::from_fn(|l| (g * 8 + l) as u64),
                &a0,
                &c0,
                sl,
            )
            .unwrap();
            acc ^= d[0];
        }
        let el = t.elapsed().as_nanos() as f64 / (groups * 8) as f64;
        eprintln!("eval: {:.0} ns/ReLU = {:.1} M AND/s ({acc})", el, 95e3 / el);
    }
}
