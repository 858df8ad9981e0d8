//! Layer shapes, their stride-1 canonical form, and the block plan (coefficient encoding).
//!
//! Every layer is reduced to a stride-1 "valid" convolution on a pre-padded input:
//! stride s is removed by polyphase decomposition (channel c, phase (α, β) becomes canonical
//! channel c·P + phase, reading padded pixel (s·i + α, s·j + β)), an FC layer is a 1×1 conv
//! on a 1×1 image, and groups are a block-diagonal kernel whose all-zero blocks are skipped.
//!
//! Encoding of one block (C_s super-channels of d interleaved channels × a tile of HI×WI pixels,
//! HWI = HI·WI; channel c = c_hi·d + c_lo):
//!   input  T = Σ_c Σ_a t[c][a]·X^(d·(c_hi·HWI + a) + c_lo)
//!   kernel K = Σ_m Σ_c Σ_(ky,kx) w[m][c][ky][kx]·X^(d·(m·S + (C_s−1−c_hi)·HWI + b_max − ky·WI − kx) − c_lo),
//!   S = C_s·HWI, b_max = (kh−1)·WI + kw − 1, and M_w·C_s·HWI ≤ N/d (X^(−e) = −X^(N−e)).
//! Output (m, y, x) of the product sits at d·Y with Y = m·S + (C_s−1)·HWI + b_max + y·WI + x:
//! pairs with c_lo ≠ c_lo' land on other residues mod d, and on residue 0 the exponents
//! divided by d are the d = 1 encoding in Z[Y]/(Y^(N/d) + 1), where no other term
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

/// A layer's geometry as a convolution (an FC layer is a 1×1 conv on a 1×1 image).
#[derive(Clone, Copy, Debug)]
struct ConvDims {
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
    groups: usize,
}

impl LinearShape {
    fn conv_dims(&self) -> ConvDims {
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
            } => ConvDims {
                c_in,
                h,
                w,
                c_out,
                kh,
                kw,
                stride,
                pad,
                groups,
            },
            LinearShape::Fc {
                in_features,
                out_features,
            } => ConvDims {
                c_in: in_features,
                h: 1,
                w: 1,
                c_out: out_features,
                kh: 1,
                kw: 1,
                stride: 1,
                pad: 0,
                groups: 1,
            },
        }
    }

    /// Number of input elements (CHW order for Conv).
    pub fn input_len(&self) -> usize {
        let d = self.conv_dims();
        d.c_in * d.h * d.w
    }

    /// Number of output elements (CHW order for Conv).
    pub fn output_len(&self) -> usize {
        let (ho, wo) = self.output_hw();
        self.conv_dims().c_out * ho * wo
    }

    /// Number of weights expected by `prepare_layer`.
    pub fn weight_len(&self) -> usize {
        let d = self.conv_dims();
        d.c_out * (d.c_in / d.groups.max(1)) * d.kh * d.kw
    }

    /// Output spatial size (1×1 for FC).
    pub fn output_hw(&self) -> (usize, usize) {
        let d = self.conv_dims();
        let s = d.stride.max(1);
        (
            (d.h + 2 * d.pad).saturating_sub(d.kh) / s + 1,
            (d.w + 2 * d.pad).saturating_sub(d.kw) / s + 1,
        )
    }

    /// Multiply-accumulates of the layer.
    pub fn macs(&self) -> u64 {
        let (ho, wo) = self.output_hw();
        (self.weight_len() * ho * wo) as u64
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
        let ConvDims {
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            pad,
            groups,
        } = shape.conv_dims();
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

/// Block geometry of one tile height: input blocks of `cs` super-channels, each interleaving
/// `d` channels (channel c_hi·d + c_lo of pixel a sits at d·(c_hi·HWI + a) + c_lo), and products
/// of `mw` output channels; `d` products pack into one reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TileCfg {
    /// Input rows (output rows + kh − 1) and input pixels per channel (HI·WI).
    pub hi: usize,
    pub hwi: usize,
    /// Packing factor (power of two), super-channels per block, channels per block (cs·d).
    pub d: usize,
    pub cs: usize,
    pub cw: usize,
    /// Output channels per product.
    pub mw: usize,
    /// Channel blocks, output groups (products per tile) and reply ciphertexts per tile.
    pub n_cb: usize,
    pub n_mg: usize,
    pub n_pack: usize,
}

