//! What one garbled circuit computes: a [`CircuitSpec`] names the circuit family and its
//! parameters, and is the unit the offline/online sessions garble, transfer and evaluate.
//!
//! Every family is a function written once against [`crate::circuit::Builder`]; this module
//! dispatches a spec to it for all four interpretations (plain, count, garble, evaluate) and
//! states its input/output layout:
//! * server (garbler) inputs: `server_words()` words of `in_bits` each (its shares);
//! * client (evaluator) inputs: `client_words()` words: its shares (`in_bits` each), then the
//!   output mask n = −r (`out_bits`);
//! * output: `out_bits` wires, decoded by the server.
//!
//! Comparisons are a concept of their own ([`CircuitSpec::comparisons`]): a ReLU makes none beyond
//! its sign test, a maximum over n elements n − 1, a cap one more. Reports and `pi-opt count` add
//! them up next to ReLUs.

use crate::block::{lsb, Block, Tccr};
use crate::circuit::{Builder, GateCounter};
use crate::garble::{LaneEvaluator, LaneGarbler};
use crate::max::{max_circuit, max_reference, MaxParams};
use crate::relu::{mask, relu_circuit, relu_reference, ReluParams};
use crate::GcError;

/// One garbled circuit's function and parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitSpec {
    /// `ReLU(trunc(a + b)) − r` (docs/protocol.md, "ReLU garbled circuit").
    Relu(ReluParams),
    /// `clamp(max_i trunc(a_i + b_i)) − r`: max pooling (fused ReLU optional), ReLU6.
    Max(MaxParams),
}

impl From<ReluParams> for CircuitSpec {
    fn from(p: ReluParams) -> Self {
        CircuitSpec::Relu(p)
    }
}

impl From<MaxParams> for CircuitSpec {
    fn from(p: MaxParams) -> Self {
        CircuitSpec::Max(p)
    }
}

impl CircuitSpec {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), GcError> {
        match self {
            CircuitSpec::Relu(p) => p.validate(),
            CircuitSpec::Max(p) => p.validate(),
        }
    }

    /// w: bits read from each input share.
    pub fn in_bits(&self) -> u32 {
        match self {
            CircuitSpec::Relu(p) => p.in_bits,
            CircuitSpec::Max(p) => p.in_bits,
        }
    }

    /// k: output ring bits.
    pub fn out_bits(&self) -> u32 {
        match self {
            CircuitSpec::Relu(p) => p.out_bits,
            CircuitSpec::Max(p) => p.out_bits,
        }
    }

    /// Shares each party feeds in (window elements; 1 for a ReLU).
    pub fn server_words(&self) -> usize {
        match self {
            CircuitSpec::Relu(_) => 1,
            CircuitSpec::Max(p) => p.inputs as usize,
        }
    }

    /// Client input words: its shares, then the output mask.
    pub fn client_words(&self) -> usize {
        self.server_words() + 1
    }

    /// Garbler input bits.
    pub fn server_input_bits(&self) -> usize {
        self.server_words() * self.in_bits() as usize
    }

    /// Evaluator input bits.
    pub fn client_input_bits(&self) -> usize {
        self.server_input_bits() + self.out_bits() as usize
    }

    /// Output bits decoded by the server.
    pub fn output_bits(&self) -> usize {
        self.out_bits() as usize
    }

    /// ReLUs the circuit evaluates (1 for a ReLU, a fused ReLU or ReLU6; 0 for a plain maximum).
    pub fn relus(&self) -> u64 {
        match self {
            CircuitSpec::Relu(_) => 1,
            CircuitSpec::Max(p) => p.relu as u64,
        }
    }

    /// Comparisons beyond ReLU sign tests (maximum: n − 1; cap: 1).
    pub fn comparisons(&self) -> u64 {
        match self {
            CircuitSpec::Relu(_) => 0,
            CircuitSpec::Max(p) => p.comparisons(),
        }
    }

    /// All gate counts (counted by running the circuit through [`GateCounter`]).
    pub fn gate_count(&self) -> GateCounter {
        match self {
            CircuitSpec::Relu(p) => p.gate_count(),
            CircuitSpec::Max(p) => p.gate_count(),
        }
    }

    /// AND gates.
    pub fn and_gates(&self) -> usize {
        self.gate_count().ands
    }

    /// Bytes of garbled table for one circuit.
    pub fn table_bytes(&self) -> usize {
        self.and_gates() * crate::garble::TABLE_BYTES_PER_AND
    }

    /// The spec's bytes in the parameter digest both parties compare.
    pub(crate) fn digest_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        match self {
            CircuitSpec::Relu(p) => {
                v.push(0);
                v.extend(p.in_bits.to_le_bytes());
                v.extend(p.shift.to_le_bytes());
                v.extend(p.out_bits.to_le_bytes());
            }
            CircuitSpec::Max(p) => {
                v.push(1);
                v.extend(p.inputs.to_le_bytes());
                v.extend(p.in_bits.to_le_bytes());
                v.extend(p.shift.to_le_bytes());
                v.extend(p.out_bits.to_le_bytes());
                v.push(p.relu as u8);
                v.extend(p.cap.map_or(u64::MAX, |c| c).to_le_bytes());
            }
        }
        v
    }

    /// The ring-level function: `server` are the server's words, `client` the client's words
    /// (its shares, then the mask n).
    pub fn reference(&self, server: &[u64], client: &[u64]) -> Result<u64, GcError> {
        let words = self.server_words();
        if server.len() != words || client.len() != words + 1 {
            return Err(GcError::Length {
                what: "circuit reference inputs",
                expected: 2 * words + 1,
                got: server.len() + client.len(),
            });
        }
        Ok(match self {
            CircuitSpec::Relu(p) => relu_reference(p, server[0], client[0], client[1]),
            CircuitSpec::Max(p) => max_reference(p, server, &client[..words], client[words]),
        })
    }

    /// Runs the circuit on any builder: `server` and `client` are the input wires in the layout
    /// of the module docs.
    pub fn circuit<B: Builder + ?Sized>(
        &self,
        bld: &mut B,
        server: &[B::Wire],
        client: &[B::Wire],
    ) -> Result<Vec<B::Wire>, GcError> {
        match self {
            CircuitSpec::Relu(p) => {
                let w = p.in_bits as usize;
                if client.len() < w {
                    return Err(GcError::Length {
                        what: "ReLU circuit inputs",
                        expected: w,
                        got: client.len(),
                    });
                }
                relu_circuit(bld, p, server, &client[..w], &client[w..])
            }
            CircuitSpec::Max(p) => max_circuit(bld, p, server, client),
        }
    }

    /// Packs a client's input words into the circuit's bit layout (little-endian per word).
    pub(crate) fn client_bits(&self, words: &[u64], mut put: impl FnMut(usize)) {
        let w = self.in_bits();
        let mut pos = 0;
        for (i, &v) in words.iter().enumerate() {
            let bits = if i < self.server_words() {
                w
            } else {
                self.out_bits()
            };
            let v = v & mask(bits);
            for j in 0..bits as usize {
                if (v >> j) & 1 == 1 {
                    put(pos + j);
                }
            }
            pos += bits as usize;
        }
    }
}

