//! ONNX import and export.
//!
//! **Import** (default-domain opsets 11–21; PyTorch's TorchScript exporter at opsets 11–17 and the
//! dynamo exporter at 18 are the targets; external tensor data (`.onnx.data`) is read next to the
//! file by [`load`] / [`load_with`]; several graph outputs: the first is served, or the one named):
//! * `Conv` (2-D, groups, any padding: symmetric padding stays on the conv, other padding becomes a
//!   `Pad` node; dilated kernels are expanded with zero taps, so their MACs count the zeros),
//!   `Gemm` (transA = 0, transB either), `MatMul` with a constant right operand;
//! * `BatchNormalization` (inference): folded into the producing Conv/Gemm/MatMul when that is its
//!   only consumer, otherwise an affine node (below);
//! * `Relu`, `Clip(0, c)` (ReLU6 for c = 6), `Identity` (→ a removed ReLU), `Dropout` (inference);
//! * `MaxPool` and `AveragePool` (any kernel, stride, padding, `auto_pad`, `ceil_mode`,
//!   `count_include_pad`), `GlobalAveragePool`, `ReduceMean` over the spatial axes;
//! * `Add` of two computed tensors (residual); `Add`/`Sub`/`Mul`/`Div` of a computed tensor and a
//!   constant (scalar, per channel or per element) → an affine node;
//! * `Concat` / `Split` on channels, `Slice` (channels; strided on H and W), `Pad` (zero, C/H/W),
//!   `Flatten`, `Reshape` (flattening; the channel shuffle `[1, g, c/g, h, w]` → `Transpose(0, 2,
//!   1, 3, 4)` → back, which becomes a channel permutation), `Squeeze` of `[1, c, 1, 1]`, `Gather` of
//!   channels;
//! * constant folding of the shape arithmetic exporters emit (`Shape`, `Gather`, `Unsqueeze`,
//!   `Squeeze`, `Cast`, `Concat`, `Slice` (any step), `Transpose`, `ConstantOfShape`, `Range`,
//!   `Equal`, arithmetic on constants);
//! * dynamo's `AdaptiveAvgPool2d` decomposition (`Transpose` → `GatherND` → `Where` masks →
//!   `Gather`/`Add`/`Div` or `ReduceMean`) is traced element by element into one `GatherMean` node
//!   when every output is a plain average (the coefficients 1/d are architecture).
//!
//! After import, graph rewrites (`import/rewrite.rs`): dead nodes are dropped; the exported forms
//! of subset ReLUs are fused back (channel subsets as below; element masks from
//! `Add(Mul(Relu(x), m), Mul(x, 1 − m))` with a constant 0/1 mask m — what SNL/SENet-style PyTorch
//! code exports and what our export writes — or `Where(m, Relu(x), x)`); a ReLU (plain or capped)
//! directly before or after a MaxPool is fused into it; affine nodes are folded into the single-use
//! Conv/Gemm that produces them, else their scale into the Conv/Gemm layers consuming them (their
//! shift stays as an addition the server alone makes), else a per-channel scale becomes a depthwise
//! 1×1 conv. Anything else is a [`ModelError::UnsupportedOp`] / [`ModelError::UnsupportedAttribute`]
//! naming op, attribute and node, with what to change in the PyTorch model ([`advice`]);
//! [`check_file`] lists every such node at once. Shapes are checked as nodes are added; an ONNX node
//! without a name gets `<OpType>_<index>`.
//!
//! **Stages** on import, per node, first rule that applies:
//! 1. the node's `doc_string` is `pi.stage=<stem|stage<N>|head>` (written by our export);
//! 2. the node name has a stage token, tokens being split at non-alphanumeric characters:
//!    `stem`; `stage<N>` or `layer<N>` (torchvision) → stage N; `head`, `fc`, `classifier` → head;
//! 3. structure: the first `GlobalAveragePool`/`Flatten`/linear node and everything after it is the
//!    head; the stem is every node up to the point where the first residual `Add` branches off
//!    (the last common ancestor of its two inputs; without any `Add`, the nodes before the second
//!    conv); any other node is in stage k when its output has the k-th distinct spatial resolution
//!    met in node order after the stem.
//!
//! **Export** writes IR 7 / opset 13: input `input` `[1, c, h, w]`, output `logits`; node names are
//! the graph's node names (tensor names too) and each node's `doc_string` carries its stage, so a
//! round trip keeps names and stages; builder/zoo names also start with the stage
//! (`stage2.block1.conv1`). Conv → `Conv` (+ `<name>::weight`, `<name>::bias` initializers as
//! raw_data), Linear → `Gemm` (transB = 1), AvgPool → `AveragePool`, SliceChannels → `Slice`,
//! channel-subset ReLU `<n>` → `Split` `<n>::split` into runs of selected/unselected channels
//! (`<n>::part<i>`) → `Relu` (or `Clip` when capped) `<n>::relu<i>` / `Identity` `<n>::id<i>` →
//! `Concat` `<n>`; the importer fuses exactly that pattern back into one `Relu { channels }` node.
//! An element-subset ReLU `<n>` is written as `Relu` `<n>::relu` → `Mul` `<n>::kept` (by the 0/1
//! initializer `<n>::mask`, `[1, c, h, w]`) plus `Mul` `<n>::linear` (x by `<n>::unmask` = 1 − mask)
//! → `Add` `<n>`: onnxruntime runs it, and this is the documented convention for per-element ReLU
//! masks (any tool writing it gets its masks served). MaxPool with a fused ReLU → `Relu`/`Clip` +
//! `MaxPool`; AvgPool/MaxPool keep pads and ceil mode; Affine → `Mul`/`Add` with initializers;
//! Pad → `Pad`; strided Slice → `Slice` with steps; PermuteChannels → `Gather` on axis 1.

