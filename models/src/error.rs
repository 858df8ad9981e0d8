//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while building, loading, checking or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The model as a whole is malformed (no nodes, output out of range, ...).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// A node is malformed: wrong arity, forward reference, bad parameters or weight sizes.
    #[error("node `{node}`: {reason}")]
    InvalidNode {
        /// Name of the offending node.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// A node's inputs do not have the shapes it needs.
    #[error("node `{node}`: shape mismatch: {reason}")]
    ShapeMismatch {
        /// Name of the offending node.
        node: String,
        /// What does not fit.
        reason: String,
    },
    /// The ONNX file is not a valid protobuf message.
    #[error("ONNX protobuf decode failed: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The ONNX graph uses an operator (or operator form) this crate does not implement.
    #[error("unsupported ONNX operator `{op}` (node `{node}`): {hint}")]
    UnsupportedOp {
        /// The ONNX `op_type` (with the unsupported form, e.g. `Reshape to [1, 2, 3]`).
        op: String,
        /// The ONNX node name.
        node: String,
        /// What to change in the PyTorch model.
        hint: String,
    },
    /// The ONNX graph uses an attribute (or attribute value) this crate does not implement.
    #[error("unsupported attribute `{attribute}` of `{op}` (node `{node}`): {reason}")]
    UnsupportedAttribute {
        /// The ONNX `op_type`.
        op: String,
        /// The ONNX node name.
        node: String,
        /// The attribute name.
        attribute: String,
        /// Why it is refused.
        reason: String,
    },
    /// The ONNX content is inconsistent (missing tensor, bad dims, wrong data type, ...).
    #[error("invalid ONNX at `{node}`: {reason}")]
    Onnx {
        /// The ONNX node (or tensor / graph part) involved.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// The model is valid but cannot be run in this mode (e.g. a non power-of-two pool in fixed point).
    #[error("node `{node}`: unsupported: {reason}")]
    Unsupported {
        /// Name of the offending node.
        node: String,
        /// Why.
        reason: String,
    },
    /// A `.npy` file is malformed or not a float32 image.
    #[error("npy: {0}")]
    Npy(String),
    /// The input tensor given to inference does not fit the model.
    #[error("bad input: {0}")]
    BadInput(String),
}

impl ModelError {
    /// Shorthand for [`ModelError::InvalidNode`].
    pub(crate) fn node(node: &str, reason: impl Into<String>) -> Self {
        ModelError::InvalidNode {
            node: node.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::ShapeMismatch`].
    pub(crate) fn shape(node: &str, reason: impl Into<String>) -> Self {
        ModelError::ShapeMismatch {
            node: node.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::Onnx`].
    pub(crate) fn onnx(node: &str, reason: impl Into<String>) -> Self {
        ModelError::Onnx {
            node: node.to_string(),
            reason: reason.into(),
        }
    }
}
