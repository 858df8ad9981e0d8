//! Layer shapes, their stride-1 canonical form, and the block plan (coefficient encoding).
//!
//! Every layer is reduced to a stride-1 "valid" convolution on a pre-padded input:
//! stride s is removed by polyphase decomposition (channel c, phase (α, β) becomes canonical
//! channel c·P + phase, reading padded pixel (s·i + α, s·j + β)), an FC layer is a 1×1 conv
//! on a 1×1 image, and groups are a block-diagonal kernel whose all-zero blocks are skipped.
//!
//! Encoding of one block (C_w channels × a tile of HI×WI pixels, HWI = HI·WI):
//!   input  T = Σ_c Σ_a t[c][a]·X^(c·HWI + a)
//!   kernel K = Σ_m Σ_c Σ_(ky,kx) w[m][c][ky][kx]·X^(m·S + (C_w−1−c)·HWI + b_max − ky·WI − kx),
//!   S = C_w·HWI, b_max = (kh−1)·WI + kw − 1, and M_w·C_w·HWI ≤ N.
//! Output (m, y, x) of the product sits at m·S + (C_w−1)·HWI + b_max + y·WI + x; no other term
//! (other channel pairs, other output groups, the negacyclic wrap of the last group) lands there.

use serde::{Deserialize, Serialize};

use crate::params::Fnv;
use crate::HeError;

/// A linear layer as the HE phase sees it (bias excluded; it is added online).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinearShape {
    /// 2-D convolution, weights [c_out, c_in/groups, kh, kw], symmetric zero padding.
    Conv {
        /// Input channels.
        c_in: usize,
        /// Input height.
        h: usize,
        /// Input width.
        w: usize,
        /// Output channels.
        c_out: usize,
        /// Kernel height.
        kh: usize,
        /// Kernel width.
        kw: usize,
        /// Stride (same for both axes).
        stride: usize,
        /// Zero padding on every side.
        pad: usize,
        /// Channel groups (1 = dense, c_in = depthwise).
        groups: usize,
    },
    /// Fully connected, weights [out_features, in_features].
    Fc {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
}

impl LinearShape {
    /// Number of input elements (CHW order for Conv).
    pub fn input_len(&self) -> usize {
        match *self {
            LinearShape::Conv { c_in, h, w, .. } => c_in * h * w,
            LinearShape::Fc { in_features, .. } => in_features,
        }
    }

    /// Number of output elements (CHW order for Conv).
    pub fn output_len(&self) -> usize {
        match *self {
            LinearShape::Conv { c_out, .. } => {
                let (ho, wo) = self.output_hw();
                c_out * ho * wo
            }
            LinearShape::Fc { out_features, .. } => out_features,
        }
    }

    /// Number of weights expected by `prepare_layer`.
    pub fn weight_len(&self) -> usize {
        match *self {
            LinearShape::Conv {
                c_in,
                c_out,
                kh,
                kw,
                groups,
                ..
            } => c_out * (c_in / groups.max(1)) * kh * kw,
            LinearShape::Fc {
                in_features,
                out_features,
            } => in_features * out_features,
        }
    }

    /// Output spatial size (1×1 for FC).
    pub fn output_hw(&self) -> (usize, usize) {
        match *self {
            LinearShape::Conv {
                h,
                w,
                kh,
                kw,
                stride,
                pad,
                ..
            } => {
                let s = stride.max(1);
                (
                    (h + 2 * pad).saturating_sub(kh) / s + 1,
                    (w + 2 * pad).saturating_sub(kw) / s + 1,
                )
            }
            LinearShape::Fc { .. } => (1, 1),
        }
    }

