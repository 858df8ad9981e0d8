//! Parameters of the element-wise and window operators: ReLU variants, pooling windows, affine
//! maps, strided slices and element masks.

use serde::{Deserialize, Serialize};

/// A ReLU over all elements, a channel subset or an element subset (the other elements pass
/// through linearly), optionally capped from above (`cap = 6` is ReLU6, ONNX `Clip(0, 6)`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Relu {
    /// Sorted channel indices that get a ReLU; `None` means every channel.
    pub channels: Option<Vec<usize>>,
    /// The CHW elements that get a ReLU (per-element subset, SNL-style); `None` means all
    /// elements of the selected channels. When set, `channels` must be `None`.
    #[serde(default)]
    pub elements: Option<ElementMask>,
    /// Upper clamp `min(relu(x), cap)` (ReLU6: 6.0); `None` is a plain ReLU.
    #[serde(default)]
    pub cap: Option<f32>,
}

impl Relu {
    /// A ReLU on every element.
    pub fn all() -> Relu {
        Relu::default()
    }

    /// A ReLU on the listed channels only (sorted, strictly increasing).
    pub fn channels(channels: Vec<usize>) -> Relu {
        Relu {
            channels: Some(channels),
            ..Relu::default()
        }
    }

    /// A ReLU on the elements set in `mask` only.
    pub fn elements(mask: ElementMask) -> Relu {
        Relu {
            elements: Some(mask),
            ..Relu::default()
        }
    }

    /// Whether this is a ReLU on every element without a cap.
    pub fn is_plain(&self) -> bool {
        self.channels.is_none() && self.elements.is_none() && self.cap.is_none()
    }

    /// Per element of a `(c, h·w)` tensor: does it go through the ReLU?
    pub fn selection(&self, c: usize, hw: usize) -> Vec<bool> {
        match (&self.channels, &self.elements) {
            (_, Some(m)) => (0..c * hw).map(|i| m.contains(i)).collect(),
            (Some(chans), None) => {
                let mut sel = vec![false; c * hw];
                for &ch in chans.iter().filter(|&&ch| ch < c) {
                    sel[ch * hw..(ch + 1) * hw]
                        .iter_mut()
                        .for_each(|v| *v = true);
                }
                sel
            }
            (None, None) => vec![true; c * hw],
        }
    }

    /// Number of elements of a `(c, h·w)` tensor that go through the ReLU.
    pub fn selected_count(&self, c: usize, hw: usize) -> usize {
        match (&self.channels, &self.elements) {
            (_, Some(m)) => m.count(),
            (Some(chans), None) => chans.len() * hw,
            (None, None) => c * hw,
        }
    }
}

/// A fixed set of tensor elements (CHW order), stored as a bit set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementMask {
    len: usize,
    words: Vec<u64>,
}

impl ElementMask {
    /// The mask of `bits` (element i is selected when `bits[i]`).
    pub fn from_bools(bits: &[bool]) -> ElementMask {
        let mut words = vec![0u64; bits.len().div_ceil(64)];
        for (i, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
            words[i / 64] |= 1 << (i % 64);
        }
        ElementMask {
            len: bits.len(),
            words,
        }
    }

    /// Number of elements the mask covers (selected or not).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask covers no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether element `i` is selected (`false` beyond the end).
    #[inline]
    pub fn contains(&self, i: usize) -> bool {
        i < self.len
            && self
                .words
                .get(i / 64)
                .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// Number of selected elements.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The mask as one bool per element.
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.len).map(|i| self.contains(i)).collect()
    }

    /// Whether the stored words agree with the length (no bit set beyond `len`); a mask read from
    /// an untrusted source must pass this.
    pub fn is_consistent(&self) -> bool {
        self.words.len() == self.len.div_ceil(64)
            && (self.len.is_multiple_of(64)
                || self.words.last().is_none_or(|w| w >> (self.len % 64) == 0))
    }
}

/// The geometry of a pooling window (average or max), as ONNX and PyTorch define it.
///
/// Output size per axis: `⌊(n + pad_begin + pad_end − k) / s⌋ + 1` (`⌈⌉` with `ceil_mode`, and
/// then, as PyTorch, one less when the last window would start at or beyond `n + pad_begin`).
/// Window `o` covers positions `o·s − pad_begin ..` of length k, clipped to the input. An average
/// divides by the window clipped to `n + pad_end` when `count_include_pad`, otherwise by the
/// number of input elements in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding `[top, left, bottom, right]`.
    #[serde(default)]
    pub pads: [usize; 4],
    /// Output size rounded up (the last window may hang over the end).
    #[serde(default)]
    pub ceil_mode: bool,
    /// Average pooling: padding zeros count in the divisor.
    #[serde(default)]
    pub count_include_pad: bool,
}

/// One pooling window: input rows and columns it reads (clipped to the input) and the divisor an
/// average pool uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Input rows `rows.0 .. rows.1`.
    pub rows: (usize, usize),
    /// Input columns `cols.0 .. cols.1`.
    pub cols: (usize, usize),
    /// Divisor of an average over this window.
    pub divisor: usize,
}

impl Window {
    /// Number of input elements read.
    pub fn len(&self) -> usize {
        (self.rows.1 - self.rows.0) * (self.cols.1 - self.cols.0)
    }

    /// Whether the window reads no input element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Indices (row-major within one `w`-wide channel plane) of the elements read.
    pub fn indices(&self, w: usize) -> impl Iterator<Item = usize> + '_ {
        (self.rows.0..self.rows.1)
            .flat_map(move |y| (self.cols.0..self.cols.1).map(move |x| y * w + x))
    }
}

