//! `pi-opt calibrate`: chooses the fixed-point format from sample inputs and stores it in the model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use super::{load_model, load_samples};

/// Arguments of `pi-opt calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    /// ONNX model file.
    pub model: PathBuf,
    /// Sample inputs: a .npy of one image ([C,H,W], [1,C,H,W]) or a batch ([N,C,H,W]), or a
    /// directory of such files; already normalised like the client's inputs.
    #[arg(long, value_name = "DIR|FILE.npy")]
    pub data: PathBuf,
    /// Use at most this many samples.
    #[arg(long, default_value_t = 64)]
    pub max_samples: usize,
    /// Where to write the calibrated model [default: the input file, in place]. The file's bytes
    /// are kept and the format is appended as ONNX metadata (`pi.fixed`, `pi.calibration`).
    #[arg(short, long, value_name = "OUT.onnx")]
    pub output_file: Option<PathBuf>,
    /// The graph output to serve (default: the first).
    #[arg(long, value_name = "NAME")]
    pub output: Option<String>,
    /// Largest |fixed − float| logit accepted, relative to the largest |float logit|, before
    /// more fractional bits are tried. A looser bound keeps fewer fractional bits: narrower ReLU
    /// circuits (input width w = fa + fw + M + 1), so fewer bytes per ReLU online; the top-1 must
    /// still agree on every sample.
    #[arg(long, default_value_t = 0.05, value_name = "FRACTION")]
    pub max_logit_error: f32,
    /// (fa, fw) pairs to try, in order, as `FA,FW` (repeat the flag); the first that meets the
    /// bounds wins [default: 8,8 10,10 12,12 14,14 16,16].
    #[arg(long, value_name = "FA,FW", value_parser = parse_fractions)]
    pub fractions: Vec<(u32, u32)>,
    /// Write the model even if some sample's fixed-point top-1 differs from float.
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pi-opt calibrate`.
pub fn run(a: CalibrateArgs) -> Result<()> {
    let imported = load_model(&a.model, a.output.as_deref())?;
    let model = &imported.model;
    let samples = load_samples(&a.data, model.input, a.max_samples.max(1))?;
    if !(a.max_logit_error > 0.0 && a.max_logit_error.is_finite()) {
        bail!(
            "--max-logit-error must be a positive fraction (e.g. 0.05 for 5% of the largest logit), not {}",
            a.max_logit_error
        );
    }
    let mut opts = models::fixed::CalibrationOptions {
        max_logit_error: a.max_logit_error,
        ..Default::default()
    };
    if !a.fractions.is_empty() {
        opts.fractions = a.fractions.clone();
    }
    let cal = models::fixed::calibrate(model, &samples, &opts)
        .with_context(|| format!("calibrating {}", a.model.display()))?;
    let ok = cal.top1_agree == cal.samples;
    let out = a.output_file.clone().unwrap_or_else(|| a.model.clone());
    if ok || a.allow_mismatch {
        let bytes =
            std::fs::read(&a.model).with_context(|| format!("reading {}", a.model.display()))?;
        std::fs::write(&out, models::onnx::with_metadata(&bytes, &cal.metadata()))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if a.json {
        #[derive(Serialize)]
        struct Out<'a> {
            model: String,
            written: Option<String>,
            frac_act: u32,
            frac_weight: u32,
            magnitude_bits: u32,
            ring_bits: u32,
            samples: usize,
            top1_agree: usize,
            max_logit_error: f32,
            largest_nonlinear_input: &'a (String, f32),
            largest_activation: &'a (String, f32),
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Out {
                model: a.model.display().to_string(),
                written: (ok || a.allow_mismatch).then(|| out.display().to_string()),
                frac_act: cal.config.frac_act,
                frac_weight: cal.config.frac_weight,
                magnitude_bits: cal.config.magnitude_bits,
                ring_bits: cal.config.ring_bits,
                samples: cal.samples,
                top1_agree: cal.top1_agree,
                max_logit_error: cal.max_logit_error,
                largest_nonlinear_input: &cal.largest_nonlinear_input,
                largest_activation: &cal.largest_activation,
            })?
        );
    } else {
        println!(
            "{}: fa = {}, fw = {}, M = {}, ring Z_2^{}",
            a.model.display(),
            cal.config.frac_act,
            cal.config.frac_weight,
            cal.config.magnitude_bits,
            cal.config.ring_bits
        );
        println!(
            "top-1 fixed = float on {}/{} samples; largest logit error {:.2}% of the largest logit",
            cal.top1_agree,
            cal.samples,
            cal.max_logit_error * 100.0
        );
        println!(
            "largest ReLU/max-pool input: {:.4} (`{}`); largest activation: {:.4} (`{}`)",
            cal.largest_nonlinear_input.1,
            cal.largest_nonlinear_input.0,
            cal.largest_activation.1,
            cal.largest_activation.0
        );
        if ok || a.allow_mismatch {
            println!("written: {}", out.display());
        }
    }
    if !ok && !a.allow_mismatch {
        bail!(
            "the fixed-point top-1 differs from float on {} of {} samples even at fa = fw = {}; \
             nothing written (use --allow-mismatch to write anyway)",
            cal.samples - cal.top1_agree,
            cal.samples,
            cal.config.frac_act
        );
    }
    Ok(())
}

/// `FA,FW`: fractional bits of activations and weights, each 1..=20.
fn parse_fractions(s: &str) -> Result<(u32, u32), String> {
    let bad = || {
        format!("expected FA,FW (fractional bits of activations and weights, 1..=20), got `{s}`")
    };
    let (a, w) = s.split_once(',').ok_or_else(bad)?;
    let a: u32 = a.trim().parse().map_err(|_| bad())?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    if !(1..=20).contains(&a) || !(1..=20).contains(&w) {
        return Err(bad());
    }
    Ok((a, w))
}

#[cfg(test)]
mod tests {
    use super::parse_fractions;

    #[test]
    fn fractions_parse_and_bad_ones_say_the_form() {
        assert_eq!(parse_fractions("8,8"), Ok((8, 8)));
        assert_eq!(parse_fractions(" 10 , 6"), Ok((10, 6)));
        for bad in ["8", "8;8", "0,8", "8,21", "a,b"] {
            assert!(parse_fractions(bad).unwrap_err().contains("FA,FW"), "{bad}");
        }
    }
}
