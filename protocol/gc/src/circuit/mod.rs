//! Circuits written once against [`Builder`] and interpreted several ways.
//!
//! A circuit is a Rust function generic over `B: Builder`. The same function run with
//! [`Plain`] computes on bits (the test oracle), with [`GateCounter`] counts gates (the figure
//! in reports), and with the garbler/evaluator of [`crate::garble`] produces or evaluates
//! garbled tables. Since all four run one definition, they cannot disagree.

mod counter;
pub mod gadgets;
mod plain;

pub use counter::GateCounter;
pub use plain::Plain;

/// Bit-level circuit operations: XOR and NOT are free under free-XOR, AND costs a garbled table.
pub trait Builder {
    /// A wire: a bit (plain), a label vector (garbling), or nothing (counting).
    type Wire: Clone;

    /// a ⊕ b.
    fn xor(&mut self, a: &Self::Wire, b: &Self::Wire) -> Self::Wire;
    /// a ∧ b (one garbled AND gate).
    fn and(&mut self, a: &Self::Wire, b: &Self::Wire) -> Self::Wire;
    /// ¬a.
    fn not(&mut self, a: &Self::Wire) -> Self::Wire;
    /// The public constant 0.
    fn zero(&mut self) -> Self::Wire;

    /// The public constant 1.
    fn one(&mut self) -> Self::Wire {
        let z = self.zero();
        self.not(&z)
    }
}
