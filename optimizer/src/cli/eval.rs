//! `pi-opt eval`: run an ONNX model on one image (float or fixed point), or measure its accuracy
//! on a data set.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use super::{load_model, print_json, stored_config};

/// Arguments of `pi-opt eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// ONNX model file.
    model: PathBuf,
    /// Input image: float32 .npy of shape [C,H,W] or [1,C,H,W], already normalised.
    #[arg(
        long,
        value_name = "X.npy",
        required_unless_present = "data",
        conflicts_with = "data"
    )]
    input: Option<PathBuf>,
    /// Run the fixed-point reference (what the private protocol computes, in the format stored by
    /// `pi-opt calibrate` or the defaults) instead of float.
    #[arg(long, conflicts_with = "data")]
    fixed: bool,
    /// Print JSON: {"logits": [...], "prediction": int} (with --data: the accuracy report).
    #[arg(long)]
    json: bool,
    /// Test accuracy on a data set instead of one image: data/digits.csv.gz, data/mnist_5k.csv.gz
    /// (scripts/fetch-data.sh), or a CIFAR-10/100 or TinyImageNet folder.
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Format of --data (detected from the path when omitted).
    #[arg(long, requires = "data")]
    dataset: Option<pi_train::data::DataKind>,
    /// Held-out fraction for sets without an official test split (digits, MNIST-5k).
    #[arg(long, default_value_t = 0.2, requires = "data")]
    test_fraction: f64,
    /// Seed of that held-out split.
    #[arg(long, default_value_t = 0, requires = "data")]
    split_seed: u64,
    /// Use only the first N test images.
    #[arg(long, requires = "data")]
    max_test: Option<usize>,
    /// Images for the fixed-point reference [default: the whole test set]; 0 skips it.
    #[arg(long, requires = "data")]
    fixed_limit: Option<usize>,
    /// Images sent through private inference (needs --private-cmd).
    #[arg(long, default_value_t = 20, requires = "data")]
    private_limit: usize,
    /// Command run per image for private inference, with {input} (.npy) and {report} (JSON) substituted,
    /// e.g. 'pi-client --quiet --connect 127.0.0.1:4433 --tls-ca ca.pem --input {input} --report {report}'.
    #[arg(long, requires = "data")]
    private_cmd: Option<String>,
}

/// Runs `pi-opt eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    if let Some(data) = a.data {
        let fixed = models::fixed::FixedConfig::default();
        return pi_train::cli::run_eval(pi_train::cli::EvalArgs {
            model: a.model,
            data: pi_train::cli::DataArgs {
                data,
                dataset: a.dataset,
                test_fraction: a.test_fraction,
                split_seed: a.split_seed,
                max_train: None,
                max_test: a.max_test,
            },
            fixed_limit: a.fixed_limit,
            private_limit: a.private_limit,
            private_cmd: a.private_cmd,
            frac_act: fixed.frac_act,
            frac_weight: fixed.frac_weight,
            json: a.json,
        });
    }
    let input = a.input.context("--input or --data is required")?;
    let imported = load_model(&a.model, None)?;
    let (config, _) = stored_config(&imported)?;
    let model = imported.model;
    let x = load_image(&input, model.input)?;
    let logits = if a.fixed {
        // The format stored by `pi-opt calibrate`, else the defaults (what pi-server would use).
        let plan = models::fixed::plan(&model, &config)?;
        models::fixed::infer(&model, &plan, &x)?
    } else {
        models::float::infer(&model, &x)?
    };
    let prediction = models::float::argmax(&logits).context("the model has no outputs")?;
    if a.json {
        #[derive(Serialize)]
        struct Out {
            logits: Vec<f32>,
            prediction: usize,
        }
        return print_json(&Out { logits, prediction });
    }
    println!("prediction: {prediction}");
    println!(
        "logits ({}): [{}]",
        if a.fixed { "fixed point" } else { "float" },
        logits
            .iter()
            .map(|v| format!("{v:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn load_image(path: &std::path::Path, shape: [usize; 3]) -> Result<Vec<f32>> {
    let (dims, img) =
        models::npy::load_image(path).with_context(|| format!("reading {}", path.display()))?;
    if dims != shape {
        bail!(
            "{}: image shape {dims:?} does not match the model input {shape:?}",
            path.display()
        );
    }
    Ok(img)
}