    /// Multiply-accumulates of the layer.
    pub fn macs(&self) -> u64 {
        match *self {
            LinearShape::Conv {
                c_in,
                c_out,
                kh,
                kw,
                groups,
                ..
            } => {
                let (ho, wo) = self.output_hw();
                (c_out * (c_in / groups.max(1)) * kh * kw * ho * wo) as u64
            }
            LinearShape::Fc {
                in_features,
                out_features,
            } => (in_features * out_features) as u64,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), HeError> {
        const MAX: usize = 1 << 24;
        let bad = |m: String| Err(HeError::Shape(m));
        match *self {
            LinearShape::Conv {
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride,
                pad,
                groups,
            } => {
                if [c_in, h, w, c_out, kh, kw, stride, groups]
                    .iter()
                    .any(|&v| v == 0 || v > MAX)
                    || pad > MAX
                {
                    return bad(format!("dimension zero or too large in {self:?}"));
                }
                if c_in % groups != 0 || c_out % groups != 0 {
                    return bad(format!(
                        "groups {groups} must divide c_in {c_in} and c_out {c_out}"
                    ));
                }
                if kh > h + 2 * pad || kw > w + 2 * pad {
                    return bad(format!("kernel larger than padded input in {self:?}"));
                }
                if self.input_len() > MAX * 16 || self.weight_len() > MAX * 64 {
                    return bad(format!("layer too large: {self:?}"));
                }
            }
            LinearShape::Fc {
                in_features,
                out_features,
            } => {
                if in_features == 0 || out_features == 0 || in_features > MAX || out_features > MAX
                {
                    return bad(format!("bad FC size {self:?}"));
                }
            }
        }
        Ok(())
    }

    /// A 64-bit fingerprint of the shape (carried in each layer request).
    pub fn fingerprint(&self) -> u64 {
        let mut f = Fnv::new();
        match *self {
            LinearShape::Conv {
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride,
                pad,
                groups,
            } => {
                for v in [1, c_in, h, w, c_out, kh, kw, stride, pad, groups] {
                    f.u64(v as u64);
                }
            }
            LinearShape::Fc {
                in_features,
                out_features,
            } => {
                for v in [2, in_features, out_features] {
                    f.u64(v as u64);
                }
            }
        }
        f.finish()
    }
}

/// The stride-1 "valid" convolution equivalent to a layer.
#[derive(Clone, Debug)]
pub(crate) struct Canon {
    pub cin: usize,
    pub cout: usize,
    pub hin: usize,
    pub win: usize,
    pub kh: usize,
    pub kw: usize,
    pub hout: usize,
    pub wout: usize,
    // Mapping back to the original layer.
    o_h: usize,
    o_w: usize,
    o_kh: usize,
    o_kw: usize,
    stride: usize,
    pad: usize,
    phases: Vec<(usize, usize)>,
    cpg_in: usize,
    cpg_out: usize,
}

impl Canon {
    pub fn new(shape: &LinearShape) -> Result<Self, HeError> {
        shape.validate()?;
        let (c_in, h, w, c_out, kh, kw, stride, pad, groups) = match *shape {
            LinearShape::Conv {
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride,
                pad,
                groups,
            } => (c_in, h, w, c_out, kh, kw, stride, pad, groups),
            LinearShape::Fc {
                in_features,
                out_features,
            } => (in_features, 1, 1, out_features, 1, 1, 1, 0, 1),
        };
        let (hout, wout) = (
            (h + 2 * pad - kh) / stride + 1,
            (w + 2 * pad - kw) / stride + 1,
        );
        let s = stride;
        // Phase α contributes iff some tap ky = s·ky' + α < kh.
        let phases: Vec<(usize, usize)> = (0..s.min(kh))
            .flat_map(|a| (0..s.min(kw)).map(move |b| (a, b)))
            .collect();
        let (ckh, ckw) = (kh.div_ceil(s), kw.div_ceil(s));
        Ok(Canon {
            cin: c_in * phases.len(),
            cout: c_out,
            hin: hout + ckh - 1,
            win: wout + ckw - 1,
            kh: ckh,
            kw: ckw,
            hout,
            wout,
            o_h: h,
            o_w: w,
            o_kh: kh,
            o_kw: kw,
            stride: s,
            pad,
            phases,
            cpg_in: c_in / groups,
            cpg_out: c_out / groups,
        })
    }

    /// Index into the original input of canonical pixel (c', i, j), or None for padding.
    #[inline]
    pub fn input_index(&self, c: usize, i: usize, j: usize) -> Option<usize> {
        let p = self.phases.len();
        let (oc, ph) = (c / p, c % p);
        let (a, b) = self.phases[ph];
        let y = (self.stride * i + a).checked_sub(self.pad)?;
        let x = (self.stride * j + b).checked_sub(self.pad)?;
        if y < self.o_h && x < self.o_w {
            Some((oc * self.o_h + y) * self.o_w + x)
        } else {
            None
        }
    }

    /// Index into the original weights of canonical tap (o, c', ky, kx), or None if structurally zero.
    #[inline]
    pub fn weight_index(&self, o: usize, c: usize, ky: usize, kx: usize) -> Option<usize> {
        let p = self.phases.len();
        let (oc, ph) = (c / p, c % p);
        let g = o / self.cpg_out;
        if oc / self.cpg_in != g {
            return None;
        }
        let (a, b) = self.phases[ph];
        let (y, x) = (self.stride * ky + a, self.stride * kx + b);
        if y >= self.o_kh || x >= self.o_kw {
            return None;
        }
        let cl = oc - g * self.cpg_in;
        Some(((o * self.cpg_in + cl) * self.o_kh + y) * self.o_kw + x)
    }