impl Pool {
    /// A window without padding.
    pub fn new(kernel: [usize; 2], stride: [usize; 2]) -> Pool {
        Pool {
            kernel,
            stride,
            pads: [0; 4],
            ceil_mode: false,
            count_include_pad: false,
        }
    }

    /// Whether the window has no padding and no ceil-mode overhang.
    pub fn is_plain(&self) -> bool {
        self.pads == [0; 4] && !self.ceil_mode
    }

    /// Output length along one axis (`None` when the window does not fit or a window would be empty).
    fn axis_len(
        n: usize,
        k: usize,
        s: usize,
        begin: usize,
        end: usize,
        ceil: bool,
    ) -> Option<usize> {
        if k == 0 || s == 0 || n + begin + end < k || begin >= k || end >= k {
            return None;
        }
        let span = n + begin + end - k;
        let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
        if ceil && (out - 1) * s >= n + begin {
            out -= 1;
        }
        // Every window must read at least one input element.
        ((out - 1) * s < n + begin).then_some(out)
    }

    /// Output `(h, w)` for an `h × w` input, or `None` when the geometry is invalid (zero kernel or
    /// stride, window larger than the padded input, padding of a whole window).
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let [t, l, b, r] = self.pads;
        Some((
            Self::axis_len(h, self.kernel[0], self.stride[0], t, b, self.ceil_mode)?,
            Self::axis_len(w, self.kernel[1], self.stride[1], l, r, self.ceil_mode)?,
        ))
    }

    /// Range and divisor of window `o` along one axis.
    fn axis_window(&self, axis: usize, o: usize, n: usize) -> ((usize, usize), usize) {
        let (k, s) = (self.kernel[axis], self.stride[axis]);
        let (begin, end) = (self.pads[axis], self.pads[axis + 2]);
        let start = (o * s) as isize - begin as isize;
        let stop_padded = (start + k as isize).min((n + end) as isize);
        let lo = start.max(0) as usize;
        let hi = (stop_padded.min(n as isize)).max(lo as isize) as usize;
        let size = if self.count_include_pad {
            (stop_padded - start) as usize
        } else {
            hi - lo
        };
        ((lo, hi), size)
    }

    /// Window `(oy, ox)` of an `h × w` input.
    pub fn window(&self, oy: usize, ox: usize, h: usize, w: usize) -> Window {
        let (rows, dr) = self.axis_window(0, oy, h);
        let (cols, dc) = self.axis_window(1, ox, w);
        Window {
            rows,
            cols,
            divisor: dr * dc,
        }
    }

    /// Every window of an `h × w` input, row-major over the output (empty for invalid geometry).
    pub fn windows(&self, h: usize, w: usize) -> Vec<Window> {
        let Some((oh, ow)) = self.output_size(h, w) else {
            return Vec::new();
        };
        let mut v = Vec::with_capacity(oh * ow);
        for oy in 0..oh {
            for ox in 0..ow {
                v.push(self.window(oy, ox, h, w));
            }
        }
        v
    }
}

/// Max pooling, optionally fused with a ReLU (and a cap) around it: the `max` of ReLUs is the ReLU
/// of the `max`, so one comparison tree and one ReLU per output element.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MaxPool {
    /// Window geometry; positions outside the input are ignored (PyTorch pads with −∞).
    pub pool: Pool,
    /// Apply `max(0, ·)` to the maximum (a fused ReLU).
    pub relu: bool,
    /// Apply `min(·, cap)` to the maximum (a fused ReLU6 has `relu` and `cap = 6`).
    pub cap: Option<f32>,
}

/// `y = x · scale + shift` with constants broadcast per tensor (1 value), per channel (c values)
/// or per element (numel values). Only shift-only maps (empty `scale`) reach the fixed-point plan:
/// the importer folds scales into neighbouring linear layers or turns them into depthwise 1×1
/// convolutions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    /// Multipliers (empty: all 1).
    pub scale: Vec<f32>,
    /// Addends (empty: all 0).
    pub shift: Vec<f32>,
}

impl Affine {
    /// The constant of a broadcast list for element `i` of a `(c, hw)` tensor (`default` if empty).
    #[inline]
    pub fn at(list: &[f32], i: usize, c: usize, hw: usize, default: f32) -> f32 {
        match list.len() {
            0 => default,
            1 => list[0],
            n if n == c * hw => list[i],
            n if n == c && hw > 0 => list[i / hw],
            _ => default,
        }
    }

    /// Whether a broadcast list of this length fits a `(c, hw)` tensor.
    pub fn fits(len: usize, c: usize, hw: usize) -> bool {
        len <= 1 || len == c || len == c * hw
    }

    /// Whether the map only adds (every scale is 1).
    pub fn is_shift_only(&self) -> bool {
        self.scale.iter().all(|&s| s == 1.0)
    }
}

/// A strided slice on (channel, row, column): element `(i, j, k)` of the output is element
/// `(start[0] + i·step[0], start[1] + j·step[1], start[2] + k·step[2])` of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// First index per axis.
    pub start: [usize; 3],
    /// Output length per axis (≥ 1).
    pub len: [usize; 3],
    /// Step per axis (≥ 1).
    pub step: [usize; 3],
}

/// Public averaging by index lists: output element j is `(Σ_{i ∈ sets[j]} x[i]) / divisors[j]`
/// (an adaptive average pool to a size that does not divide the input, as the dynamo exporter
/// writes it). Free on shares; the lists and divisors are architecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherMean {
    /// Output shape.
    pub out: crate::graph::Shape,
    /// Input elements summed, per output element.
    pub sets: Vec<Vec<u32>>,
    /// Divisor per output element (≥ 1).
    pub divisors: Vec<u32>,
}
