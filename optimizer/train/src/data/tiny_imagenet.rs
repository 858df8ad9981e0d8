//! TinyImageNet (200 classes, 64×64 RGB JPEGs) in its distribution folder layout:
//! `wnids.txt`, `train/<wnid>/images/*.JPEG`, `val/images/*.JPEG` with
//! `val/val_annotations.txt` (`file<TAB>wnid<TAB>bbox...`). The validation set is the test set.
//! Classes are numbered in sorted wnid order (as torchvision's `ImageFolder` does), so a
//! teacher trained in PyTorch agrees on labels.

use super::{read_file, Dataset, Split};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Decode a JPEG file to planar RGB bytes (CHW) and its `(height, width)`.
fn decode(path: &Path) -> Result<(Vec<u8>, usize, usize)> {
    let bytes = read_file(path)?;
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut dec = JpegDecoder::new_with_options(ZCursor::new(&bytes[..]), options);
    let rgb = dec
        .decode()
        .map_err(|e| Error::format(path, format!("not a decodable JPEG: {e:?}")))?;
    let (w, h) = dec
        .dimensions()
        .ok_or_else(|| Error::format(path, "JPEG without dimensions"))?;
    if rgb.len() != w * h * 3 {
        return Err(Error::format(
            path,
            format!("decoded {} bytes for a {w}×{h} RGB image", rgb.len()),
        ));
    }
    let mut chw = vec![0u8; rgb.len()];
    for (k, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * w * h + k] = px[c];
        }
    }
    Ok((chw, h, w))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("jpeg") || e.eq_ignore_ascii_case("jpg"))
        })
        .collect();
    v.sort();
    Ok(v)
}

fn push(ds: &mut Dataset, path: &Path, label: u16) -> Result<()> {
    let (img, h, w) = decode(path)?;
    if ds.labels.is_empty() && ds.pixels.is_empty() && ds.shape == [3, 0, 0] {
        ds.shape = [3, h, w];
    }
    if [3, h, w] != ds.shape {
        return Err(Error::format(
            path,
            format!(
                "image is {h}×{w}, the others are {}×{}",
                ds.shape[1], ds.shape[2]
            ),
        ));
    }
    ds.pixels.extend_from_slice(&img);
    ds.labels.push(label);
    Ok(())
}