/// A band of output rows and the geometry it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    pub y0: usize,
    pub rows: usize,
    pub cfg: usize,
}

/// How a canonical layer is cut into ciphertext blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub n: usize,
    /// Input width (canonical) and the largest kernel offset (kh−1)·WI + kw − 1.
    pub wi: usize,
    pub bmax: usize,
    pub cfgs: Vec<TileCfg>,
    pub tiles: Vec<Tile>,
}

/// The cost of one layer's HE exchange as its block plan sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlanCost {
    /// Input ciphertexts (client → server).
    pub inputs: usize,
    /// Plaintext–ciphertext products (structurally zero blocks skipped).
    pub products: usize,
    /// Reply ciphertexts (server → client).
    pub replies: usize,
    /// Key switches of the packing trees.
    pub key_switches: usize,
    /// Output values revealed to the client.
    pub revealed: usize,
    /// Kernel plaintexts transformed once at model load.
    pub kernel_transforms: usize,
    /// Bytes client → server.
    pub bytes_up: u64,
    /// Bytes server → client.
    pub bytes_down: u64,
    /// Compute of both parties at one core, in nanoseconds, at the planner's measured constants
    /// (encryption, products, finishing and decrypting replies, key switches; kernel transforms
    /// only for layers whose kernels do not fit the cache, see `plan_cost`).
    pub compute_ns: f64,
}

/// Wire sizes and compute costs the plan is optimised for.
pub(crate) struct CostModel {
    pub in_ct_bits: f64,
    pub c1_bits: f64,
    pub c0_bits: f64,
    /// Largest packing factor the keys allow.
    pub max_d: usize,
    /// Bytes the link carries per nanosecond of compute (the exchange rate of the two costs).
    pub bytes_per_ns: f64,
}

/// Compute costs, measured on one core of the reference machine: an input ciphertext (client
/// encryption, server parsing and seed expansion), a plaintext–ciphertext product, a reply (server
/// re-randomise, flood, switch, serialise; client decryption), one key switch of the packing tree,
/// and one kernel transform. They are weighed against traffic at the parameters' link speed.
const INPUT_NS: f64 = 2_000_000.0;
const PRODUCT_NS: f64 = 50_000.0;
const FINISH_NS: f64 = 1_500_000.0;
const KEY_SWITCH_NS: f64 = 1_900_000.0;
/// A kernel transform costs ~130 µs but runs once at model load (cached), so it weighs 5% of that.
const KERNEL_NS: f64 = 6_500.0;
/// One kernel transform at full cost (a layer too large for the kernel cache pays it per session).
pub(crate) const KERNEL_TRANSFORM_NS: f64 = 130_000.0;

impl TileCfg {
    /// Product coefficient (Y index, before interleaving) of output (m, y, x).
    #[inline]
    pub fn out_y(&self, plan: &Plan, m: usize, y: usize, x: usize) -> usize {
        m * self.cs * self.hwi + (self.cs - 1) * self.hwi + plan.bmax + y * plan.wi + x
    }

    /// Exponent of kernel tap (m, c_local, ky, kx) in a kernel polynomial, and whether the weight
    /// is negated (a negative exponent −e is X^(N−e) with sign −1).
    #[inline]
    pub fn kernel_pos(
        &self,
        plan: &Plan,
        m: usize,
        c: usize,
        ky: usize,
        kx: usize,
    ) -> (usize, bool) {
        let (c_hi, c_lo) = (c / self.d, c % self.d);
        let e = self.d
            * (m * self.cs * self.hwi + (self.cs - 1 - c_hi) * self.hwi + plan.bmax
                - (ky * plan.wi + kx));
        if e >= c_lo {
            (e - c_lo, false)
        } else {
            (plan.n + e - c_lo, true)
        }
    }

    /// Coefficient of input (c_local, pixel a of the tile) in an input polynomial.
    #[inline]
    pub fn input_pos(&self, c: usize, a: usize) -> usize {
        self.d * ((c / self.d) * self.hwi + a) + c % self.d
    }
}

