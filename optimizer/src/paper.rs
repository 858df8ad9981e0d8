//! DeepReShape's published #ReLU / #FLOPs numbers and the networks they belong to, so that the
//! reproduction can be re-run (`pi-opt paper`) and tested.
//!
//! FLOPs in the paper are multiply-accumulates; ours count conv `c_out·h·w·c_in·k²` + linear `in·out`.
//! The paper's FLOPs are consistently 0.1–1% above ours (its counter adds something small, e.g.
//! BatchNorm), and its ReLU columns round or truncate inconsistently (13.056K → "13.1K" but 3.264K →
//! "3.2K"), so a ReLU entry matches when rounding *or* truncating our exact count gives the printed
//! digits.

use serde::Serialize;

use crate::arch::Arch;
use crate::error::OptError;
use crate::steps;

/// Which network a row describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Net {
    /// Base width m and channel multiplication factors (HRN-αxβxγx, ResNet: 2x2x2x).
    Hrn {
        /// Base channel count.
        m: usize,
        /// α, β, γ, ...
        factors: &'static [usize],
    },
    /// Explicit stem and stage widths (WRN-22x8, the ResNet-adapted ConvNeXt-V2s).
    Widths {
        /// Stem width.
        stem: usize,
        /// Stage widths.
        widths: &'static [usize],
    },
}

/// One table row with ReLU-optimization steps.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Row {
    /// Table number and data set, e.g. `6 (CIFAR-100)`.
    pub table: &'static str,
    /// The network as the paper names it.
    pub network: &'static str,
    /// Its architecture.
    pub net: Net,
    /// Stage compute ratios.
    pub blocks: &'static [usize],
    /// Input height = width (32: CIFAR-100; 64: TinyImageNet).
    pub input: usize,
    /// Number of classes.
    pub classes: usize,
    /// Culled stages (1-based).
    pub cull: &'static [usize],
    /// Thinned stages (1-based).
    pub thin: &'static [usize],
    /// ReLU-reuse factor.
    pub reuse: Option<usize>,
    /// The #ReLU entry as printed, in thousands.
    pub relus_k: &'static str,
    /// The #FLOPs entry as printed, in millions (None where the table has none).
    pub flops_m: Option<f64>,
    /// Why this row is known not to match (None: it matches).
    pub known_deviation: Option<&'static str>,
}

const R18: &[usize] = &[2, 2, 2, 2];
const R34: &[usize] = &[3, 4, 6, 3];
const ALL: &[usize] = &[1, 2, 3, 4];
const S1: &[usize] = &[1];
const S234: &[usize] = &[2, 3, 4];
const NONE: &[usize] = &[];

const fn hrn(m: usize, factors: &'static [usize]) -> Net {
    Net::Hrn { m, factors }
}

#[allow(clippy::too_many_arguments)]
const fn row(
    table: &'static str,
    network: &'static str,
    net: Net,
    blocks: &'static [usize],
    input: usize,
    cull: &'static [usize],
    thin: &'static [usize],
    reuse: Option<usize>,
    relus_k: &'static str,
    flops_m: Option<f64>,
) -> Row {
    Row {
        table,
        network,
        net,
        blocks,
        input,
        classes: if input == 64 { 200 } else { 100 },
        cull,
        thin,
        reuse,
        relus_k,
        flops_m,
        known_deviation: None,
    }
}

const fn dev(r: Row, why: &'static str) -> Row {
    Row {
        known_deviation: Some(why),
        ..r
    }
}

/// Reason attached to every ReLU-reuse row's FLOPs.
pub const REUSE_FLOPS_NOTE: &str = "ReLU-reuse FLOPs: the paper does not specify the group convolutions; our \
three-group construction (C/4 identity, 3×3 convs on the other two groups, 1×1 C→C mixing) comes out \
0.6–1.6% below the printed values";

