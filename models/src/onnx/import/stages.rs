//! Stage assignment of imported nodes (see the `onnx` module docs, "Stages").

use crate::graph::{Node, NodeId, Op, Shape, Stage};

/// Stages for every node: the explicit stage where known, otherwise the structural rule (module docs).
pub(super) fn assign_stages(
    nodes: &[Node],
    shapes: &[Shape],
    explicit: &[Option<Stage>],
) -> Vec<Stage> {
    let n = nodes.len();
    let head_start = nodes
        .iter()
        .position(|nd| matches!(nd.op, Op::GlobalAvgPool | Op::Flatten | Op::Linear(_)))
        .unwrap_or(n);
    // Stem: up to the point where the first residual block branches off.
    let stem_end = match nodes[..head_start].iter().position(|nd| nd.op == Op::Add) {
        Some(add) => {
            let anc = |start: NodeId| -> Vec<bool> {
                let mut seen = vec![false; n];
                let mut stack = vec![start];
                while let Some(v) = stack.pop() {
                    if !seen[v] {
                        seen[v] = true;
                        stack.extend(&nodes[v].inputs);
                    }
                }
                seen
            };
            let (a, b) = (anc(nodes[add].inputs[0]), anc(nodes[add].inputs[1]));
            (0..n).rev().find(|&i| a[i] && b[i]).unwrap_or(0)
        }
        None => {
            let convs: Vec<usize> = (0..head_start)
                .filter(|&i| matches!(nodes[i].op, Op::Conv2d(_)))
                .collect();
            match convs.get(1) {
                Some(&second) => second - 1,
                None => head_start.saturating_sub(1),
            }
        }
    };
    let mut resolutions: Vec<(usize, usize)> = Vec::new();
    let mut out = Vec::with_capacity(n);
    let mut last = Stage::Stem;
    for i in 0..n {
        let structural = if i >= head_start {
            Stage::Head
        } else if i <= stem_end {
            Stage::Stem
        } else {
            match shapes[i] {
                Shape::Chw { h, w, .. } => {
                    let k = match resolutions.iter().position(|&r| r == (h, w)) {
                        Some(k) => k,
                        None => {
                            resolutions.push((h, w));
                            resolutions.len() - 1
                        }
                    };
                    Stage::Stage(k + 1)
                }
                Shape::Flat(_) => last,
            }
        };
        let s = explicit[i].unwrap_or(structural);
        last = s;
        out.push(s);
    }
    out
}
