//! Training, distillation and evaluation of the networks the optimizer designs.
//!
//! * [`data`]: CIFAR-10/100, TinyImageNet, scikit-learn digits and MNIST-5k loaders, fitting
//!   to the input shape, normalisation, augmentation;
//! * [`net`]: a burn (flex CPU backend) network interpreted from a `models::Model`, trained
//!   with BatchNorm and exported with BatchNorm folded;
//! * [`loss`], [`sgd`], [`trainer`], [`checkpoint`]: the DeepReShape Appendix J recipe
//!   (momentum SGD, cosine schedule, Hinton KD / DKD), checkpoints and resume;
//! * [`criticality`]: the stagewise ReLU criticality `C_k` and the order `pi-opt design` takes;
//! * [`eval`], [`private`]: float / fixed-point / private-inference accuracy;
//! * [`plot`]: accuracy vs ReLUs and estimated latency;
//! * [`cli`]: argument structs and `run_*` entry points for `pi-train` and `pi-opt`.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod criticality;
pub mod data;
mod error;
pub mod eval;
pub mod loss;
pub mod net;
pub mod plot;
pub mod private;
pub mod rng;
pub mod samples;
pub mod sgd;
pub mod trainer;

pub use error::{Error, Result};
