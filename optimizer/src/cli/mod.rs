//! `pi-opt`'s subcommands, one module each (its clap arguments and its `run`), and what they share.

pub mod build;
pub mod calibrate;
pub mod check;
pub mod count;
pub mod cryptonas;
pub mod design;
pub mod eval;
pub mod net;
pub mod optimize;
pub mod paper;

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Serialize;

use optimizer::cost::{CostModel, Pricing, Timing, DEFAULT_NS_PER_MAC, DEFAULT_US_PER_RELU};

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

/// How the estimated PI cost is priced: by default the protocol's own plan (the HE block
/// planner's cost of every layer, the AND gates and OTs of every circuit) with constants measured
/// end to end on a 2-core machine; with either flag, flat constants per ReLU and per MAC.
#[derive(Args, Clone, Copy)]
pub struct CostArgs {
    /// Flat garbled-circuit cost per ReLU in microseconds (switches to the flat model; default
    /// there 16).
    #[arg(long, value_name = "US")]
    us_per_relu: Option<f64>,
    /// Flat homomorphic-encryption cost per MAC in nanoseconds (switches to the flat model;
    /// default there 20).
    #[arg(long, value_name = "NS")]
    ns_per_mac: Option<f64>,
}

impl CostArgs {
    /// The pricing the flags select.
    pub fn pricing(&self) -> Result<Pricing> {
        if self.us_per_relu.is_none() && self.ns_per_mac.is_none() {
            return Ok(Pricing::Planned(Timing::default()));
        }
        let c = CostModel {
            us_per_relu: self.us_per_relu.unwrap_or(DEFAULT_US_PER_RELU),
            ns_per_mac: self.ns_per_mac.unwrap_or(DEFAULT_NS_PER_MAC),
        };
        if !(c.us_per_relu >= 0.0 && c.ns_per_mac >= 0.0) {
            bail!("--us-per-relu and --ns-per-mac must be non-negative numbers");
        }
        Ok(Pricing::Flat(c))
    }
}

/// Where the network runs: input size and classes.
#[derive(Args, Clone)]
pub struct DataArgs {
    /// Input size: `32` (3×32×32, CIFAR), `64` (3×64×64, TinyImageNet) or `CxHxW`.
    #[arg(long, default_value = "32", value_name = "SIZE")]
    input: String,
    /// Number of classes (100: CIFAR-100, 200: TinyImageNet).
    #[arg(long, default_value_t = 100)]
    classes: usize,
}

impl DataArgs {
    /// The input shape `--input` names.
    pub fn input(&self) -> Result<[usize; 3]> {
        parse_input(&self.input)
    }
}

/// Prints `v` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A list of positive integers (`2,2,2,2` or `3x32x32`) for flag `what`.
pub fn parse_list(s: &str, what: &str) -> Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split([',', 'x'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<usize>()
                .with_context(|| format!("{what}: '{p}' is not a positive integer"))
        })
        .collect::<Result<_>>()?;
    if v.is_empty() || v.contains(&0) {
        bail!("{what}: expected a comma-separated list of positive integers, got '{s}'");
    }
    Ok(v)
}

/// `--input`: `SIZE` (3×SIZE×SIZE) or `CxHxW`.
pub fn parse_input(s: &str) -> Result<[usize; 3]> {
    let v = parse_list(s, "--input")?;
    match v.as_slice() {
        [n] => Ok([3, *n, *n]),
        [c, h, w] => Ok([*c, *h, *w]),
        _ => bail!("--input: expected SIZE or CxHxW, got '{s}'"),
    }
}

/// The values as u32.
pub fn to_u32(v: &[usize]) -> Result<Vec<u32>> {
    v.iter()
        .map(|&x| u32::try_from(x).context("value too large"))
        .collect()
}
