//! Graph types: nodes, operators and tensor shapes.

use serde::{Deserialize, Serialize};

pub use crate::ops::{Affine, ElementMask, GatherMean, MaxPool, Pool, Relu, Slice, Window};

/// Index of a node in [`Model::nodes`]; a node produces exactly one tensor, named by this id.
pub type NodeId = usize;

/// Shape of the tensor a node produces (batch dimension omitted; batch is always 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Chw {
        /// Channels.
        c: usize,
        /// Height.
        h: usize,
        /// Width.
        w: usize,
    },
    /// A flat feature vector.
    Flat(usize),
}

impl Shape {
    /// Number of scalar elements.
    pub fn numel(&self) -> usize {
        match *self {
            Shape::Chw { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
        }
    }

    /// `(channels, height, width)`; a flat vector of `n` reads as `(n, 1, 1)` (features are channels).
    pub fn dims(&self) -> (usize, usize, usize) {
        match *self {
            Shape::Chw { c, h, w } => (c, h, w),
            Shape::Flat(n) => (n, 1, 1),
        }
    }

    /// Number of channels (features for a flat vector).
    pub fn channels(&self) -> usize {
        self.dims().0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Shape::Chw { c, h, w } => write!(f, "[{c}, {h}, {w}]"),
            Shape::Flat(n) => write!(f, "[{n}]"),
        }
    }
}

/// Which part of the network a node belongs to (for per-stage accounting and culling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// The input convolution(s) before the first stage.
    Stem,
    /// Residual stage `n`, counting from 1.
    Stage(usize),
    /// Pooling and classifier.
    Head,
}

impl Stage {
    /// Reads a stage token as used in node names: `stem`, `stage<N>` / `layer<N>` (N ≥ 1), `head` / `fc` /
    /// `classifier` (case-insensitive); anything else is `None`.
    pub fn from_token(token: &str) -> Option<Stage> {
        let t = token.to_ascii_lowercase();
        match t.as_str() {
            "stem" => return Some(Stage::Stem),
            "head" | "fc" | "classifier" => return Some(Stage::Head),
            _ => {}
        }
        let digits = t
            .strip_prefix("stage")
            .or_else(|| t.strip_prefix("layer"))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match digits.parse::<usize>() {
            Ok(n) if n >= 1 => Some(Stage::Stage(n)),
            _ => None,
        }
    }

    /// The stage named by the first stage token of a node name, tokens being split at every
    /// non-alphanumeric character (`stage2.block1.conv1` → `Stage(2)`, `/layer3/layer3.0/conv1/Conv` → `Stage(3)`).
    pub fn from_node_name(name: &str) -> Option<Stage> {
        name.split(|c: char| !c.is_ascii_alphanumeric())
            .find_map(Stage::from_token)
    }
}

impl std::fmt::Display for Stage {
    /// `stem`, `stage<N>` or `head`: the prefix used in node names.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Stage::Stem => write!(f, "stem"),
            Stage::Stage(n) => write!(f, "stage{n}"),
            Stage::Head => write!(f, "head"),
        }
    }
}

/// A 2-D convolution with BatchNorm already folded in; weights are `[c_out, c_in/groups, kh, kw]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding on each side: `[top/bottom, left/right]` (symmetric).
    pub padding: [usize; 2],
    /// Channel groups (c_in and c_out are multiples of it; c_in = groups is depthwise).
    pub groups: usize,
    /// Weights, `[c_out, c_in/groups, kh, kw]` row-major.
    pub weight: Vec<f32>,
    /// One bias per output channel (zeros when the source had none).
    pub bias: Vec<f32>,
}

/// A fully connected layer; weights are `[out_features, in_features]` (ONNX Gemm with transB=1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Weights, `[out_features, in_features]` row-major.
    pub weight: Vec<f32>,
    /// One bias per output feature.
    pub bias: Vec<f32>,
}

/// What a node computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The model input (always node 0).
    Input,
    /// Convolution (BatchNorm folded).
    Conv2d(Conv2d),
    /// ReLU over all channels or a subset.
    Relu(Relu),
    /// A removed ReLU: passes its input through.
    Identity,
    /// Element-wise sum of two inputs of equal shape (residual connection).
    Add,
    /// Channels `start..start+len` of the input (one output of a channel Split).
    SliceChannels {
        /// First channel.
        start: usize,
        /// Number of channels.
        len: usize,
    },
    /// Channel concatenation of all inputs, in order.
    Concat,
    /// Average pooling (any window, padding, ceil mode).
    AvgPool(Pool),
    /// Max pooling, optionally fused with a ReLU.
    MaxPool(MaxPool),
    /// Per-tensor / per-channel / per-element `x · scale + shift`.
    Affine(Affine),
    /// Zero padding `[c_before, h_before, w_before, c_after, h_after, w_after]`.
    Pad([usize; 6]),
    /// A strided slice on channels, rows and columns.
    Slice(Slice),
    /// Channel permutation: output channel j is input channel `order[j]`.
    PermuteChannels(Vec<usize>),
    /// Averages of index lists (adaptive pooling written as gathers).
    GatherMean(GatherMean),
    /// Average over all spatial positions, giving `[c, 1, 1]`.
    GlobalAvgPool,
    /// Reshape to a flat vector (CHW order).
    Flatten,
    /// Fully connected layer on a flat vector.
    Linear(Linear),
}

impl Op {
    /// Short lower-case name of the operator (`conv`, `relu`, `identity`, `add`, `slice`, `concat`,
    /// `avgpool`, `maxpool`, `affine`, `pad`, `stridedslice`, `permute`, `gap`, `flatten`, `linear`,
    /// `input`), used for generated node names and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d(_) => "conv",
            Op::Relu(_) => "relu",
            Op::Identity => "identity",
            Op::Add => "add",
            Op::SliceChannels { .. } => "slice",
            Op::Concat => "concat",
            Op::AvgPool(_) => "avgpool",
            Op::MaxPool(_) => "maxpool",
            Op::Affine(_) => "affine",
            Op::Pad(_) => "pad",
            Op::Slice(_) => "stridedslice",
            Op::PermuteChannels(_) => "permute",
            Op::GatherMean(_) => "gathermean",
            Op::GlobalAvgPool => "gap",
            Op::Flatten => "flatten",
            Op::Linear(_) => "linear",
        }
    }
}

/// One operation with its inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique, human-readable name (ONNX node name on import).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Producers of this node's inputs; every id is smaller than this node's own id.
    pub inputs: Vec<NodeId>,
    /// Stage for accounting (stem, stage n, head).
    pub stage: Stage,
}

/// A whole network: nodes in topological order, node 0 is the input, `output` names the logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Model name (ONNX graph name).
    pub name: String,
    /// Input shape `[c, h, w]`.
    pub input: [usize; 3],
    /// The nodes, topologically ordered.
    pub nodes: Vec<Node>,
    /// The node whose tensor is the model output (logits).
    pub output: NodeId,
}
