//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading data, training, exporting or evaluating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what its format requires.
    #[error("{}: {msg}", path.display())]
    Format {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// A data set does not fit the network (classes, shape) or is otherwise unusable.
    #[error("data: {0}")]
    Data(String),
    /// The network graph cannot be trained or exported as asked.
    #[error("model: {0}")]
    Model(String),
    /// The `models` crate refused an operation (validation, ONNX I/O, fixed-point planning, ...).
    #[error(transparent)]
    Models(#[from] models::ModelError),
    /// A checkpoint does not match the network it is resumed into.
    #[error("checkpoint {}: {msg}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What does not match.
        msg: String,
    },
    /// A private-inference prediction failed.
    #[error("private inference: {0}")]
    Private(String),
    /// Writing a figure failed.
    #[error("plot: {0}")]
    Plot(String),
    /// The training configuration is inconsistent.
    #[error("config: {0}")]
    Config(String),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error tagged with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A format error tagged with the path it concerns.
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