/// Every row of Tables 6, 13, 14, 16 and 17 (and the extra ReLU-only rows of Tables 3, 4, 9, 12).
pub fn rows() -> Vec<Row> {
    const T6: &str = "6 (CIFAR-100)";
    const T13: &str = "13 (TinyImageNet)";
    const T14C: &str = "14 (CIFAR-100)";
    const T14T: &str = "14 (TinyImageNet)";
    const T16: &str = "16 (CIFAR-100)";
    const T17: &str = "17 (CIFAR-100)";
    let w = |stem, widths| Net::Widths { stem, widths };
    vec![
        row(T6, "HRN-5x5x3x m=16", hrn(16, &[5, 5, 3]), R18, 32, NONE, ALL, None, "163.3", Some(1055.4)),
        row(T6, "HRN-2x5x3x m=32", hrn(32, &[2, 5, 3]), R18, 32, S1, S234, None, "104.4", Some(714.1)),
        row(T6, "HRN-2x5x3x m=16", hrn(16, &[2, 5, 3]), R18, 32, S1, S234, None, "52.2", Some(178.5)),
        row(T6, "HRN-2x5x3x m=8", hrn(8, &[2, 5, 3]), R18, 32, S1, S234, None, "26.1", Some(44.6)),
        row(T6, "HRN-2x5x3x m=16 Re2=4", hrn(16, &[2, 5, 3]), R18, 32, S1, S234, Some(4), "13.1", Some(121.6)),
        row(T6, "HRN-2x5x3x m=16 Re2=8", hrn(16, &[2, 5, 3]), R18, 32, S1, S234, Some(8), "6.5", Some(130.5)),
        row(T6, "HRN-2x5x3x m=16 Re2=16", hrn(16, &[2, 5, 3]), R18, 32, S1, S234, Some(16), "3.2", Some(137.2)),
        row(T13, "HRN-5x5x3x m=16", hrn(16, &[5, 5, 3]), R18, 64, NONE, ALL, None, "653.3", Some(4216.4)),
        row(T13, "HRN-2x5x3x m=32", hrn(32, &[2, 5, 3]), R18, 64, S1, S234, None, "417.8", Some(2841.7)),
        row(T13, "HRN-5x5x3x m=8", hrn(8, &[5, 5, 3]), R18, 64, NONE, ALL, None, "326.6", Some(1055.4)),
        row(T13, "HRN-2x5x3x m=8", hrn(8, &[2, 5, 3]), R18, 64, S1, S234, None, "104.4", Some(178.9)),
        row(T13, "HRN-2x5x3x m=16 Re2=4", hrn(16, &[2, 5, 3]), R18, 64, S1, S234, Some(4), "52.2", Some(486.3)),
        row(T14C, "HRN-4x6x3x m=16", hrn(16, &[4, 6, 3]), R34, 32, NONE, ALL, None, "317.4", Some(2061.1)),
        row(T14C, "HRN-2x6x3x m=16", hrn(16, &[2, 6, 3]), R34, 32, S1, S234, None, "134.1", Some(527.4)),
        row(T14C, "HRN-2x6x3x m=8", hrn(8, &[2, 6, 3]), R34, 32, S1, S234, None, "67.1", Some(132.2)),
        row(T14C, "HRN-2x6x3x m=16 Re2=4", hrn(16, &[2, 6, 3]), R34, 32, S1, S234, Some(4), "33.5", Some(370.1)),
        dev(
            row(T14C, "HRN-2x6x3x m=16 Re2=8", hrn(16, &[2, 6, 3]), R34, 32, S1, S234, Some(8), "16.6", Some(394.8)),
            "#ReLU: exactly 1/8 of the 134.1K row is 16.77K; the TinyImageNet row (67.1K = 4 × 16.77K) \
             confirms it; the printed 16.6K looks like a typo",
        ),
        row(T14C, "HRN-2x6x3x m=16 Re2=16", hrn(16, &[2, 6, 3]), R34, 32, S1, S234, Some(16), "8.3", Some(413.4)),
        row(T14T, "HRN-4x6x3x m=16", hrn(16, &[4, 6, 3]), R34, 64, NONE, ALL, None, "1269.8", Some(8244.2)),
        row(T14T, "HRN-4x6x3x m=12", hrn(12, &[4, 6, 3]), R34, 64, NONE, ALL, None, "952", Some(4638.8)),
        row(T14T, "HRN-2x6x3x m=16", hrn(16, &[2, 6, 3]), R34, 64, S1, S234, None, "536.6", Some(2109.4)),
        row(T14T, "HRN-2x6x3x m=12", hrn(12, &[2, 6, 3]), R34, 64, S1, S234, None, "402", Some(1187.5)),
        row(T14T, "HRN-2x6x3x m=8", hrn(8, &[2, 6, 3]), R34, 64, S1, S234, None, "268.3", Some(528.6)),
        row(T14T, "HRN-2x6x3x m=16 Re2=4", hrn(16, &[2, 6, 3]), R34, 64, S1, S234, Some(4), "134.1", Some(1480.1)),
        row(T14T, "HRN-2x6x3x m=16 Re2=8", hrn(16, &[2, 6, 3]), R34, 64, S1, S234, Some(8), "67.1", Some(1579.2)),
        row(T14T, "HRN-2x6x3x m=16 Re2=16", hrn(16, &[2, 6, 3]), R34, 64, S1, S234, Some(16), "33.5", Some(1653.5)),
        row(T14T, "ConvNeXt-T m=96", w(96, &[96, 192, 384, 768]), &[3, 3, 9, 3], 64, S1, S234, None, "1622", Some(11801.0)),
        dev(
            row(T14T, "ConvNeXt-N m=80", w(80, &[80, 160, 320, 640]), &[2, 2, 8, 2], 64, S1, S234, None, "1278", Some(9080.2)),
            "the printed row (1278K, 9080.2M) is ConvNeXt-N's depth [2,2,8,2] with ConvNeXt-T's widths \
             [96,192,384,768] (1277.95K ReLUs, 9070.5M MACs); with the stated m=80 widths it would be \
             1064.96K / 6300.4M",
        ),
        row(T14T, "ConvNeXt-P m=64", w(64, &[64, 128, 256, 512]), &[2, 2, 6, 2], 64, S1, S234, None, "720.9", Some(3435.7)),
        row(T14T, "ConvNeXt-F m=48", w(48, &[48, 96, 192, 384]), &[2, 2, 6, 2], 64, S1, S234, None, "540.7", Some(1935.0)),
        row(T14T, "ConvNeXt-A m=40", w(40, &[40, 80, 160, 320]), &[2, 2, 6, 2], 64, S1, S234, None, "450.6", Some(1345.1)),
        row(T16, "WRN22x8", w(16, &[128, 256, 512]), &[3, 3, 3], 32, NONE, NONE, None, "1393", Some(2461.0)),
        row(T16, "ResNet18", hrn(64, &[2, 2, 2]), R18, 32, NONE, NONE, None, "557", Some(559.0)),
        row(T16, "HRN-5x5x3x", hrn(16, &[5, 5, 3]), R18, 32, NONE, NONE, None, "343", Some(1055.0)),
        row(T16, "HRN-5x7x2x", hrn(16, &[5, 7, 2]), R18, 32, NONE, NONE, None, "379", Some(1273.0)),
        row(T16, "HRN-6x6x2x", hrn(16, &[6, 6, 2]), R18, 32, NONE, NONE, None, "401", Some(1368.0)),
        row(T16, "HRN-7x5x2x", hrn(16, &[7, 5, 2]), R18, 32, NONE, NONE, None, "412", Some(1328.0)),
        row(T17, "HRN-2x5x3x", hrn(16, &[2, 5, 3]), R18, 32, NONE, NONE, None, "186", Some(179.0)),
        row(T17, "HRN-2x7x2x", hrn(16, &[2, 7, 2]), R18, 32, NONE, NONE, None, "201", Some(213.0)),
        row(T17, "HRN-2x6x2x", hrn(16, &[2, 6, 2]), R18, 32, NONE, NONE, None, "188", Some(163.0)),
        row(T17, "HRN-2x5x2x", hrn(16, &[2, 5, 2]), R18, 32, NONE, NONE, None, "176", Some(119.0)),
        // ReLU-only extras.
        row("3 (CIFAR-100)", "ResNet32", w(16, &[16, 32, 64]), &[5, 5, 5], 32, NONE, NONE, None, "303", None),
        row("4 (CIFAR-100)", "2x2x2x m=32", hrn(32, &[2, 2, 2]), R18, 32, NONE, NONE, None, "279", None),
        row("4 (CIFAR-100)", "4x4x4x m=16", hrn(16, &[4, 4, 4]), R18, 32, NONE, NONE, None, "279", None),
        row("4 (CIFAR-100)", "3x7x2x m=16", hrn(16, &[3, 7, 2]), R18, 32, NONE, NONE, None, "260", None),
        row("9 (CIFAR-100)", "ResNet18 Re2=2 alternate", hrn(64, &[2, 2, 2]), R18, 32, NONE, NONE, Some(2), "434.18", None),
        row("9 (CIFAR-100)", "ResNet18 Re2=4 alternate", hrn(64, &[2, 2, 2]), R18, 32, NONE, NONE, Some(4), "372.74", None),
        row("9 (CIFAR-100)", "ResNet18 Re2=8 alternate", hrn(64, &[2, 2, 2]), R18, 32, NONE, NONE, Some(8), "342.02", None),
        row("9 (CIFAR-100)", "ResNet18 Re2=16 alternate", hrn(64, &[2, 2, 2]), R18, 32, NONE, NONE, Some(16), "326.66", None),
        row("12 (CIFAR-100)", "ResNet34", hrn(64, &[2, 2, 2]), R34, 32, NONE, NONE, None, "966.7", None),
    ]
}

