//! Ergonomic, append-only construction of a [`Model`].
//!
//! Nodes get generated names `<stage>.<kind><n>` (`stage2.conv3`, `head.linear1`) unless a name is
//! given with [`ModelBuilder::node`] or [`ModelBuilder::rename`]; the leading stage token is what
//! keeps stages across an ONNX round trip (see `models::onnx`).

use std::collections::{HashMap, HashSet};

use crate::graph::{Conv2d, Linear, Model, Node, NodeId, Op, Pool, Relu, Shape, Stage};
use crate::shape::infer_shapes;
use crate::ModelError;

/// Builds a [`Model`] node by node; problems are reported by [`ModelBuilder::finish`] (or
/// [`ModelBuilder::shape`]), naming the node.
#[derive(Clone, Debug)]
pub struct ModelBuilder {
    name: String,
    input: [usize; 3],
    nodes: Vec<Node>,
    used: HashSet<String>,
    counters: HashMap<(Stage, &'static str), usize>,
}

impl ModelBuilder {
    /// Starts a model with input `[c, h, w]`; node 0 is the input, named `input`.
    pub fn new(name: impl Into<String>, input: [usize; 3]) -> Self {
        let mut b = ModelBuilder {
            name: name.into(),
            input,
            nodes: Vec::new(),
            used: HashSet::new(),
            counters: HashMap::new(),
        };
        b.node("input", Op::Input, vec![], Stage::Stem);
        b
    }

    /// The input node's id (always 0).
    pub fn input(&self) -> NodeId {
        0
    }

    /// Number of nodes so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a builder starts with its input node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The nodes built so far.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Appends a node with an explicit name.
    pub fn node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<NodeId>,
        stage: Stage,
    ) -> NodeId {
        let name = name.into();
        self.used.insert(name.clone());
        self.nodes.push(Node {
            name,
            op,
            inputs,
            stage,
        });
        self.nodes.len() - 1
    }

    /// Renames node `id` (names must stay unique; checked by `finish`).
    pub fn rename(&mut self, id: NodeId, name: impl Into<String>) {
        if let Some(n) = self.nodes.get_mut(id) {
            let name = name.into();
            self.used.insert(name.clone());
            n.name = name;
        }
    }

    /// Appends a node named `<stage>.<kind><n>` with the first free `n`.
    fn auto(&mut self, op: Op, inputs: Vec<NodeId>, stage: Stage) -> NodeId {
        let kind = op.kind();
        let name = loop {
            let n = self.counters.entry((stage, kind)).or_insert(0);
            *n += 1;
            let candidate = format!("{stage}.{kind}{n}");
            if !self.used.contains(&candidate) {
                break candidate;
            }
        };
        self.node(name, op, inputs, stage)
    }

    /// A convolution (BatchNorm already folded in).
    pub fn conv(&mut self, input: NodeId, conv: Conv2d, stage: Stage) -> NodeId {
        self.auto(Op::Conv2d(conv), vec![input], stage)
    }

    /// A ReLU over all channels.
    pub fn relu(&mut self, input: NodeId, stage: Stage) -> NodeId {
        self.auto(Op::Relu(Relu::all()), vec![input], stage)
    }

    /// A ReLU over the given channels only (sorted and deduplicated here); the others pass through.
    pub fn relu_channels(
        &mut self,
        input: NodeId,
        mut channels: Vec<usize>,
        stage: Stage,
    ) -> NodeId {
        channels.sort_unstable();
        channels.dedup();
        self.auto(Op::Relu(Relu::channels(channels)), vec![input], stage)
    }

    /// A removed ReLU (pass-through; in fixed point it still rescales).
    pub fn identity(&mut self, input: NodeId, stage: Stage) -> NodeId {
        self.auto(Op::Identity, vec![input], stage)
    }

    /// Element-wise sum (residual connection).
    pub fn add(&mut self, a: NodeId, b: NodeId, stage: Stage) -> NodeId {
        self.auto(Op::Add, vec![a, b], stage)
    }

    /// Channels `start..start + len` of `input`.
    pub fn slice_channels(
        &mut self,
        input: NodeId,
        start: usize,
        len: usize,
        stage: Stage,
    ) -> NodeId {
        self.auto(Op::SliceChannels { start, len }, vec![input], stage)
    }

    /// Channel concatenation of `inputs`, in order.
    pub fn concat(&mut self, inputs: Vec<NodeId>, stage: Stage) -> NodeId {
        self.auto(Op::Concat, inputs, stage)
    }

    /// Average pooling (no padding).
    pub fn avg_pool(&mut self, input: NodeId, pool: Pool, stage: Stage) -> NodeId {
        self.auto(Op::AvgPool(pool), vec![input], stage)
    }

    /// Global average pooling to `[c, 1, 1]`.
    pub fn global_avg_pool(&mut self, input: NodeId, stage: Stage) -> NodeId {
        self.auto(Op::GlobalAvgPool, vec![input], stage)
    }

    /// Flattens to a vector.
    pub fn flatten(&mut self, input: NodeId, stage: Stage) -> NodeId {
        self.auto(Op::Flatten, vec![input], stage)
    }

    /// A fully connected layer.
    pub fn linear(&mut self, input: NodeId, linear: Linear, stage: Stage) -> NodeId {
        self.auto(Op::Linear(linear), vec![input], stage)
    }

    /// Shape of node `id`, checking every node up to it.
    pub fn shape(&self, id: NodeId) -> Result<Shape, ModelError> {
        if id >= self.nodes.len() {
            return Err(ModelError::InvalidModel(format!(
                "node {id} does not exist yet"
            )));
        }
        let mut shapes = infer_shapes(self.input, &self.nodes[..=id])?;
        shapes
            .pop()
            .ok_or_else(|| ModelError::InvalidModel("no nodes".into()))
    }

    /// Finishes the model with `output` as the logits and validates it.
    pub fn finish(self, output: NodeId) -> Result<Model, ModelError> {
        let model = Model {
            name: self.name,
            input: self.input,
            nodes: self.nodes,
            output,
        };
        model.validate()?;
        Ok(model)
    }
}