impl Plan {
    /// The plan minimising traffic plus weighted compute for this canonical layer.
    pub fn choose(c: &Canon, n: usize, cost: &CostModel) -> Result<Plan, HeError> {
        let wi = c.win;
        let bmax = (c.kh - 1) * wi + c.kw - 1;
        let mut memo: Vec<Option<Option<(f64, f64, TileCfg)>>> = vec![None; c.hout + 1];
        let mut best_for = |h: usize, count: usize| -> Option<(f64, TileCfg)> {
            // The kernel term is per geometry, so the best depends on the tile count only through it;
            // memoise on h and recompute the (cheap) total for the count.
            if memo[h].is_none() {
                memo[h] = Some(best_cfg(c, n, cost, h));
            }
            memo[h]
                .clone()
                .flatten()
                .map(|(per_tile, kernels, cfg)| (per_tile * count as f64 + kernels, cfg))
        };
        let mut best: Option<(f64, Plan)> = None;
        for ht in (1..=c.hout).rev() {
            let (full, rem) = (c.hout / ht, c.hout % ht);
            let Some((cost_main, cfg_main)) = best_for(ht, full) else {
                continue;
            };
            let mut total = cost_main;
            let mut cfgs = vec![cfg_main];
            let mut tiles: Vec<Tile> = (0..full)
                .map(|i| Tile {
                    y0: i * ht,
                    rows: ht,
                    cfg: 0,
                })
                .collect();
            if rem > 0 {
                let Some((cost_rem, cfg_rem)) = best_for(rem, 1) else {
                    continue;
                };
                total += cost_rem;
                let idx = if cfg_rem == cfgs[0] {
                    0
                } else {
                    cfgs.push(cfg_rem);
                    1
                };
                tiles.push(Tile {
                    y0: full * ht,
                    rows: rem,
                    cfg: idx,
                });
            }
            if best.as_ref().is_none_or(|(b, _)| total < *b) {
                best = Some((
                    total,
                    Plan {
                        n,
                        wi,
                        bmax,
                        cfgs,
                        tiles,
                    },
                ));
            }
        }
        best.map(|(_, p)| p).ok_or_else(|| {
            HeError::Shape(format!(
                "input rows of width {wi} (kernel {}x{}) do not fit N = {n}",
                c.kh, c.kw
            ))
        })
    }

    /// Fingerprint of the whole plan (every geometry and tile): both sides put theirs in the
    /// layer request, so a client and a server that would cut a layer differently (other
    /// versions or link settings) stop at the first layer instead of computing garbage.
    pub fn fingerprint(&self) -> u64 {
        let mut f = Fnv::new();
        for v in [
            self.n,
            self.wi,
            self.bmax,
            self.cfgs.len(),
            self.tiles.len(),
        ] {
            f.u64(v as u64);
        }
        for c in &self.cfgs {
            for v in [c.hi, c.hwi, c.d, c.cs, c.cw, c.mw, c.n_cb, c.n_mg, c.n_pack] {
                f.u64(v as u64);
            }
        }
        for t in &self.tiles {
            for v in [t.y0, t.rows, t.cfg] {
                f.u64(v as u64);
            }
        }
        f.finish()
    }

    /// Number of input ciphertexts the client sends.
    pub fn num_inputs(&self) -> usize {
        self.tiles.iter().map(|t| self.cfgs[t.cfg].n_cb).sum()
    }

    /// Number of output ciphertexts the server returns.
    pub fn num_outputs(&self) -> usize {
        self.tiles.iter().map(|t| self.cfgs[t.cfg].n_pack).sum()
    }

