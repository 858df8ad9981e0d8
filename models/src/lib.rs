//! The network representation shared by the protocol, the binaries and the optimizer.
//!
//! A [`Model`] is a topologically ordered list of [`Node`]s over CHW tensors (batch 1).
//! BatchNorm never appears here: it is folded into the preceding convolution at import.
//!
//! * [`builder`]: construct models; [`zoo`]: known networks with seeded weights;
//! * [`Model::shapes`] / [`Model::validate`]: shape checking; [`count`]: ReLU/MAC accounting;
//! * [`onnx`]: import/export; [`float`] and [`fixed`]: reference inference; [`npy`]: input images.

#![warn(missing_docs)]

pub mod builder;
pub mod count;
mod error;
pub mod fixed;
pub mod float;
pub mod graph;
pub mod init;
mod kernel;
pub mod npy;
pub mod onnx;
mod ops;
mod shape;
pub mod zoo;

pub use error::ModelError;
pub use graph::{
    Affine, Conv2d, ElementMask, GatherMean, Linear, MaxPool, Model, Node, NodeId, Op, Pool, Relu,
    Shape, Slice, Stage, Window,
};

/// The `rand` version the weight initialisers take (rand 0.8 / rand_core 0.6).
pub use rand;
/// The seedable generator used by [`zoo`] (ChaCha).
pub use rand_chacha;
