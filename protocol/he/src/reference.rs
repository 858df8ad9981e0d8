//! The plaintext linear layer in Z_2^k: what client share + server share must equal.

use crate::LinearShape;

/// The plaintext layer mod 2^k, computed directly (the oracle of tests and `pi-bench linear --check`).
pub fn plain_layer(shape: &LinearShape, w: &[i64], x: &[u64], k: u32) -> Vec<u64> {
    let mask = (1u64 << k) - 1;
    match *shape {
        LinearShape::Fc {
            in_features,
            out_features,
        } => (0..out_features)
            .map(|o| {
                (0..in_features).fold(0u64, |acc, i| {
                    acc.wrapping_add((w[o * in_features + i] as u64).wrapping_mul(x[i]))
                }) & mask
            })
            .collect(),
        LinearShape::Conv {
            c_in,
            h,
            w: wd,
            c_out,
            kh,
            kw,
            stride,
            pad,
            groups,
        } => {
            let (ho, wo) = shape.output_hw();
            let (cpg_in, cpg_out) = (c_in / groups, c_out / groups);
            let mut out = vec![0u64; c_out * ho * wo];
            for o in 0..c_out {
                let g = o / cpg_out;
                for y in 0..ho {
                    for xx in 0..wo {
                        let mut acc = 0u64;
                        for cl in 0..cpg_in {
                            let c = g * cpg_in + cl;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let (iy, ix) = (
                                        (y * stride + ky) as isize - pad as isize,
                                        (xx * stride + kx) as isize - pad as isize,
                                    );
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let wv = w[((o * cpg_in + cl) * kh + ky) * kw + kx] as u64;
                                    acc =
                                        acc.wrapping_add(wv.wrapping_mul(
                                            x[(c * h + iy as usize) * wd + ix as usize],
                                        ));
                                }
                            }
                        }
                        out[(o * ho + y) * wo + xx] = acc & mask;
                    }
                }
            }
            out
        }
    }
}
