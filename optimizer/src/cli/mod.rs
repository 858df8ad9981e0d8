//! `pi-opt` subcommands that read an existing ONNX model: one module per subcommand.

pub mod calibrate;
pub mod check;

use std::path::Path;

use anyhow::{Context, Result};

/// Loads an ONNX model file (external data next to it), serving output `output` if given.
pub fn load_model(path: &Path, output: Option<&str>) -> Result<models::onnx::Imported> {
    models::onnx::load_with(path, output).with_context(|| format!("loading {}", path.display()))
}

/// The fixed-point format stored in the model file by `pi-opt calibrate`, or the defaults.
pub fn stored_config(
    imported: &models::onnx::Imported,
) -> Result<(models::fixed::FixedConfig, bool)> {
    match models::fixed::FixedConfig::from_metadata(&imported.metadata) {
        Some(c) => Ok((c?, true)),
        None => Ok((models::fixed::FixedConfig::default(), false)),
    }
}

/// Sample images for `shape` (see [`models::npy::load_samples`]).
pub fn load_samples(path: &Path, shape: [usize; 3], limit: usize) -> Result<Vec<Vec<f32>>> {
    Ok(models::npy::load_samples(path, shape, limit)?)
}