/// TinyImageNet from `tiny-imagenet-200/` (or its parent).
pub fn load_tiny_imagenet(path: &Path) -> Result<Split> {
    let root = if path.join("wnids.txt").exists() {
        path.to_path_buf()
    } else {
        path.join("tiny-imagenet-200")
    };
    let wnids_path = root.join("wnids.txt");
    let text = String::from_utf8(read_file(&wnids_path)?)
        .map_err(|_| Error::format(&wnids_path, "not UTF-8"))?;
    let mut wnids: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    wnids.sort();
    wnids.dedup();
    if wnids.is_empty() {
        return Err(Error::format(&wnids_path, "lists no classes"));
    }
    let index: HashMap<&str, u16> = wnids
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i as u16))
        .collect();
    let classes = wnids.len();
    let empty = || Dataset {
        shape: [3, 0, 0],
        max_value: 255.0,
        classes,
        pixels: Vec::new(),
        labels: Vec::new(),
    };

    let mut train = empty();
    for (label, wnid) in wnids.iter().enumerate() {
        for file in list_dir(&root.join("train").join(wnid).join("images"))? {
            push(&mut train, &file, label as u16)?;
        }
    }
    if train.is_empty() {
        return Err(Error::format(
            root.join("train"),
            "holds no training images",
        ));
    }

    let ann_path = root.join("val").join("val_annotations.txt");
    let ann = String::from_utf8(read_file(&ann_path)?)
        .map_err(|_| Error::format(&ann_path, "not UTF-8"))?;
    let mut test = empty();
    test.shape = train.shape;
    for (line_no, line) in ann
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut f = line.split('\t');
        let (Some(file), Some(wnid)) = (f.next(), f.next()) else {
            return Err(Error::format(
                &ann_path,
                format!("line {}: expected 'file<TAB>wnid'", line_no + 1),
            ));
        };
        let label = *index.get(wnid.trim()).ok_or_else(|| {
            Error::format(
                &ann_path,
                format!("line {}: wnid '{wnid}' not in wnids.txt", line_no + 1),
            )
        })?;
        push(
            &mut test,
            &root.join("val").join("images").join(file.trim()),
            label,
        )?;
    }
    Ok(Split { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(path: &Path, rgb: &[u8], side: u16) {
        let enc = jpeg_encoder::Encoder::new_file(path, 100).unwrap();
        enc.encode(rgb, side, side, jpeg_encoder::ColorType::Rgb)
            .unwrap();
    }

    #[test]
    fn synthetic_tiny_imagenet_layout_loads() {
        let root = std::env::temp_dir()
            .join(format!("pi-train-tiny-{}", std::process::id()))
            .join("tiny-imagenet-200");
        let _ = std::fs::remove_dir_all(&root);
        let wnids = ["n02", "n01"]; // unsorted on purpose: n01 → class 0
        for (k, w) in wnids.iter().enumerate() {
            let d = root.join("train").join(w).join("images");
            std::fs::create_dir_all(&d).unwrap();
            // a flat-colour 8×8 image per class: red for n02, blue for n01
            let colour = if k == 0 { [250u8, 0, 0] } else { [0u8, 0, 250] };
            let rgb: Vec<u8> = (0..64).flat_map(|_| colour).collect();
            jpeg(&d.join(format!("{w}_0.JPEG")), &rgb, 8);
            jpeg(&d.join(format!("{w}_1.JPEG")), &rgb, 8);
        }
        std::fs::write(root.join("wnids.txt"), "n02\nn01\n").unwrap();
        std::fs::create_dir_all(root.join("val").join("images")).unwrap();
        let rgb: Vec<u8> = (0..64).flat_map(|_| [250u8, 0, 0]).collect();
        jpeg(&root.join("val").join("images").join("val_0.JPEG"), &rgb, 8);
        std::fs::write(
            root.join("val").join("val_annotations.txt"),
            "val_0.JPEG\tn02\t0\t0\t8\t8\n",
        )
        .unwrap();

        let s = load_tiny_imagenet(root.parent().unwrap()).unwrap();
        assert_eq!(s.train.classes, 2);
        assert_eq!(s.train.len(), 4);
        assert_eq!(s.train.shape, [3, 8, 8]);
        assert_eq!(s.train.labels, vec![0, 0, 1, 1]);
        // class 0 (n01) is blue: channel 2 bright, channel 0 dark
        let img = s.train.image(0);
        assert!(img[2 * 64] > 200 && img[0] < 40, "{} {}", img[128], img[0]);
        assert_eq!(s.test.labels, vec![1]);
        assert!(s.test.image(0)[0] > 200);

        // an annotation naming an unknown class is a clear error
        std::fs::write(
            root.join("val").join("val_annotations.txt"),
            "val_0.JPEG\tn99\n",
        )
        .unwrap();
        let e = load_tiny_imagenet(&root).unwrap_err().to_string();
        assert!(
            e.contains("val_annotations.txt") && e.contains("n99"),
            "{e}"
        );
        // a corrupt JPEG names the file
        std::fs::write(root.join("val").join("images").join("val_0.JPEG"), b"junk").unwrap();
        std::fs::write(
            root.join("val").join("val_annotations.txt"),
            "val_0.JPEG\tn02\n",
        )
        .unwrap();
        let e = load_tiny_imagenet(&root).unwrap_err().to_string();
        assert!(e.contains("val_0.JPEG"), "{e}");
        let _ = std::fs::remove_dir_all(root.parent().unwrap());
    }
}
