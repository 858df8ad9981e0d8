//! The model the server serves: a file given with --model, or the embedded default.

use std::path::Path;

use anyhow::Context;
use models::Model;

/// The default model: HybReNet-2x5x3x, m=8, 32×32×3 input, Stage 1 culled, Stages 2–4 thinned, trained on
/// MNIST-5k (see server/assets/README.md).
const DEFAULT_MODEL: &[u8] = include_bytes!("../assets/default.onnx");

/// Loads `path`, or the embedded default model when none is given.
pub fn load(path: Option<&Path>) -> anyhow::Result<Model> {
    match path {
        Some(path) => {
            models::onnx::load(path).with_context(|| format!("loading {}", path.display()))
        }
        None => {
            models::onnx::from_bytes(DEFAULT_MODEL).context("decoding the embedded default model")
        }
    }
}
