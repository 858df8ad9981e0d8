//! Oblivious transfer: Chou–Orlandi base OT and SoftSpoken correlated OT extension.
//!
//! The extension's correlation is a 128-bit Δ held by the OT sender (the garbler); the
//! receiver with choice bit c gets `v`, the sender gets `q = v ⊕ c·Δ`. Used as free-XOR labels
//! (zero label q, one label q ⊕ Δ), the receiver's outputs are exactly its active input labels,
//! so no chosen-message OT is needed. SoftSpoken with k = 1 is IKNP.

pub mod aes;
pub mod base;
pub mod softspoken;
mod transpose;

pub use softspoken::{CotReceiver, CotSender};
pub use transpose::transpose128;
