//! The training loop: shuffled mini-batches with augmentation, cross-entropy or distillation
//! loss, momentum SGD under a cosine schedule, a progress bar, per-epoch test accuracy and
//! checkpoints.

use crate::checkpoint;
use crate::data::{make_batch, Augment, Dataset, Normalizer, Prepared};
use crate::error::{Error, Result};
use crate::loss::{cross_entropy, dkd_loss, kd_loss, one_hot, Distill};
use crate::net::{values, Net};
use crate::rng::Rng;
use crate::sgd::{cosine_lr, Sgd};
use burn::tensor::{Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Hyper-parameters of a training run (defaults: DeepReShape Appendix J).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Initial learning rate of the cosine schedule.
    pub lr: f64,
    /// Final learning rate of the cosine schedule.
    pub lr_min: f64,
    /// SGD momentum (no dampening).
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Seed of shuffling and augmentation.
    pub seed: u64,
    /// Augmentation of training batches.
    pub augment: Augment,
    /// Loss (plain or distillation).
    pub distill: Distill,
    /// Images per evaluation batch.
    pub eval_batch: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 200,
            batch_size: 128,
            lr: 0.1,
            lr_min: 0.0,
            momentum: 0.9,
            weight_decay: 5e-4,
            seed: 0,
            augment: Augment::none(),
            distill: Distill::None,
            eval_batch: 256,
        }
    }
}

/// What one epoch did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (on augmented batches, in training mode), in percent.
    pub train_acc: f64,
    /// Test accuracy after the epoch, in percent.
    pub test_acc: f64,
    /// Training throughput (forward + backward + update, teacher included), images per second.
    pub images_per_sec: f64,
    /// Wall-clock seconds of the training part of the epoch.
    pub seconds: f64,
}

/// The outcome of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// All epochs, including those completed before a resume.
    pub epochs: Vec<EpochStats>,
    /// Test accuracy of the final weights, in percent.
    pub test_acc: f64,
    /// Mean training throughput over the epochs run in this process, images per second.
    pub images_per_sec: f64,
}

/// Where checkpoints go and whether to resume from one.
#[derive(Clone, Debug)]
pub struct Checkpointing {
    /// The checkpoint file (rewritten after every epoch).
    pub path: PathBuf,
    /// Continue from `path` if it exists.
    pub resume: bool,
    /// Stop after this many epochs in total (time-sliced runs; resume later).
    pub stop_after: Option<usize>,
}

/// Per-epoch seeds derived from the run seed, so a resumed run draws what the uninterrupted one would.
fn epoch_rng(seed: u64, epoch: usize, stream: u64) -> Rng {
    let mut r = Rng::new(
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    r.next_u64();
    r
}

/// Index of the largest value in each row of a row-major `[n, c]` matrix.
pub fn argmax_rows(v: &[f32], c: usize) -> Vec<usize> {
    v.chunks_exact(c)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                )
                .0
        })
        .collect()
}

/// Predicted class of every image of `ds` (evaluation mode, batched).
pub fn predict(net: &Net, ds: &Dataset, norm: &Normalizer, batch: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(ds.len());
    let mut buf = Vec::new();
    let idx: Vec<usize> = (0..ds.len()).collect();
    for chunk in idx.chunks(batch.max(1)) {
        make_batch(ds, chunk, norm, None, &mut buf);
        let x = net.input_tensor(std::mem::take(&mut buf), chunk.len(), false);
        out.extend(argmax_rows(&values(net.forward_eval(x))?, net.classes()));
    }
    Ok(out)
}

