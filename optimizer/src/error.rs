//! The optimizer's error type.

use thiserror::Error;

/// Everything the optimizer library can refuse or fail at.
#[derive(Debug, Error)]
pub enum OptError {
    /// A stage name that is not `S<n>` / `stage<n>` / `<n>` within the network's stages.
    #[error("unknown stage '{0}' (expected S1..S{1}, stage<n> or <n>)")]
    BadStage(String, usize),
    /// An architecture description that cannot be built (zero channels, mismatched lists, ...).
    #[error("invalid architecture: {0}")]
    InvalidArch(String),
    /// A design problem (Algorithm 1) that is malformed or too large to enumerate.
    #[error("invalid design problem: {0}")]
    InvalidProblem(String),
    /// A ReLU budget no network of the family fits into.
    #[error("no network fits the ReLU budget: {0}")]
    Budget(String),
    /// A model the protocol cannot compile or plan (for the cost estimate).
    #[error("{0}")]
    Invalid(String),
    /// An error from the `models` crate (graph construction, ONNX, inference).
    #[error(transparent)]
    Model(#[from] models::ModelError),
}