/// Garbles a group of `L` identical circuits; returns each circuit's output decoding bits.
///
/// `a0`/`c0` are the zero labels of the server / client input wires, one `[Block; L]` per bit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn garble_group<const L: usize>(
    hash: &Tccr,
    delta: Block,
    spec: &CircuitSpec,
    circuits: [u64; L],
    a0: &[[Block; L]],
    c0: &[[Block; L]],
    tables: &mut [u8],
    stride: usize,
) -> Result<[u64; L], GcError> {
    let mut g = LaneGarbler::<L>::new(hash, delta, circuits, tables, stride);
    let out = spec.circuit(&mut g, a0, c0)?;
    Ok(colours(&out))
}

/// Evaluates a group of `L` identical circuits; returns each circuit's output colour bits.
pub(crate) fn eval_group<const L: usize>(
    hash: &Tccr,
    spec: &CircuitSpec,
    circuits: [u64; L],
    a: &[[Block; L]],
    c: &[[Block; L]],
    tables: [&[u8]; L],
) -> Result<[u64; L], GcError> {
    let mut e = LaneEvaluator::<L>::new(hash, circuits, tables);
    let out = spec.circuit(&mut e, a, c)?;
    Ok(colours(&out))
}

/// Packs the point-and-permute bit of every output wire, per lane.
fn colours<const L: usize>(out: &[[Block; L]]) -> [u64; L] {
    std::array::from_fn(|l| {
        out.iter()
            .enumerate()
            .fold(0u64, |acc, (j, w)| acc | ((lsb(w[l]) as u64) << j))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Plain;

    #[test]
    fn relu_spec_keeps_the_relu_circuit_and_digest_layout() {
        let s = CircuitSpec::from(ReluParams::DEFAULT);
        assert_eq!(s.and_gates(), 95);
        assert_eq!(
            (
                s.server_input_bits(),
                s.client_input_bits(),
                s.output_bits()
            ),
            (27, 79, 52)
        );
        assert_eq!((s.relus(), s.comparisons()), (1, 0));
        let m = CircuitSpec::from(MaxParams::new(4, 27, 8, 52, true, None).unwrap());
        assert_ne!(s.digest_bytes(), m.digest_bytes());
        assert_eq!((m.server_words(), m.client_words()), (4, 5));
        assert_eq!((m.relus(), m.comparisons()), (1, 3));
    }

    #[test]
    fn client_bits_follow_the_wire_layout() {
        let s = CircuitSpec::from(MaxParams::new(2, 4, 1, 6, false, None).unwrap());
        let mut bits = vec![false; s.client_input_bits()];
        s.client_bits(&[0b1001, 0b0110, 0b100001], |i| bits[i] = true);
        let want = [
            true, false, false, true, false, true, true, false, true, false, false, false, false,
            true,
        ];
        assert_eq!(bits, want);
        // The plain circuit on the same layout equals the reference.
        let server: Vec<u64> = [3u64, 9]
            .iter()
            .flat_map(|&v| Plain::slice(&[v], 4))
            .collect();
        let client: Vec<u64> = bits.iter().map(|&b| b as u64).collect();
        let out = s.circuit(&mut Plain, &server, &client).unwrap();
        let got = Plain::unslice(&out, 1)[0];
        assert_eq!(
            got,
            s.reference(&[3, 9], &[0b1001, 0b0110, 0b100001]).unwrap()
        );
    }
}
