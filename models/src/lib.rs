//! The network representation shared by the protocol, the binaries and the optimizer.
//!
//! A [`Model`] is a topologically ordered list of [`Node`]s over CHW tensors (batch 1).
//! BatchNorm never appears here: it is folded into the preceding convolution at import.

pub mod graph;

pub use graph::{Conv2d, Linear, Model, Node, NodeId, Op, Pool, Relu, Shape, Stage};
