//! Reproduction of DeepReShape's #ReLU and #FLOPs columns (Tables 6, 13, 14, 16, 17, plus the
//! ReLU-only rows of Tables 3, 4, 9, 12) and the stagewise ReLU counts of Tables 10 and 11.

use optimizer::arch::Arch;
use optimizer::paper::{self, prints_as};

#[test]
fn relu_counts_print_as_the_paper_except_known_typos() {
    let mut mismatches = Vec::new();
    for c in paper::compare().unwrap() {
        let expected = c
            .row
            .known_deviation
            .is_none_or(|d| !d.starts_with("#ReLU") && !d.contains("stated m=80"));
        if c.relus_match != expected {
            mismatches.push(format!(
                "T{} {}: ours {} vs paper {}K",
                c.row.table, c.row.network, c.relus, c.row.relus_k
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn macs_within_one_percent_except_relu_reuse() {
    let mut bad = Vec::new();
    for c in paper::compare().unwrap() {
        let Some(diff) = c.flops_diff_percent else {
            continue;
        };
        let tolerance = if c.row.reuse.is_some() { 2.0 } else { 1.0 };
        let deviates = c
            .row
            .known_deviation
            .is_some_and(|d| d.contains("stated m=80"));
        if deviates {
            assert!(
                diff.abs() > 1.0,
                "{}: expected the known deviation",
                c.row.network
            );
        } else if diff.abs() > tolerance {
            bad.push(format!(
                "T{} {}: ours {} MACs, {diff:+.2}%",
                c.row.table, c.row.network, c.macs
            ));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn exact_counts_of_key_rows() {
    let by_name = |t: &str, n: &str| {
        paper::compare()
            .unwrap()
            .into_iter()
            .find(|c| c.row.table.starts_with(t) && c.row.network == n)
            .unwrap()
    };
    // The default server model: HRN-2x5x3x, m=8, S1 culled, S2..S4 thinned.
    let d = by_name("6 ", "HRN-2x5x3x m=8");
    assert_eq!((d.relus, d.macs), (26_112, 44_535_232));
    assert_eq!(by_name("6 ", "HRN-5x5x3x m=16").relus, 163_328);
    assert_eq!(by_name("6 ", "HRN-2x5x3x m=16 Re2=16").relus, 3_264);
    assert_eq!(by_name("14 (C", "HRN-2x6x3x m=16 Re2=8").relus, 16_768);
    assert_eq!(by_name("16 ", "ResNet18").relus, 557_056);
    assert_eq!(by_name("16 ", "WRN22x8").relus, 1_392_640);
    assert_eq!(by_name("9 ", "ResNet18 Re2=4 alternate").relus, 372_736);
}

#[test]
fn convnext_n_row_is_t_widths_with_n_depth() {
    let a = Arch::resnet(
        "N?",
        [3, 64, 64],
        200,
        96,
        &[96, 192, 384, 768],
        &[2, 2, 8, 2],
    )
    .unwrap();
    let a = optimizer::steps::thin(&optimizer::steps::cull(&a, &[0]).unwrap(), &[1, 2, 3]).unwrap();
    let c = a.count().unwrap();
    assert!(prints_as(c.relus(), 1e3, "1278"));
    assert!((c.macs() as f64 / 1e6 - 9080.2).abs() / 9080.2 < 0.01);
}

#[test]
fn stagewise_relus_of_tables_10_and_11() {
    for (name, m, f, expected) in paper::stagewise_rows() {
        let a = Arch::hrn(m, &f, &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        let got = a.count().unwrap().paper_stage_relus();
        for (s, (&g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                prints_as(g, 1e3, e),
                "{name} S{}: ours {g}, paper {e}K",
                s + 1
            );
        }
    }
}