    /// What this plan costs under `cost`: ciphertexts, products (all-zero blocks of grouped
    /// layers skipped, as the server does), key switches, bytes each way and one-core compute at
    /// the planner's measured constants.
    pub fn cost(&self, c: &Canon, cost: &CostModel) -> PlanCost {
        let mut pc = PlanCost::default();
        // Connected (channel block, output group) pairs per geometry.
        let connected: Vec<usize> = self
            .cfgs
            .iter()
            .map(|cfg| {
                let mut n = 0;
                for mg in 0..cfg.n_mg {
                    for cb in 0..cfg.n_cb {
                        let any = (0..cfg.mw)
                            .map(|m| mg * cfg.mw + m)
                            .take_while(|&o| o < c.cout)
                            .any(|o| {
                                (0..cfg.cw)
                                    .map(|cl| cb * cfg.cw + cl)
                                    .take_while(|&ch| ch < c.cin)
                                    .any(|ch| c.connected(o, ch))
                            });
                        n += any as usize;
                    }
                }
                n
            })
            .collect();
        for t in &self.tiles {
            let cfg = &self.cfgs[t.cfg];
            pc.inputs += cfg.n_cb;
            pc.products += connected[t.cfg];
            pc.replies += cfg.n_pack;
            pc.key_switches += cfg.n_pack * (cfg.d - 1);
            pc.revealed += c.cout * t.rows * c.wout;
        }
        pc.kernel_transforms = connected.iter().sum();
        pc.bytes_up = (pc.inputs as f64 * cost.in_ct_bits / 8.0) as u64;
        pc.bytes_down = ((pc.replies as f64 * cost.c1_bits * self.n as f64
            + pc.revealed as f64 * cost.c0_bits)
            / 8.0) as u64;
        pc.compute_ns = pc.inputs as f64 * INPUT_NS
            + pc.products as f64 * PRODUCT_NS
            + pc.replies as f64 * FINISH_NS
            + pc.key_switches as f64 * KEY_SWITCH_NS;
        pc
    }

    /// Index of tile t's first input ciphertext.
    pub fn input_offset(&self, t: usize) -> usize {
        self.tiles[..t].iter().map(|x| self.cfgs[x.cfg].n_cb).sum()
    }
}

/// Best geometry for tiles of h output rows: (bytes-equivalent per tile, kernel cost, geometry).
fn best_cfg(c: &Canon, n: usize, cost: &CostModel, h: usize) -> Option<(f64, f64, TileCfg)> {
    let hi = h + c.kh - 1;
    let hwi = hi * c.win;
    let mut best: Option<(f64, f64, TileCfg)> = None;
    let mut d = 1;
    while d <= cost.max_d {
        if d * hwi > n {
            break;
        }
        let r = (n / d) / hwi;
        let max_cs = r.min(c.cin.div_ceil(d));
        let mut css: Vec<usize> = (1..=max_cs).collect();
        if css.len() > 256 {
            // Large ratios (FC, tiny images): a geometric spread is enough for a near optimum.
            let mut v: Vec<usize> = (0..=64)
                .map(|i| ((max_cs as f64).powf(i as f64 / 64.0)).round() as usize)
                .collect();
            v.push(max_cs);
            v.sort_unstable();
            v.dedup();
            css = v.into_iter().filter(|&x| x >= 1).collect();
        }
        for cs in css {
            let mw = (r / cs).min(c.cout).max(1);
            if cs * mw * hwi * d > n {
                continue;
            }
            let cw = cs * d;
            let n_cb = c.cin.div_ceil(cw);
            let n_mg = c.cout.div_ceil(mw);
            let n_pack = n_mg.div_ceil(d);
            let revealed = (c.cout * h * c.wout) as f64;
            let bits = n_cb as f64 * cost.in_ct_bits
                + n_pack as f64 * cost.c1_bits * n as f64
                + revealed * cost.c0_bits;
            let ns = n_cb as f64 * INPUT_NS
                + (n_cb * n_mg) as f64 * PRODUCT_NS
                + n_pack as f64 * FINISH_NS
                + (n_pack * (d - 1)) as f64 * KEY_SWITCH_NS;
            let bpn = cost.bytes_per_ns;
            let per_tile = bits / 8.0 + ns * bpn;
            let kernels = (n_cb * n_mg) as f64 * KERNEL_NS * bpn;
            let cfg = TileCfg {
                hi,
                hwi,
                d,
                cs,
                cw,
                mw,
                n_cb,
                n_mg,
                n_pack,
            };
            if best
                .as_ref()
                .is_none_or(|(b, k, _)| per_tile + kernels < b + k)
            {
                best = Some((per_tile, kernels, cfg));
            }
        }
        d *= 2;
    }
    best
}