    /// Whether output channel o and canonical input channel c share a group.
    #[inline]
    pub fn connected(&self, o: usize, c: usize) -> bool {
        (c / self.phases.len()) / self.cpg_in == o / self.cpg_out
    }
}

/// How a canonical layer is cut into ciphertext blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub n: usize,
    /// Output rows per tile, input rows per tile, input width.
    pub ht: usize,
    pub hi: usize,
    pub wi: usize,
    pub hwi: usize,
    /// Channels per input block, output channels per product.
    pub cw: usize,
    pub mw: usize,
    pub n_tiles: usize,
    pub n_cb: usize,
    pub n_mg: usize,
    pub bmax: usize,
}

/// Wire sizes the plan is optimised for.
pub(crate) struct CostModel {
    pub in_ct_bits: f64,
    pub c1_bits: f64,
    pub c0_bits: f64,
}

impl Plan {
    /// The plan minimising traffic (plus a small compute term) for this canonical layer.
    pub fn choose(c: &Canon, n: usize, cost: &CostModel) -> Result<Plan, HeError> {
        let wi = c.win;
        let mut best: Option<(f64, Plan)> = None;
        let max_ht = c.hout;
        for ht in (1..=max_ht).rev() {
            let hi = ht + c.kh - 1;
            let hwi = hi * wi;
            if hwi > n {
                continue;
            }
            let r = n / hwi;
            let n_tiles = c.hout.div_ceil(ht);
            let mut cws: Vec<usize> = (1..=r.min(c.cin)).collect();
            if cws.len() > 256 {
                // Large ratios (FC, tiny images): try divisors-ish spread, enough for a near optimum.
                let mut v: Vec<usize> = (0..=64)
                    .map(|i| ((r.min(c.cin) as f64).powf(i as f64 / 64.0)).round() as usize)
                    .collect();
                v.extend([c.cin.min(r)]);
                v.sort_unstable();
                v.dedup();
                cws = v.into_iter().filter(|&x| x >= 1).collect();
            }
            for cw in cws {
                let mw = (r / cw).min(c.cout).max(1);
                if cw * mw * hwi > n {
                    continue;
                }
                let n_cb = c.cin.div_ceil(cw);
                let n_mg = c.cout.div_ceil(mw);
                let n_in = (n_tiles * n_cb) as f64;
                let n_out = (n_tiles * n_mg) as f64;
                let products = n_in * n_mg as f64;
                let revealed = (c.cout * c.hout * c.wout) as f64;
                let bits = n_in * cost.in_ct_bits
                    + n_out * cost.c1_bits * n as f64
                    + revealed * cost.c0_bits;
                // One product (2·L·N multiply-adds) weighs like ~2 KB of traffic; kernel NTTs likewise.
                let total = bits / 8.0 + products * 2048.0 + (n_mg * n_cb) as f64 * 1024.0;
                let plan = Plan {
                    n,
                    ht,
                    hi,
                    wi,
                    hwi,
                    cw,
                    mw,
                    n_tiles,
                    n_cb,
                    n_mg,
                    bmax: (c.kh - 1) * wi + c.kw - 1,
                };
                if best.as_ref().is_none_or(|(b, _)| total < *b) {
                    best = Some((total, plan));
                }
            }
        }
        best.map(|(_, p)| p).ok_or_else(|| {
            HeError::Shape(format!(
                "input rows of width {wi} (kernel {}x{}) do not fit N = {n}",
                c.kh, c.kw
            ))
        })
    }

    /// Coefficient of output (m, y_local, x) in an output ciphertext.
    #[inline]
    pub fn out_pos(&self, m: usize, y: usize, x: usize) -> usize {
        m * self.cw * self.hwi + (self.cw - 1) * self.hwi + self.bmax + y * self.wi + x
    }

    /// Coefficient of kernel tap (m, c_local, ky, kx) in a kernel polynomial.
    #[inline]
    pub fn kernel_pos(&self, m: usize, c: usize, ky: usize, kx: usize) -> usize {
        m * self.cw * self.hwi + (self.cw - 1 - c) * self.hwi + self.bmax - (ky * self.wi + kx)
    }

    /// Number of input ciphertexts the client sends.
    pub fn num_inputs(&self) -> usize {
        self.n_tiles * self.n_cb
    }

    /// Number of output ciphertexts the server returns.
    pub fn num_outputs(&self) -> usize {
        self.n_tiles * self.n_mg
    }

    /// Output rows covered by tile t.
    pub fn tile_rows(&self, t: usize, hout: usize) -> usize {
        self.ht.min(hout - t * self.ht)
    }
}
