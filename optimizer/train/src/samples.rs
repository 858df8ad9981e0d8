//! `pi-train samples`: images of a data set prepared exactly as training and evaluation feed them
//! to a model (the same split, fitted to its input shape, normalised with its sidecar), written
//! as one float32 `.npy` batch `[N, C, H, W]`: e.g. the sample inputs of `pi-opt calibrate`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::{load_onnx, normalizer_for, DataArgs};

/// Which part of the data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// The training split (what a calibration should see).
    Train,
    /// The held-out test split.
    Test,
}

/// Arguments of `samples`.
#[derive(Args, Clone, Debug)]
pub struct SamplesArgs {
    /// The network (ONNX) the images are prepared for: its input shape, and the normalisation
    /// recorded next to it (`<model>.onnx.json`) when present.
    #[arg(long)]
    pub model: PathBuf,
    /// Data set options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Which split.
    #[arg(long, value_enum, default_value = "train")]
    pub split: SplitArg,
    /// At most this many images (the first of the split).
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Where to write the `.npy` batch.
    #[arg(short, long, value_name = "OUT.npy")]
    pub output: PathBuf,
}

/// Writes the images; returns how many.
pub fn run_samples(args: &SamplesArgs) -> Result<usize> {
    let model = load_onnx(&args.model)?;
    let data = args.data.prepare(&model)?;
    let norm = normalizer_for(&args.model, &data)?;
    let ds = match args.split {
        SplitArg::Train => &data.train,
        SplitArg::Test => &data.test,
    };
    let n = ds.len().min(args.count);
    let mut out = Vec::with_capacity(n * ds.image_len());
    for i in 0..n {
        out.extend(norm.image(ds, i));
    }
    let [c, h, w] = ds.shape;
    models::npy::write_f32(&args.output, &[n, c, h, w], &out)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(n)
}