/// Stagewise ReLU counts of Tables 10 and 11 (CIFAR-100, m = 16 unless named): network, m,
/// factors, Stage 1 (with stem) … Stage 4 in thousands as printed.
pub fn stagewise_rows() -> Vec<(&'static str, usize, [usize; 3], [&'static str; 4])> {
    vec![
        (
            "R18(m=16)-2x2x2x",
            16,
            [2, 2, 2],
            ["81.92", "32.77", "16.38", "8.19"],
        ),
        (
            "R18(m=32)-2x2x2x",
            32,
            [2, 2, 2],
            ["163.84", "65.54", "32.77", "16.38"],
        ),
        (
            "R18(m=64)-2x2x2x",
            64,
            [2, 2, 2],
            ["327.68", "131.07", "65.54", "32.77"],
        ),
        (
            "R18(m=128)-2x2x2x",
            128,
            [2, 2, 2],
            ["655.36", "262.14", "131.07", "65.54"],
        ),
        (
            "R18(m=256)-2x2x2x",
            256,
            [2, 2, 2],
            ["1310.72", "524.29", "262.14", "131.07"],
        ),
        (
            "R18(m=16)-3x3x3x",
            16,
            [3, 3, 3],
            ["81.92", "49.15", "36.86", "27.65"],
        ),
        (
            "R18(m=16)-4x4x4x",
            16,
            [4, 4, 4],
            ["81.92", "65.54", "65.54", "65.54"],
        ),
        (
            "R18(m=16)-5x5x5x",
            16,
            [5, 5, 5],
            ["81.92", "81.92", "102.40", "128.00"],
        ),
        (
            "R18(m=16)-6x6x6x",
            16,
            [6, 6, 6],
            ["81.92", "98.30", "147.46", "221.18"],
        ),
        (
            "R18(m=16)-7x7x7x",
            16,
            [7, 7, 7],
            ["81.92", "114.69", "200.70", "351.23"],
        ),
        (
            "HRN-2x7x2x",
            16,
            [2, 7, 2],
            ["81.92", "32.77", "57.34", "28.67"],
        ),
        (
            "HRN-3x7x2x",
            16,
            [3, 7, 2],
            ["81.92", "49.15", "86.02", "43.01"],
        ),
        (
            "HRN-4x7x2x",
            16,
            [4, 7, 2],
            ["81.92", "65.54", "114.69", "57.34"],
        ),
        (
            "HRN-5x7x2x",
            16,
            [5, 7, 2],
            ["81.92", "81.92", "143.36", "71.68"],
        ),
        (
            "HRN-6x7x2x",
            16,
            [6, 7, 2],
            ["81.92", "98.30", "172.03", "86.02"],
        ),
        (
            "HRN-7x7x2x",
            16,
            [7, 7, 2],
            ["81.92", "114.69", "200.70", "100.35"],
        ),
        (
            "HRN-2x6x2x",
            16,
            [2, 6, 2],
            ["81.92", "32.77", "49.15", "24.58"],
        ),
        (
            "HRN-3x6x2x",
            16,
            [3, 6, 2],
            ["81.92", "49.15", "73.73", "36.86"],
        ),
        (
            "HRN-4x6x2x",
            16,
            [4, 6, 2],
            ["81.92", "65.54", "98.30", "49.15"],
        ),
        (
            "HRN-5x6x2x",
            16,
            [5, 6, 2],
            ["81.92", "81.92", "122.88", "61.44"],
        ),
        (
            "HRN-6x6x2x",
            16,
            [6, 6, 2],
            ["81.92", "98.30", "147.46", "73.73"],
        ),
        (
            "HRN-7x6x2x",
            16,
            [7, 6, 2],
            ["81.92", "114.69", "172.03", "86.02"],
        ),
        (
            "HRN-2x5x2x",
            16,
            [2, 5, 2],
            ["81.92", "32.77", "40.96", "20.48"],
        ),
        (
            "HRN-3x5x2x",
            16,
            [3, 5, 2],
            ["81.92", "49.15", "61.44", "30.72"],
        ),
        (
            "HRN-4x5x2x",
            16,
            [4, 5, 2],
            ["81.92", "65.54", "81.92", "40.96"],
        ),
        (
            "HRN-5x5x2x",
            16,
            [5, 5, 2],
            ["81.92", "81.92", "102.40", "51.20"],
        ),
        (
            "HRN-6x5x2x",
            16,
            [6, 5, 2],
            ["81.92", "98.30", "122.88", "61.44"],
        ),
        (
            "HRN-7x5x2x",
            16,
            [7, 5, 2],
            ["81.92", "114.69", "143.36", "71.68"],
        ),
        (
            "HRN-2x5x3x",
            16,
            [2, 5, 3],
            ["81.92", "32.77", "40.96", "30.72"],
        ),
        (
            "HRN-3x5x3x",
            16,
            [3, 5, 3],
            ["81.92", "49.15", "61.44", "46.08"],
        ),
        (
            "HRN-4x5x3x",
            16,
            [4, 5, 3],
            ["81.92", "65.54", "81.92", "61.44"],
        ),
        (
            "HRN-5x5x3x",
            16,
            [5, 5, 3],
            ["81.92", "81.92", "102.40", "76.80"],
        ),
        (
            "HRN-6x5x3x",
            16,
            [6, 5, 3],
            ["81.92", "98.30", "122.88", "92.16"],
        ),
        (
            "HRN-7x5x3x",
            16,
            [7, 5, 3],
            ["81.92", "114.69", "143.36", "107.52"],
        ),
        (
            "HRN-2x9x2x",
            16,
            [2, 9, 2],
            ["81.92", "32.77", "73.73", "36.86"],
        ),
        (
            "HRN-2x6x3x",
            16,
            [2, 6, 3],
            ["81.92", "32.77", "49.15", "36.86"],
        ),
    ]
}