/// Accuracy of `net` on `ds`, in percent.
pub fn accuracy(net: &Net, ds: &Dataset, norm: &Normalizer, batch: usize) -> Result<f64> {
    let pred = predict(net, ds, norm, batch)?;
    let correct = pred
        .iter()
        .zip(&ds.labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    Ok(100.0 * correct as f64 / ds.len().max(1) as f64)
}

/// Train `net` on `data` (with `teacher` when the loss distils), returning per-epoch statistics.
pub fn train(
    net: &mut Net,
    teacher: Option<&Net>,
    data: &Prepared,
    cfg: &TrainConfig,
    ckpt: Option<&Checkpointing>,
    show_progress: bool,
) -> Result<TrainReport> {
    if !net.is_trainable() {
        return Err(Error::Config(
            "the network to train was built frozen".into(),
        ));
    }
    if cfg.batch_size < 2 {
        return Err(Error::Config(
            "batch size must be at least 2 (BatchNorm)".into(),
        ));
    }
    if cfg.distill.needs_teacher() && teacher.is_none() {
        return Err(Error::Config("distillation needs a teacher model".into()));
    }
    if let Some(t) = teacher {
        if t.classes() != net.classes() || t.input_shape() != net.input_shape() {
            return Err(Error::Config(format!(
                "teacher ({} classes, input {:?}) does not match the student ({} classes, input {:?})",
                t.classes(),
                t.input_shape(),
                net.classes(),
                net.input_shape()
            )));
        }
    }
    let classes = net.classes();
    let n = data.train.len();
    // a last batch of one image cannot be batch-normalised: drop it
    let steps_per_epoch = n / cfg.batch_size + usize::from(n % cfg.batch_size >= 2);
    let total_steps = steps_per_epoch * cfg.epochs;
    let mut sgd = Sgd::new(net.params().len(), cfg.momentum, cfg.weight_decay);
    let mut history = Vec::new();
    let mut start = 0;
    if let Some(c) = ckpt.filter(|c| c.resume && !c.path.exists()) {
        eprintln!(
            "no checkpoint at {} yet: starting from scratch",
            c.path.display()
        );
    }
    if let Some(c) = ckpt.filter(|c| c.resume && c.path.exists()) {
        let meta = checkpoint::load(&c.path, net, &mut sgd)?;
        if meta.config != *cfg {
            eprintln!(
                "note: {} was written with a different configuration; continuing with the new one",
                c.path.display()
            );
        }
        start = meta.epochs_done;
        history = meta.history;
        eprintln!("resumed from {} after epoch {start}", c.path.display());
    }
    let mut speeds = Vec::new();
    let mut buf = Vec::new();
    let end = ckpt
        .and_then(|c| c.stop_after)
        .map_or(cfg.epochs, |s| s.min(cfg.epochs));
    for epoch in start..end {
        let mut order: Vec<usize> = (0..n).collect();
        epoch_rng(cfg.seed, epoch, 1).shuffle(&mut order);
        let mut aug_rng = epoch_rng(cfg.seed, epoch, 2);
        let bar = if show_progress {
            ProgressBar::new(steps_per_epoch as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} ({elapsed}<{eta})")
                .map_err(|e| Error::Config(e.to_string()))?
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("epoch {}/{}", epoch + 1, cfg.epochs));
        let t0 = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut lr = cfg.lr;
        for step in 0..steps_per_epoch {
            let idx = &order[step * cfg.batch_size..((step + 1) * cfg.batch_size).min(n)];
            let b = idx.len();
            let labels = make_batch(
                &data.train,
                idx,
                &data.norm,
                Some((&cfg.augment, &mut aug_rng)),
                &mut buf,
            );
            let x = net.input_tensor(std::mem::take(&mut buf), b, false);
            let targets = Tensor::<2>::from_data(
                TensorData::new(one_hot(&labels, classes), [b, classes]),
                net.device(),
            );
            let teacher_logits = teacher.map(|t| t.forward_eval(x.clone()));
            let logits = net.forward_train(x.autodiff());
            let global = epoch * steps_per_epoch + step;
            let loss = match (cfg.distill, teacher_logits) {
                (Distill::Hinton { temperature, alpha }, Some(t)) => {
                    kd_loss(logits.clone(), t, targets, temperature, alpha)
                }
                (
                    Distill::Dkd {
                        temperature,
                        alpha,
                        beta,
                        warmup_epochs,
                    },
                    Some(t),
                ) => {
                    let progress = global as f32 / steps_per_epoch.max(1) as f32;
                    let warm = if warmup_epochs > 0.0 {
                        (progress / warmup_epochs).min(1.0)
                    } else {
                        1.0
                    };
                    dkd_loss(logits.clone(), t, targets, temperature, alpha, beta, warm)
                }
                _ => cross_entropy(logits.clone(), targets),
            };
            let grads = loss.backward();
            lr = cosine_lr(cfg.lr, cfg.lr_min, global, total_steps);
            sgd.step(net.params_mut(), &grads, lr);
            let loss_value = values(loss.inner())?[0] as f64;
            if !loss_value.is_finite() {
                bar.abandon();
                return Err(Error::Config(format!(
                    "loss became {loss_value} at epoch {} step {step}; lower the learning rate",
                    epoch + 1
                )));
            }
            let pred = argmax_rows(&values(logits.inner())?, classes);
            correct += pred
                .iter()
                .zip(&labels)
                .filter(|(p, l)| **p == **l as usize)
                .count();
            loss_sum += loss_value * b as f64;
            seen += b;
            let ips = seen as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} acc {:.1}% {:.0} img/s lr {:.4}",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64,
                ips,
                lr
            ));
            bar.inc(1);
        }
        let seconds = t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let test_acc = accuracy(net, &data.test, &data.norm, cfg.eval_batch)?;
        let stats = EpochStats {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: 100.0 * correct as f64 / seen.max(1) as f64,
            test_acc,
            images_per_sec: seen as f64 / seconds.max(1e-9),
            seconds,
        };
        eprintln!(
            "epoch {}/{}: loss {:.4} train {:.2}% test {:.2}% {:.0} img/s ({:.1}s)",
            stats.epoch,
            cfg.epochs,
            stats.train_loss,
            stats.train_acc,
            stats.test_acc,
            stats.images_per_sec,
            seconds
        );
        speeds.push(stats.images_per_sec);
        history.push(stats);
        if let Some(c) = ckpt {
            checkpoint::save(&c.path, net, &sgd, cfg, epoch + 1, &history)?;
        }
    }
    let test_acc = match history.last() {
        Some(s) if start < end => s.test_acc,
        _ => accuracy(net, &data.test, &data.norm, cfg.eval_batch)?,
    };
    let images_per_sec = if speeds.is_empty() {
        0.0
    } else {
        speeds.iter().sum::<f64>() / speeds.len() as f64
    };
    Ok(TrainReport {
        epochs: history,
        test_acc,
        images_per_sec,
    })
}
