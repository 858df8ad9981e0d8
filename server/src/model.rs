//! The model the server serves: a file given with --model, or the embedded default.

use std::path::Path;

use anyhow::{bail, Context};
use models::fixed::FixedConfig;
use models::Model;

/// The default model: HybReNet-2x5x3x, m=8, 32×32×3 input, Stage 1 culled, Stages 2–4 thinned, trained on
/// MNIST-5k (see server/assets/README.md).
const DEFAULT_MODEL: &[u8] = include_bytes!("../assets/default.onnx");

/// Loads `path` (serving graph output `output`, or the first), or the embedded default model when
/// none is given, with its fixed-point format: calibrated on `samples` when given (refused when no
/// format fits, naming the largest activation), else the one stored by `pi-opt calibrate`, else
/// the defaults.
pub fn load(
    path: Option<&Path>,
    output: Option<&str>,
    samples: Option<&Path>,
) -> anyhow::Result<(Model, FixedConfig, String)> {
    let imported = match path {
        Some(path) => models::onnx::load_with(path, output)
            .with_context(|| format!("loading {}", path.display()))?,
        None => models::onnx::from_bytes_with(DEFAULT_MODEL, &Default::default())
            .context("decoding the embedded default model")?,
    };
    let model = imported.model;
    if let Some(dir) = samples {
        let xs = models::npy::load_samples(dir, model.input, 64)?;
        let cal = models::fixed::calibrate(&model, &xs, &Default::default())
            .context("calibrating the fixed-point format on --calibration-data")?;
        if cal.top1_agree != cal.samples {
            bail!(
                "calibration: the fixed-point top-1 differs from float on {} of {} samples",
                cal.samples - cal.top1_agree,
                cal.samples
            );
        }
        return Ok((model, cal.config, "calibrated at load".into()));
    }
    match FixedConfig::from_metadata(&imported.metadata) {
        Some(c) => Ok((
            model,
            c.context("reading the model's fixed-point metadata")?,
            "stored in the model".into(),
        )),
        None => Ok((
            model,
            FixedConfig::default(),
            "defaults (not calibrated)".into(),
        )),
    }
}
