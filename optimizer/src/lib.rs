#![warn(missing_docs)]
//! Network design for ReLU-lean private inference (`pi-opt`).
//!
//! * [`arch`]: ResNet-style architecture descriptions and their analytic ReLU/MAC counts;
//! * [`equalize`]: DeepReShape Algorithm 1 (ReLU equalization) and the capacity–criticality step;
//! * [`steps`] and [`algorithm2`]: culling, thinning, channel scaling, ReLU-reuse, Algorithm 2;
//! * [`cryptonas`]: ReLU budgets, balancing, skip-ReLU pruning and shuffling;
//! * [`cost`]: the estimated PI cost (the protocol's own plan priced with measured constants, or flat);
//! * [`host`]: this host's measured figures for the estimate, cached;
//! * [`construct`]: building a `models::Model` (seeded He-normal weights) from an architecture;
//! * [`paper`]: the published numbers this crate reproduces.

pub mod algorithm2;
pub mod arch;
pub mod construct;
pub mod cost;
pub mod cryptonas;
pub mod equalize;
mod error;
pub mod host;
pub mod paper;
pub mod report;
pub mod steps;

pub use arch::{Arch, ArchCount, StageArch};
pub use cost::{CostModel, PiCost, PlannedCost, Timing};
pub use error::OptError;
