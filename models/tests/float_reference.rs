//! Float reference against hand-computed tiny networks.

use models::builder::ModelBuilder;
use models::float::{argmax, infer, infer_all};
use models::{Conv2d, Linear, ModelError, Pool, Stage};

#[allow(clippy::too_many_arguments)]
fn conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
) -> Conv2d {
    Conv2d {
        c_in,
        c_out,
        kernel: [k, k],
        stride: [stride, stride],
        padding: [pad, pad],
        groups,
        weight,
        bias,
    }
}

#[test]
fn pointwise_conv_subset_relu_gap_linear() {
    let mut b = ModelBuilder::new("tiny", [1, 2, 2]);
    let x = b.conv(
        0,
        conv(1, 2, 1, 1, 0, 1, vec![2.0, -1.0], vec![0.5, 0.0]),
        Stage::Stem,
    );
    let x = b.relu_channels(x, vec![0], Stage::Stem);
    let x = b.global_avg_pool(x, Stage::Head);
    let x = b.flatten(x, Stage::Head);
    let y = b.linear(
        x,
        Linear {
            in_features: 2,
            out_features: 1,
            weight: vec![1.0, 2.0],
            bias: vec![-1.0],
        },
        Stage::Head,
    );
    let m = b.finish(y).unwrap();
    let input = [1.0, -2.0, 3.0, -4.0];
    // ch0 = relu(2x + 0.5) = [2.5, 0, 6.5, 0]; ch1 = -x = [-1, 2, -3, 4] (no ReLU).
    let all = infer_all(&m, &input).unwrap();
    assert_eq!(all[1], vec![2.5, -3.5, 6.5, -7.5, -1.0, 2.0, -3.0, 4.0]);
    assert_eq!(all[2], vec![2.5, 0.0, 6.5, 0.0, -1.0, 2.0, -3.0, 4.0]);
    assert_eq!(all[3], vec![2.25, 0.5]);
    // 2.25·1 + 0.5·2 − 1 = 2.25
    assert_eq!(infer(&m, &input).unwrap(), vec![2.25]);
}

#[test]
fn padded_strided_conv_pool_add_slice_concat() {
    let mut b = ModelBuilder::new("tiny2", [1, 3, 3]);
    // 3×3 all-ones kernel, padding 1, stride 2 on 1..9: window sums 12, 16, 24, 28.
    let c = b.conv(
        0,
        conv(1, 1, 3, 2, 1, 1, vec![1.0; 9], vec![0.0]),
        Stage::Stem,
    );
    let p = b.avg_pool(c, Pool::new([2, 2], [2, 2]), Stage::Stage(1));
    let cat = b.concat(vec![c, c], Stage::Stage(1));
    // Grouped conv: channel 0 ×1, channel 1 ×10 (+1 bias).
    let g = b.conv(
        cat,
        conv(2, 2, 1, 1, 0, 2, vec![1.0, 10.0], vec![0.0, 1.0]),
        Stage::Stage(1),
    );
    let s = b.slice_channels(g, 1, 1, Stage::Stage(1));
    let a = b.add(s, c, Stage::Stage(1));
    let r = b.relu(a, Stage::Stage(1));
    let i = b.identity(r, Stage::Stage(1));
    let m0 = ModelBuilder::clone(&b).finish(p).unwrap();
    let m = b.finish(i).unwrap();
    let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let all = infer_all(&m, &input).unwrap();
    assert_eq!(all[c], vec![12.0, 16.0, 24.0, 28.0]);
    assert_eq!(infer(&m0, &input).unwrap(), vec![20.0]);
    // slice = 10·conv + 1; add conv → 11·conv + 1.
    assert_eq!(infer(&m, &input).unwrap(), vec![133.0, 177.0, 265.0, 309.0]);
    assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), Some(1));
}

#[test]
fn input_length_is_checked() {
    let m = models::zoo::random_resnet(1, [3, 8, 8], 4);
    match infer(&m, &[0.0; 5]) {
        Err(ModelError::BadInput(msg)) => assert!(msg.contains("192"), "{msg}"),
        other => panic!("expected BadInput, got {other:?}"),
    }
}

#[test]
fn shape_errors_name_the_node() {
    let mut b = ModelBuilder::new("bad", [3, 8, 8]);
    let x = b.conv(
        0,
        conv(4, 4, 3, 1, 1, 1, vec![0.0; 144], vec![0.0; 4]),
        Stage::Stem,
    );
    let err = b.finish(x).unwrap_err();
    assert!(
        matches!(&err, ModelError::ShapeMismatch { node, .. } if node == "stem.conv1"),
        "{err}"
    );

    let mut b = ModelBuilder::new("bad2", [3, 8, 8]);
    let x = b.conv(
        0,
        conv(3, 4, 3, 1, 1, 1, vec![0.0; 108], vec![0.0; 4]),
        Stage::Stem,
    );
    let y = b.conv(
        0,
        conv(3, 4, 3, 2, 1, 1, vec![0.0; 108], vec![0.0; 4]),
        Stage::Stem,
    );
    let s = b.add(x, y, Stage::Stage(1));
    let err = b.finish(s).unwrap_err();
    assert!(err.to_string().contains("stage1.add1"), "{err}");

    let mut b = ModelBuilder::new("bad3", [3, 8, 8]);
    let x = b.relu_channels(0, vec![0, 7], Stage::Stem);
    let err = b.finish(x).unwrap_err();
    assert!(
        err.to_string().contains("stem.relu1") && err.to_string().contains("out of range"),
        "{err}"
    );

    let mut b = ModelBuilder::new("bad4", [3, 8, 8]);
    let x = b.flatten(0, Stage::Head);
    let y = b.linear(
        x,
        Linear {
            in_features: 10,
            out_features: 2,
            weight: vec![0.0; 20],
            bias: vec![0.0; 2],
        },
        Stage::Head,
    );
    let err = b.finish(y).unwrap_err();
    assert!(err.to_string().contains("head.linear1"), "{err}");
}
