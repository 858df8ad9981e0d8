//! Pooling: `AveragePool` and `MaxPool` (any window, stride, padding, ceil mode),
//! `GlobalAveragePool`, and `ReduceMean` over the spatial axes (global average pooling).

use super::super::proto::NodeProto;
use super::attrs::Attrs;
use super::core::{norm_axis, unsupported_op, Importer};
use crate::graph::{MaxPool, Op, Pool, Stage};
use crate::ModelError;

impl Importer {
    /// The window attributes shared by `AveragePool` and `MaxPool`.
    fn window(&self, a: &Attrs, x: usize) -> Result<Pool, ModelError> {
        let kernel = a.pair("kernel_shape", [0, 0])?;
        if kernel == [0, 0] {
            return Err(a.unsupported("kernel_shape", "missing"));
        }
        let stride = a.pair("strides", [1, 1])?;
        if a.ints("dilations")
            .is_some_and(|p| p.iter().any(|&v| v != 1))
        {
            return Err(a.unsupported("dilations", "dilated pooling is not supported"));
        }
        let (_, h, w) = self.shapes[x].dims();
        let pads = a.auto_pads((h, w), kernel, stride)?;
        let pool = Pool {
            kernel,
            stride,
            pads,
            ceil_mode: a.int("ceil_mode", 0)? != 0,
            count_include_pad: a.int("count_include_pad", 0)? != 0,
        };
        if pool.output_size(h, w).is_none() {
            return Err(a.unsupported(
                "pads",
                format!(
                    "window {kernel:?}, stride {stride:?}, pads {pads:?} do not fit a {h}x{w} input"
                ),
            ));
        }
        Ok(pool)
    }

    /// `AveragePool` → [`Op::AvgPool`].
    pub(super) fn avg_pool(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[
            "auto_pad",
            "ceil_mode",
            "count_include_pad",
            "kernel_shape",
            "pads",
            "strides",
            "dilations",
        ])?;
        let x = self.node_in(n, 0, node)?;
        let pool = self.window(a, x)?;
        self.emit(n, node, Op::AvgPool(pool), vec![x], stage)
            .map(drop)
    }

    /// `MaxPool` → [`Op::MaxPool`] (the rewrites fuse an adjacent ReLU into it).
    pub(super) fn max_pool(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[
            "auto_pad",
            "ceil_mode",
            "kernel_shape",
            "pads",
            "strides",
            "dilations",
            "storage_order",
        ])?;
        let x = self.node_in(n, 0, node)?;
        let mut pool = self.window(a, x)?;
        pool.count_include_pad = false;
        let op = Op::MaxPool(MaxPool {
            pool,
            relu: false,
            cap: None,
        });
        self.emit(n, node, op, vec![x], stage).map(drop)
    }

    /// `GlobalAveragePool` → [`Op::GlobalAvgPool`].
    pub(super) fn global_avg_pool(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&[])?;
        let x = self.node_in(n, 0, node)?;
        self.emit(n, node, Op::GlobalAvgPool, vec![x], stage)
            .map(drop)
    }

    /// `ReduceMean` over both spatial axes → global average pooling (flattened when `keepdims = 0`).
    pub(super) fn reduce_mean(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
        stage: Option<Stage>,
    ) -> Result<(), ModelError> {
        a.only(&["axes", "keepdims", "noop_with_empty_axes"])?;
        let x = self.node_in(n, 0, node)?;
        let axes = match a.ints("axes") {
            Some(v) => v,
            None => self.i64_in(n, 1, node)?.unwrap_or_default(),
        };
        let rank = super::core::onnx_dims(&self.shapes[x]).len();
        let mut norm: Vec<usize> = axes.iter().filter_map(|&ax| norm_axis(ax, rank)).collect();
        norm.sort_unstable();
        if rank != 4 || norm != [2, 3] || norm.len() != axes.len() {
            return Err(unsupported_op(
                "ReduceMean",
                format!(
                    "ReduceMean over axes {axes:?} (only the spatial axes [2, 3] are supported)"
                ),
                node,
            ));
        }
        if a.int("keepdims", 1)? != 0 {
            self.emit(n, node, Op::GlobalAvgPool, vec![x], stage)
                .map(drop)
        } else {
            let g = self.push(&format!("{node}::gap"), Op::GlobalAvgPool, vec![x], stage)?;
            self.emit(n, node, Op::Flatten, vec![g], stage).map(drop)
        }
    }
}
