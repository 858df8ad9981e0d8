//! Command-line front ends (`clap` argument structs and `run_*` functions), shared by the
//! `pi-train` binary and `pi-opt train|criticality|eval|plot`.

use crate::criticality;
use crate::data::{Augment, DataKind, DataSpec, Normalizer, Prepared};
use crate::error::Error;
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::loss::Distill;
use crate::net::{Init, Net};
use crate::plot::{plot, Cost, PlotPoint};
use crate::private::{command_predictor, Predictor};
use crate::trainer::{train, Checkpointing, TrainConfig, TrainReport};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data come from.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// Data set: data/digits.csv.gz or data/mnist_5k.csv.gz (scripts/fetch-data.sh), or a
    /// CIFAR-10 / CIFAR-100 / TinyImageNet folder in its distribution layout.
    #[arg(long)]
    pub data: PathBuf,
    /// Format of --data (detected from the path when omitted).
    #[arg(long, value_enum)]
    pub dataset: Option<DataKind>,
    /// Held-out fraction for sets without an official test split (digits, MNIST-5k).
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Seed of that held-out split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Use only the first N training images.
    #[arg(long)]
    pub max_train: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    pub max_test: Option<usize>,
}

impl DataArgs {
    /// The data spec these arguments describe.
    pub fn spec(&self) -> DataSpec {
        DataSpec {
            path: self.data.clone(),
            kind: self.dataset,
            test_fraction: self.test_fraction,
            split_seed: self.split_seed,
        }
    }

    /// Load and fit the data to `model`.
    pub fn prepare(&self, model: &models::Model) -> Result<Prepared> {
        let classes = model.shapes()?[model.output].numel();
        Ok(Prepared::load(
            &self.spec(),
            model.input,
            classes,
            self.max_train,
            self.max_test,
        )?)
    }
}

/// Distillation loss choice.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdKind {
    /// Cross-entropy only.
    None,
    /// Hinton knowledge distillation.
    Hinton,
    /// Decoupled knowledge distillation.
    Dkd,
}

/// Hyper-parameters (defaults: DeepReShape Appendix J).
#[derive(Args, Clone, Debug)]
pub struct TrainOpts {
    /// Epochs (App. J: 200; DKD adds its 20 warm-up epochs on top: pass 220).
    #[arg(long, default_value_t = 200)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Initial learning rate (cosine schedule).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Final learning rate.
    #[arg(long, default_value_t = 0.0)]
    pub lr_min: f64,
    /// SGD momentum (no dampening, as PyTorch).
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// L2 weight decay.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Disable random crop / flip.
    #[arg(long)]
    pub no_augment: bool,
    /// Distillation loss (needs --teacher).
    #[arg(long, value_enum, default_value = "none")]
    pub kd: KdKind,
    /// Teacher network (ONNX) for --kd hinton|dkd.
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    /// Distillation temperature.
    #[arg(long, default_value_t = 4.0)]
    pub kd_temperature: f32,
    /// Hinton KD: weight of the KL term (1 − it weights cross-entropy).
    #[arg(long, default_value_t = 0.9)]
    pub kd_alpha: f32,
    /// DKD: weight of the target-class term (TCKD).
    #[arg(long, default_value_t = 1.0)]
    pub dkd_alpha: f32,
    /// DKD: weight of the non-target-class term (NCKD); App. J sweeps 0.8, 1, 2, 6.
    #[arg(long, default_value_t = 2.0)]
    pub dkd_beta: f32,
    /// DKD: epochs over which the DKD term ramps up linearly.
    #[arg(long, default_value_t = 20.0)]
    pub dkd_warmup_epochs: f32,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainOpts {
    /// The training configuration for data of kind `kind` at input shape `input`.
    pub fn config(&self, kind: DataKind, input: [usize; 3]) -> TrainConfig {
        let distill = match self.kd {
            KdKind::None => Distill::None,
            KdKind::Hinton => Distill::Hinton {
                temperature: self.kd_temperature,
                alpha: self.kd_alpha,
            },
            KdKind::Dkd => Distill::Dkd {
                temperature: self.kd_temperature,
                alpha: self.dkd_alpha,
                beta: self.dkd_beta,
                warmup_epochs: self.dkd_warmup_epochs,
            },
        };
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            lr_min: self.lr_min,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            seed: self.seed,
            augment: if self.no_augment {
                Augment::none()
            } else {
                Augment::standard(kind, input)
            },
            distill,
            eval_batch: 256,
        }
    }