impl Row {
    /// The architecture with the row's steps applied (culled, thinned, reuse on remaining stages).
    pub fn arch(&self) -> Result<Arch, OptError> {
        let input = [3, self.input, self.input];
        let mut a = match self.net {
            Net::Hrn { m, factors } => Arch::hrn(m, factors, self.blocks, input, self.classes)?,
            Net::Widths { stem, widths } => {
                Arch::resnet(self.network, input, self.classes, stem, widths, self.blocks)?
            }
        };
        let idx = |v: &[usize]| v.iter().map(|s| s - 1).collect::<Vec<_>>();
        a = steps::cull(&a, &idx(self.cull))?;
        a = steps::thin(&a, &idx(self.thin))?;
        if let Some(n) = self.reuse {
            let st = steps::stages_with_relus(&a);
            a = steps::reuse(&a, &st, n)?;
        }
        Ok(a)
    }
}

/// Whether the exact count `value` prints as `printed` (in units of `unit`), by rounding or truncation.
pub fn prints_as(value: u64, unit: f64, printed: &str) -> bool {
    let decimals = printed.split('.').nth(1).map_or(0, str::len) as i32;
    let Ok(p) = printed.parse::<f64>() else {
        return false;
    };
    let scaled = value as f64 / unit * 10f64.powi(decimals);
    let target = p * 10f64.powi(decimals);
    (scaled.round() - target).abs() < 1e-6 || (scaled.floor() - target).abs() < 1e-6
}

/// Our numbers for one row, compared with the paper's.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The row.
    pub row: Row,
    /// Our exact ReLU count.
    pub relus: u64,
    /// Our MAC count.
    pub macs: u64,
    /// Whether our ReLUs print as the paper's entry.
    pub relus_match: bool,
    /// (ours − paper) / paper for FLOPs, in percent.
    pub flops_diff_percent: Option<f64>,
}

/// Computes every [`rows`] entry.
pub fn compare() -> Result<Vec<Comparison>, OptError> {
    rows()
        .into_iter()
        .map(|row| {
            let c = row.arch()?.count()?;
            Ok(Comparison {
                relus: c.relus(),
                macs: c.macs(),
                relus_match: prints_as(c.relus(), 1e3, row.relus_k),
                flops_diff_percent: row.flops_m.map(|f| (c.macs() as f64 / 1e6 - f) / f * 100.0),
                row,
            })
        })
        .collect()
}
