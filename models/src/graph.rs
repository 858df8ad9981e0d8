//! Graph types: nodes, operators and tensor shapes.

use serde::{Deserialize, Serialize};

/// Index of a node in [`Model::nodes`]; a node produces exactly one tensor, named by this id.
pub type NodeId = usize;

/// Shape of the tensor a node produces (batch dimension omitted; batch is always 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Chw { c: usize, h: usize, w: usize },
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

/// A 2-D convolution with BatchNorm already folded in; weights are `[c_out, c_in/groups, kh, kw]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zero padding on each side: `[top/bottom, left/right]` (symmetric).
    pub padding: [usize; 2],
    pub groups: usize,
    pub weight: Vec<f32>,
    /// One bias per output channel (zeros when the source had none).
    pub bias: Vec<f32>,
}

/// A fully connected layer; weights are `[out_features, in_features]` (ONNX Gemm with transB=1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// A ReLU over all channels, or over a subset (the other channels pass through linearly).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relu {
    /// Sorted channel indices that get a ReLU; `None` means every channel.
    pub channels: Option<Vec<usize>>,
}

/// Average pooling window (no padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
}

/// What a node computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The model input (always node 0).
    Input,
    Conv2d(Conv2d),
    Relu(Relu),
    /// A removed ReLU: passes its input through.
    Identity,
    /// Element-wise sum of two inputs of equal shape (residual connection).
    Add,
    /// Channels `start..start+len` of the input (one output of a channel Split).
    SliceChannels { start: usize, len: usize },
    /// Channel concatenation of all inputs, in order.
    Concat,
    AvgPool(Pool),
    GlobalAvgPool,
    Flatten,
    Linear(Linear),
}

/// One operation with its inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique, human-readable name (ONNX node name on import).
    pub name: String,
    pub op: Op,
    /// Producers of this node's inputs; every id is smaller than this node's own id.
    pub inputs: Vec<NodeId>,
    pub stage: Stage,
}

/// A whole network: nodes in topological order, node 0 is the input, `output` names the logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub name: String,
    /// Input shape `[c, h, w]`.
    pub input: [usize; 3],
    pub nodes: Vec<Node>,
    pub output: NodeId,
}