    /// The teacher network, when distilling.
    pub fn teacher(&self) -> Result<Option<Net>> {
        match (&self.teacher, self.kd) {
            (None, KdKind::None) => Ok(None),
            (None, _) => bail!("--kd {:?} needs --teacher FILE.onnx", self.kd),
            (Some(p), KdKind::None) => {
                bail!("--teacher {} given without --kd hinton|dkd", p.display())
            }
            (Some(p), _) => {
                let m = load_onnx(p)?;
                Ok(Some(Net::frozen(&m)?))
            }
        }
    }
}

/// Read an ONNX model, naming the file on failure.
pub fn load_onnx(path: &Path) -> Result<models::Model> {
    models::onnx::load(path).with_context(|| format!("loading model {}", path.display()))
}

/// Normalisation and data description written next to an exported model
/// (`<model>.onnx.json`), so evaluation and clients normalise exactly as training did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sidecar {
    /// Data format trained on.
    pub dataset: DataKind,
    /// Input normalisation.
    pub norm: Normalizer,
    /// Final training report.
    pub report: Option<TrainReport>,
}

fn sidecar_path(model: &Path) -> PathBuf {
    let mut s = model.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// Arguments of `train`.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Network to train (ONNX from `pi-opt build`, or any model the models crate loads).
    #[arg(long)]
    pub model: PathBuf,
    /// Data set options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training options.
    #[command(flatten)]
    pub train: TrainOpts,
    /// Start from the model's weights (fine-tune) instead of a fresh initialisation.
    #[arg(long)]
    pub init_from_model: bool,
    /// Where to write the trained network (ONNX, BatchNorm folded).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Checkpoint file, rewritten after every epoch [default: <out>.ckpt].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Resume from the checkpoint if it exists.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many epochs in total (time-sliced runs; continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Write the training report (per-epoch statistics) as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// Train a network and export it; returns the report.
pub fn train_and_export(args: &TrainArgs) -> Result<TrainReport> {
    let model = load_onnx(&args.model)?;
    let data = args.data.prepare(&model)?;
    let cfg = args.train.config(data.kind, model.input);
    let teacher = args.train.teacher()?;
    let init = if args.init_from_model {
        Init::FromModel
    } else {
        Init::Random(cfg.seed)
    };
    let mut net = Net::trainable(&model, init)?;
    let counts = models::count::count(&model)?;
    eprintln!(
        "training {} ({} ReLUs, {} MACs) on {} train / {} test images of {:?}{}",
        model.name,
        counts.relus,
        counts.macs,
        data.train.len(),
        data.test.len(),
        data.kind,
        if teacher.is_some() {
            format!(", distilling with {:?}", cfg.distill)
        } else {
            String::new()
        }
    );
    let ckpt = Checkpointing {
        path: args
            .checkpoint
            .clone()
            .unwrap_or_else(|| args.out.with_extension("ckpt")),
        resume: args.resume,
        stop_after: args.stop_after,
    };
    let report = train(
        &mut net,
        teacher.as_ref(),
        &data,
        &cfg,
        Some(&ckpt),
        !args.train.quiet,
    )?;
    let trained = net.to_model()?;
    // the exported (folded) graph must compute what the trainer evaluated
    let check = Net::frozen(&trained)?;
    let sample = data.test.take(64);
    let a = crate::trainer::predict(&net, &sample, &data.norm, 64)?;
    let b = crate::trainer::predict(&check, &sample, &data.norm, 64)?;
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    if same * 100 < a.len() * 99 {
        bail!(
            "BatchNorm folding changed {} of {} predictions",
            a.len() - same,
            a.len()
        );
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    models::onnx::save(&trained, &args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let side = Sidecar {
        dataset: data.kind,
        norm: data.norm.clone(),
        report: Some(report.clone()),
    };
    let side_path = sidecar_path(&args.out);
    std::fs::write(&side_path, serde_json::to_string_pretty(&side)?)
        .with_context(|| format!("writing {}", side_path.display()))?;
    if let Some(r) = &args.report {
        std::fs::write(r, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", r.display()))?;
    }
    eprintln!(
        "wrote {} (test accuracy {:.2}%, {:.0} training images/s) and {}",
        args.out.display(),
        report.test_acc,
        report.images_per_sec,
        side_path.display()
    );
    Ok(report)
}

/// `train`: train, distil, checkpoint, export.
pub fn run_train(args: TrainArgs) -> Result<()> {
    train_and_export(&args).map(|_| ())
}

/// Arguments of `criticality`.
#[derive(Args, Clone, Debug)]
pub struct CriticalityArgs {
    /// Base network (ONNX) whose stages are measured.
    #[arg(long)]
    pub model: PathBuf,
    /// Data set options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training options.
    #[command(flatten)]
    pub train: TrainOpts,
    /// Also export each trained stage-only variant into this folder.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `criticality`: train stage-only variants, print C_k and the order for `pi-opt design --order`.
pub fn run_criticality(args: CriticalityArgs) -> Result<()> {
    let model = load_onnx(&args.model)?;
    let data = args.data.prepare(&model)?;
    let cfg = args.train.config(data.kind, model.input);
    let teacher = args.train.teacher()?;
    let report = criticality::run(
        &model,
        &data,
        &cfg,
        teacher.as_ref(),
        !args.train.quiet,
        |k, net, _| {
            if let Some(dir) = &args.out_dir {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                models::onnx::save(&net.to_model()?, dir.join(format!("stage{k}-only.onnx")))?;
            }
            Ok(())
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{:<8} {:>10} {:>10} {:>8}",
            "stage", "ReLUs", "acc (%)", "C_k"
        );
        for s in &report.stages {
            println!(
                "{:<8} {:>10} {:>10.2} {:>8.2}",
                format!("S{}", s.stage),
                s.relus,
                s.accuracy,
                s.criticality
            );
        }
        println!("criticality order: {}", report.order);
        println!("use: pi-opt design --order {}", report.order);
    }
    Ok(())
}

/// Arguments of `eval`.
#[derive(Args, Clone, Debug)]
pub struct EvalArgs {
    /// Trained network (ONNX).
    #[arg(long)]
    pub model: PathBuf,
    /// Data set options.
    #[command(flatten)]
    pub data: DataArgs,
    /// Images for the fixed-point reference [default: the whole test set]; 0 skips it.
    #[arg(long)]
    pub fixed_limit: Option<usize>,
    /// Images for private inference.
    #[arg(long, default_value_t = 20)]
    pub private_limit: usize,
    /// Private inference per image through a command; `{input}` (a .npy) and `{report}` (its
    /// JSON report) are substituted, e.g. 'pi-client --connect 127.0.0.1:7000 --tls-ca ca.pem --input {input} --report {report}'.
    #[arg(long)]
    pub private_cmd: Option<String>,
    /// Fixed point: fractional bits of activations (fa).
    #[arg(long, default_value_t = 8)]
    pub frac_act: u32,
    /// Fixed point: fractional bits of weights (fw).
    #[arg(long, default_value_t = 8)]
    pub frac_weight: u32,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl EvalArgs {
    /// The fixed-point configuration (protocol defaults except the fractional bits given).
    pub fn fixed_config(&self) -> models::fixed::FixedConfig {
        models::fixed::FixedConfig {
            frac_act: self.frac_act,
            frac_weight: self.frac_weight,
            ..Default::default()
        }
    }
}

/// Normalisation for evaluating `model_path`: its sidecar if present, else fitted on the training split.
pub(crate) fn normalizer_for(model_path: &Path, data: &Prepared) -> Result<Normalizer> {
    let side = sidecar_path(model_path);
    if side.exists() {
        let text = std::fs::read_to_string(&side)
            .with_context(|| format!("reading {}", side.display()))?;
        let s: Sidecar =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", side.display()))?;
        if s.norm.mean.len() != data.train.shape[0] {
            bail!(
                "{}: normalisation for {} channels, the data have {}",
                side.display(),
                s.norm.mean.len(),
                data.train.shape[0]
            );
        }
        return Ok(s.norm);
    }
    Ok(data.norm.clone())
}

/// `eval` with a caller-supplied private-inference predictor (the engine's client, wired by
/// `pi-opt`); `None` falls back to `--private-cmd` or skips private inference.
pub fn run_eval_with(args: &EvalArgs, private: Option<&mut Predictor>) -> Result<EvalReport> {
    let model = load_onnx(&args.model)?;
    let data = args.data.prepare(&model)?;
    let norm = normalizer_for(&args.model, &data)?;
    let opts = EvalOptions {
        fixed_limit: args.fixed_limit,
        private_limit: args.private_limit,
        ..EvalOptions::default()
    };
    let mut fixed = if args.fixed_limit == Some(0) {
        None
    } else {
        Some(crate::eval::fixed_predictor(&model, args.fixed_config())?)
    };
    let mut cmd = args.private_cmd.clone().map(|c| {
        command_predictor(
            c,
            model.input,
            std::env::temp_dir().join(format!("pi-train-eval-{}", std::process::id())),
        )
    });
    let private: Option<&mut Predictor> = match (private, cmd.as_mut()) {
        (Some(p), _) => Some(p),
        (None, Some(c)) => Some(c),
        (None, None) => None,
    };
    let fixed_ref: Option<&mut Predictor> = fixed.as_deref_mut();
    let report = evaluate(&model, &data.test, &norm, &opts, fixed_ref, private)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "model {} ({} ReLUs, {} MACs), {} test images",
            report.model, report.relus, report.macs, report.images
        );
        println!(
            "float       {:6.2}%  (max |Δlogit| vs models::float: {:.2e})",
            report.float_accuracy, report.float_reference_max_diff
        );
        for (name, r) in [("fixed-point", &report.fixed), ("private", &report.private)] {
            match r {
                Some(r) => println!(
                    "{name:<11} {:6.2}%  on {} images, {:.1}% agree with float, {:.3}s/image",
                    r.accuracy, r.images, r.agreement_with_float, r.seconds_per_image
                ),
                None => println!("{name:<11}    -    (not run)"),
            }
        }
        if let Some(p) = &report.private {
            if let (Some(a), Some(d)) = (p.agreement_with_fixed, p.max_logit_diff_vs_fixed) {
                println!("private vs fixed-point: {a:.1}% same prediction, max |Δlogit| {d:.2e}");
            }
        }
    }
    Ok(report)
}

/// `eval`: float, fixed-point and (optionally) private test accuracy.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    run_eval_with(&args, None).map(|_| ())
}

/// Arguments of `plot`.
#[derive(Args, Clone, Debug)]
pub struct PlotArgs {
    /// Trained networks (ONNX) to evaluate on --data and plot (the family Algorithm 2 derives from one base).
    #[arg(long, num_args = 1.., required_unless_present = "points")]
    pub models: Vec<PathBuf>,
    /// Labels for --models, in order [default: the model names].
    #[arg(long, num_args = 1..)]
    pub labels: Vec<String>,
    /// Data to measure accuracy on (needed with --models).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Format of --data.
    #[arg(long, value_enum)]
    pub dataset: Option<DataKind>,
    /// Held-out fraction for digits/MNIST.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Precomputed points (JSON array of {label, relus, macs, accuracy, latency_s}) instead of --models.
    #[arg(long)]
    pub points: Option<PathBuf>,
    /// Microseconds per ReLU of the latency estimate.
    #[arg(long, default_value_t = 16.0)]
    pub us_per_relu: f64,
    /// Nanoseconds per MAC of the latency estimate.
    #[arg(long, default_value_t = 20.0)]
    pub ns_per_mac: f64,
    /// Figure title.
    #[arg(long, default_value = "accuracy vs ReLUs and estimated PI latency")]
    pub title: String,
    /// Output SVG.
    #[arg(short, long)]
    pub out: PathBuf,
}

/// `plot`: accuracy vs ReLU count and vs estimated PI latency.
pub fn run_plot(args: PlotArgs) -> Result<()> {
    let cost = Cost {
        us_per_relu: args.us_per_relu,
        ns_per_mac: args.ns_per_mac,
    };
    let points: Vec<PlotPoint> = if let Some(p) = &args.points {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
    } else {
        let Some(data) = &args.data else {
            bail!("--models needs --data to measure accuracy")
        };
        let mut pts = Vec::new();
        for (i, path) in args.models.iter().enumerate() {
            let model = load_onnx(path)?;
            let d = DataArgs {
                data: data.clone(),
                dataset: args.dataset,
                test_fraction: args.test_fraction,
                split_seed: 0,
                max_train: None,
                max_test: None,
            };
            let prepared = d.prepare(&model)?;
            let norm = normalizer_for(path, &prepared)?;
            let opts = EvalOptions {
                fixed_limit: Some(0),
                private_limit: 0,
                reference_check: 0,
                batch: 256,
            };
            let r = evaluate(&model, &prepared.test, &norm, &opts, None, None)?;
            let label = args
                .labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| model.name.clone());
            eprintln!("{label}: {:.2}% with {} ReLUs", r.float_accuracy, r.relus);
            pts.push(PlotPoint {
                label,
                relus: r.relus,
                macs: r.macs,
                accuracy: r.float_accuracy,
                latency_s: cost.seconds(r.relus, r.macs),
            });
        }
        pts
    };
    plot(&points, &args.out, &args.title)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
