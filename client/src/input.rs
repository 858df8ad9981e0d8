//! The image to classify: a .npy file or the embedded sample.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// The embedded sample input: an MNIST 6, float32 [1,3,32,32], normalised for the default model
/// (client/assets/README.md).
const SAMPLE_IMAGE: &[u8] = include_bytes!("../assets/sample.npy");

/// Which image to run.
#[derive(Args, Debug, Clone)]
pub struct InputArgs {
    /// Input image: float32 .npy of shape [3,H,W] or [1,3,H,W], already normalised.
    #[arg(long, value_name = "IMAGE.npy", required_unless_present = "sample")]
    pub input: Option<PathBuf>,
    /// Use the embedded sample image instead of --input.
    #[arg(long, conflicts_with = "input")]
    pub sample: bool,
}

impl InputArgs {
    /// Loads the image as `([c, h, w], values)`.
    pub fn load(&self) -> anyhow::Result<([usize; 3], Vec<f32>)> {
        match &self.input {
            Some(path) => {
                models::npy::load_image(path).with_context(|| format!("reading {}", path.display()))
            }
            None => {
                models::npy::read_image(SAMPLE_IMAGE).context("decoding the embedded sample image")
            }
        }
    }
}
