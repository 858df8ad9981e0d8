//! Fitting images to a network's input shape: channel replication/averaging, zero padding
//! (centred) to a larger size, box downsampling by an integer factor to a smaller one.

use super::Dataset;
use crate::error::{Error, Result};

/// Return `ds` with every image converted to `target = [c, h, w]` (unchanged when it fits).
pub fn fit_to_shape(ds: Dataset, target: [usize; 3]) -> Result<Dataset> {
    if ds.shape == target {
        return Ok(ds);
    }
    let [c0, h0, w0] = ds.shape;
    let [c1, h1, w1] = target;
    if !(c0 == c1 || c0 == 1 || c1 == 1) {
        return Err(Error::Data(format!("cannot map {c0} channels to {c1}")));
    }
    let (fy, fx) = (factor(h0, h1)?, factor(w0, w1)?);
    let n = ds.len();
    let mut pixels = Vec::with_capacity(n * c1 * h1 * w1);
    // spatial map of one plane
    let plane = |src: &[u8]| -> Vec<u8> {
        let (hh, ww) = (h0 / fy.max(1), w0 / fx.max(1));
        // downsample first (fy/fx > 1 only when shrinking)
        let mut small = vec![0u8; hh * ww];
        for y in 0..hh {
            for x in 0..ww {
                let mut s = 0u32;
                for dy in 0..fy {
                    for dx in 0..fx {
                        s += src[(y * fy + dy) * w0 + x * fx + dx] as u32;
                    }
                }
                small[y * ww + x] = ((s + (fy * fx) as u32 / 2) / (fy * fx) as u32) as u8;
            }
        }
        // then centre-pad
        let (top, left) = ((h1 - hh) / 2, (w1 - ww) / 2);
        let mut out = vec![0u8; h1 * w1];
        for y in 0..hh {
            out[(y + top) * w1 + left..(y + top) * w1 + left + ww]
                .copy_from_slice(&small[y * ww..(y + 1) * ww]);
        }
        out
    };
    for i in 0..n {
        let img = ds.image(i);
        let planes: Vec<Vec<u8>> = (0..c0)
            .map(|ch| plane(&img[ch * h0 * w0..(ch + 1) * h0 * w0]))
            .collect();
        if c0 == c1 {
            planes.iter().for_each(|p| pixels.extend_from_slice(p));
        } else if c0 == 1 {
            (0..c1).for_each(|_| pixels.extend_from_slice(&planes[0]));
        } else {
            // c1 == 1: average the channels (grey)
            for k in 0..h1 * w1 {
                let s: u32 = planes.iter().map(|p| p[k] as u32).sum();
                pixels.push(((s + c0 as u32 / 2) / c0 as u32) as u8);
            }
        }
    }
    Ok(Dataset {
        shape: target,
        max_value: ds.max_value,
        classes: ds.classes,
        pixels,
        labels: ds.labels,
    })
}

/// Downsampling factor from `from` to (at most) `to`: 1 when padding, `from / to` when `to`
/// divides `from`.
fn factor(from: usize, to: usize) -> Result<usize> {
    if from <= to {
        Ok(1)
    } else if to > 0 && from.is_multiple_of(to) {
        Ok(from / to)
    } else {
        Err(Error::Data(format!(
            "cannot shrink images of side {from} to {to} (not an integer factor)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_28_padded_and_replicated_to_32x32x3() {
        let ds = Dataset {
            shape: [1, 28, 28],
            max_value: 255.0,
            classes: 10,
            pixels: (0..784).map(|k| (k % 251) as u8 + 1).collect(),
            labels: vec![4],
        };
        let f = fit_to_shape(ds.clone(), [3, 32, 32]).unwrap();
        assert_eq!(f.shape, [3, 32, 32]);
        let img = f.image(0);
        // border of 2 is zero, content shifted by (2,2), three identical planes
        assert_eq!(img[0], 0);
        assert_eq!(img[2 * 32 + 2], ds.pixels[0]);
        assert_eq!(img[29 * 32 + 29], ds.pixels[27 * 28 + 27]);
        assert_eq!(img[30 * 32 + 30], 0);
        assert_eq!(&img[..1024], &img[1024..2048]);
        assert_eq!(&img[..1024], &img[2048..]);
        assert_eq!(f.labels, vec![4]);
    }

    #[test]
    fn rgb_64_box_downsampled_to_32_and_odd_factor_refused() {
        let ds = Dataset {
            shape: [3, 4, 4],
            max_value: 255.0,
            classes: 2,
            pixels: (0..48).map(|k| k as u8).collect(),
            labels: vec![1],
        };
        let f = fit_to_shape(ds.clone(), [3, 2, 2]).unwrap();
        // top-left 2x2 block of plane 0: 0,1,4,5 → mean 2.5 → rounds to 3
        assert_eq!(f.image(0)[0], 3);
        assert!(fit_to_shape(ds.clone(), [3, 3, 3]).is_err());
        let g = fit_to_shape(ds, [1, 4, 4]).unwrap();
        assert_eq!(g.image(0)[0], 16); // (0 + 16 + 32) / 3
    }
}
