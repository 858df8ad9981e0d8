//! CIFAR-10 and CIFAR-100 in their binary distribution format
//! (<https://www.cs.toronto.edu/~kriz/cifar.html>, "binary version").

use super::{check_label, read_file, Dataset, Split};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const IMAGE: usize = 3 * 32 * 32;

/// Resolve `path` to the folder holding the `.bin` files (the folder itself or its known child).
fn bin_dir(path: &Path, child: &str, marker: &str) -> PathBuf {
    if path.join(marker).exists() {
        path.to_path_buf()
    } else {
        path.join(child)
    }
}

/// Parse one binary file of records `[label bytes..., 3072 pixel bytes]`, keeping the label at
/// `label_at` (CIFAR-100 stores coarse then fine).
fn parse(
    path: &Path,
    label_bytes: usize,
    label_at: usize,
    classes: usize,
    out: &mut Dataset,
) -> Result<()> {
    let bytes = read_file(path)?;
    let rec = label_bytes + IMAGE;
    if bytes.is_empty() || bytes.len() % rec != 0 {
        return Err(Error::format(
            path,
            format!(
                "size {} is not a positive multiple of the {rec}-byte record of this format",
                bytes.len()
            ),
        ));
    }
    for (r, chunk) in bytes.chunks_exact(rec).enumerate() {
        out.labels
            .push(check_label(path, chunk[label_at] as u32, classes, r)?);
        out.pixels.extend_from_slice(&chunk[label_bytes..]);
    }
    Ok(())
}

fn empty(classes: usize) -> Dataset {
    Dataset {
        shape: [3, 32, 32],
        max_value: 255.0,
        classes,
        pixels: Vec::new(),
        labels: Vec::new(),
    }
}

/// CIFAR-10 from `cifar-10-batches-bin/` (or its parent): `data_batch_1..5.bin` for training,
/// `test_batch.bin` for testing.
pub fn load_cifar10(path: &Path) -> Result<Split> {
    let dir = bin_dir(path, "cifar-10-batches-bin", "test_batch.bin");
    let mut train = empty(10);
    for i in 1..=5 {
        parse(
            &dir.join(format!("data_batch_{i}.bin")),
            1,
            0,
            10,
            &mut train,
        )?;
    }
    let mut test = empty(10);
    parse(&dir.join("test_batch.bin"), 1, 0, 10, &mut test)?;
    Ok(Split { train, test })
}

/// CIFAR-100 from `cifar-100-binary/` (or its parent): `train.bin`, `test.bin`, fine labels.
pub fn load_cifar100(path: &Path) -> Result<Split> {
    let dir = bin_dir(path, "cifar-100-binary", "test.bin");
    let mut train = empty(100);
    parse(&dir.join("train.bin"), 2, 1, 100, &mut train)?;
    let mut test = empty(100);
    parse(&dir.join("test.bin"), 2, 1, 100, &mut test)?;
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[u8], fill: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend((0..IMAGE).map(|k| fill.wrapping_add((k % 7) as u8)));
        r
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pi-train-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn cifar10_roundtrip_of_synthetic_files() {
        let root = tmpdir("c10");
        let dir = root.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&dir).unwrap();
        for i in 1..=5u8 {
            let bytes: Vec<u8> = [record(&[i], i), record(&[9], 100)].concat();
            std::fs::write(dir.join(format!("data_batch_{i}.bin")), bytes).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), record(&[3], 42)).unwrap();
        let s = load_cifar10(&root).unwrap();
        assert_eq!(s.train.len(), 10);
        assert_eq!(s.test.len(), 1);
        assert_eq!(s.train.labels[..4], [1, 9, 2, 9]);
        assert_eq!(s.test.labels, vec![3]);
        assert_eq!(s.test.image(0)[..3], [42, 43, 44]);
        assert_eq!(s.train.shape, [3, 32, 32]);
        // the folder itself works too
        assert_eq!(load_cifar10(&dir).unwrap().train.len(), 10);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn cifar100_uses_fine_labels_and_rejects_bad_files() {
        let dir = tmpdir("c100");
        std::fs::write(
            dir.join("train.bin"),
            [record(&[1, 77], 0), record(&[2, 5], 1)].concat(),
        )
        .unwrap();
        std::fs::write(dir.join("test.bin"), record(&[0, 99], 0)).unwrap();
        let s = load_cifar100(&dir).unwrap();
        assert_eq!(s.train.labels, vec![77, 5]);
        assert_eq!(s.test.labels, vec![99]);
        assert_eq!(s.train.classes, 100);

        // truncated file: error names the file
        let mut short = record(&[0, 1], 0);
        short.pop();
        std::fs::write(dir.join("test.bin"), short).unwrap();
        let e = load_cifar100(&dir).unwrap_err().to_string();
        assert!(e.contains("test.bin") && e.contains("multiple"), "{e}");

        // out-of-range label
        std::fs::write(dir.join("test.bin"), record(&[0, 100], 0)).unwrap();
        let e = load_cifar100(&dir).unwrap_err().to_string();
        assert!(e.contains("label 100"), "{e}");

        // missing file
        std::fs::remove_file(dir.join("train.bin")).unwrap();
        let e = load_cifar100(&dir).unwrap_err().to_string();
        assert!(e.contains("train.bin"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