mod export;
mod import;
pub mod proto;

use std::path::Path;

pub use export::to_bytes;
pub use import::{advice, check_bytes, from_bytes, from_bytes_with, ImportOptions, Imported};

use crate::{Model, ModelError};

/// The opset our export declares.
pub const OPSET: i64 = 13;

/// Prefix of a node `doc_string` that records its stage (`pi.stage=stage2`).
pub const STAGE_DOC_PREFIX: &str = "pi.stage=";

/// Reads an ONNX file (external tensor data next to it; the first graph output is served).
pub fn load(path: impl AsRef<Path>) -> Result<Model, ModelError> {
    Ok(load_with(path, None)?.model)
}

/// Reads an ONNX file with options: external tensor data is read from the file's directory, and
/// `output` names the served output tensor (the first graph output when `None`).
pub fn load_with(path: impl AsRef<Path>, output: Option<&str>) -> Result<Imported, ModelError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let options = ImportOptions {
        output: output.map(str::to_string),
        base_dir: Some(
            path.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ".".into()),
        ),
    };
    from_bytes_with(&bytes, &options)
}

/// Checks an ONNX file and lists every problem at once (empty when it imports); see
/// [`check_bytes`].
pub fn check_file(
    path: impl AsRef<Path>,
    output: Option<&str>,
) -> Result<Vec<ModelError>, ModelError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let options = ImportOptions {
        output: output.map(str::to_string),
        base_dir: Some(
            path.parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| ".".into()),
        ),
    };
    Ok(check_bytes(&bytes, &options))
}

/// `bytes` (an ONNX file) with `entries` appended to its `metadata_props`. The original bytes are
/// kept as they are and one more `ModelProto` fragment is concatenated (protobuf merges repeated
/// fields), so nothing this crate does not model is lost; readers of this crate take the last
/// value of a repeated key.
pub fn with_metadata(bytes: &[u8], entries: &[(String, String)]) -> Vec<u8> {
    use prost::Message;
    let extra = proto::ModelProto {
        metadata_props: entries
            .iter()
            .map(|(k, v)| proto::StringStringEntryProto {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
        ..Default::default()
    };
    let mut out = bytes.to_vec();
    out.extend(extra.encode_to_vec());
    out
}

/// Writes `model` as an ONNX file.
pub fn save(model: &Model, path: impl AsRef<Path>) -> Result<(), ModelError> {
    let path = path.as_ref();
    let bytes = to_bytes(model)?;
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}
