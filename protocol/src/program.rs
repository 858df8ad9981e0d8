//! What each node of a model needs from the protocol, derived once from the fixed-point plan.

use models::fixed::{self, FixedConfig, FixedPlan, RingWeights};
use models::{Model, NodeId, Op, Shape};
use pi_gc::ReluParams;
use pi_he::{HeParams, LinearShape, PreparedLayer};

use crate::ProtocolError;

/// The ReLU'd elements of a ReLU node's tensor (all, or whole channels of a subset).
#[derive(Clone, Debug)]
pub(crate) struct Selection {
    /// Per channel: does it get a ReLU (`None`: every channel does).
    channels: Option<Vec<bool>>,
    /// Elements per channel.
    per_channel: usize,
    /// ReLU'd elements in total.
    count: usize,
}

impl Selection {
    /// Whether element `i` (CHW order) goes through the ReLU circuit.
    #[inline]
    pub(crate) fn contains(&self, i: usize) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|c| c[i / self.per_channel])
    }

    /// Number of ReLU'd elements.
    pub(crate) fn len(&self) -> usize {
        self.count
    }
}

/// The protocol's action at one node.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// The client's masked input enters here.
    Input,
    /// Conv2d / Linear: HE correlation offline, clear evaluation on the server's share online.
    Linear {
        input: NodeId,
        shape: LinearShape,
        pre_shift: u32,
    },
    /// ReLU circuits on `selected` elements; the rest are truncated locally by `shift`.
    Relu {
        input: NodeId,
        params: ReluParams,
        selected: Selection,
        shift: u32,
    },
    /// Share-local truncation (a removed ReLU).
    Truncate { input: NodeId, shift: u32 },
    /// A node that acts on each share as on values (add, concat, slice, pooling sums, flatten).
    Local { inputs: Vec<NodeId> },
}

/// A model compiled for private inference: plan, per-node steps, circuit parameters, HE shapes.
pub struct Program {
    model: Model,
    plan: FixedPlan,
    shapes: Vec<Shape>,
    steps: Vec<Step>,
    relu_params: Vec<ReluParams>,
    linear_nodes: Vec<NodeId>,
    ring_weights: Vec<Option<RingWeights>>,
    last_uses: Vec<Vec<NodeId>>,
    /// `None` for a program that only runs online (a banked inference needs no HE).
    he_params: Option<HeParams>,
    relus: u64,
    macs: u64,
}

impl Program {
    /// Compiles `model` with the fixed-point `config` for the server (weights kept for clear evaluation).
    pub fn new(model: Model, config: FixedConfig) -> Result<Self, ProtocolError> {
        Self::compile(model, config, true, true)
    }

    /// Compiles a weightless public model for the client.
    pub fn for_client(model: Model, config: FixedConfig) -> Result<Self, ProtocolError> {
        Self::compile(model, config, false, true)
    }

    /// Compiles a weightless public model for a client that only runs online phases (banked
    /// material): no HE parameters, whose construction costs tens of milliseconds.
    pub fn for_client_online(model: Model, config: FixedConfig) -> Result<Self, ProtocolError> {
        Self::compile(model, config, false, false)
    }

    fn compile(
        model: Model,
        config: FixedConfig,
        with_weights: bool,
        with_he: bool,
    ) -> Result<Self, ProtocolError> {
        let plan = fixed::plan(&model, &config)?;
        let shapes = model.shapes()?;
        let counts = models::count::count(&model)?;
        let bits = plan.ring.bits;
        let mut steps = Vec::with_capacity(model.nodes.len());
        let mut relu_params = Vec::new();
        let mut linear_nodes = Vec::new();
        let mut ring_weights = Vec::with_capacity(model.nodes.len());
        for (id, node) in model.nodes.iter().enumerate() {
            let np = &plan.nodes[id];
            let bad = |what: &str| ProtocolError::Violation(format!("node {}: {what}", node.name));
            let first = node.inputs.first().copied().unwrap_or(0);
            let step = match (&node.op, &np.step) {
                (Op::Input, fixed::Step::Input) => Step::Input,
                (Op::Conv2d(c), fixed::Step::Linear(lp)) => {
                    let (c_in, h, w) = shapes[first].dims();
                    if c.stride[0] != c.stride[1] || c.padding[0] != c.padding[1] {
                        return Err(bad(
                            "HE layers need equal vertical and horizontal stride and padding",
                        ));
                    }
                    linear_nodes.push(id);
                    Step::Linear {
                        input: first,
                        shape: LinearShape::Conv {
                            c_in,
                            h,
                            w,
                            c_out: c.c_out,
                            kh: c.kernel[0],
                            kw: c.kernel[1],
                            stride: c.stride[0],
                            pad: c.padding[0],
                            groups: c.groups,
                        },
                        pre_shift: lp.input_trunc.map_or(0, |t| t.shift),
                    }
                }
                (Op::Linear(l), fixed::Step::Linear(lp)) => {
                    linear_nodes.push(id);
                    Step::Linear {
                        input: first,
                        shape: LinearShape::Fc {
                            in_features: l.in_features,
                            out_features: l.out_features,
                        },
                        pre_shift: lp.input_trunc.map_or(0, |t| t.shift),
                    }
                }
                (Op::Relu(r), fixed::Step::Relu { relu, pass }) => {
                    let (c, h, w) = shapes[first].dims();
                    let channels = r.channels.as_ref().map(|list| {
                        let mut sel = vec![false; c];
                        list.iter().filter(|&&i| i < c).for_each(|&i| sel[i] = true);
                        sel
                    });
                    let count = channels
                        .as_ref()
                        .map_or(c * h * w, |s| s.iter().filter(|&&b| b).count() * h * w);
                    let params = ReluParams::new(relu.width, relu.shift, bits)?;
                    relu_params.extend(std::iter::repeat_n(params, count));
                    Step::Relu {
                        input: first,
                        params,
                        selected: Selection {
                            channels,
                            per_channel: h * w,
                            count,
                        },
                        shift: pass.shift,
                    }
                }
                (Op::Identity, fixed::Step::Identity(t)) => Step::Truncate {
                    input: first,
                    shift: t.shift,
                },
                (
                    _,
                    fixed::Step::Input
                    | fixed::Step::Linear(_)
                    | fixed::Step::Relu { .. }
                    | fixed::Step::Identity(_),
                ) => return Err(bad("plan and graph disagree")),
                _ => Step::Local {
                    inputs: node.inputs.clone(),
                },
            };
            ring_weights.push(match step {
                Step::Linear { .. } if with_weights => Some(RingWeights::new(&plan, id, true)?),
                _ => None,
            });
            steps.push(step);
        }
        let mut last_use = vec![0usize; model.nodes.len()];
        for (id, node) in model.nodes.iter().enumerate() {
            node.inputs
                .iter()
                .for_each(|&i| last_use[i] = last_use[i].max(id));
        }
        let mut last_uses = vec![Vec::new(); model.nodes.len()];
        for (producer, &consumer) in last_use.iter().enumerate() {
            if consumer > producer && producer != model.output {
                last_uses[consumer].push(producer);
            }
        }
        let he_params = if with_he {
            Some(HeParams::for_ring(bits)?)
        } else {
            None
        };
        Ok(Program {
            relus: counts.relus,
            macs: counts.macs,
            model,
            plan,
            shapes,
            steps,
            relu_params,
            linear_nodes,
            ring_weights,
            last_uses,
            he_params,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// ReLUs per inference.
    pub fn relus(&self) -> u64 {
        self.relus
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> u64 {
        self.macs
    }

    /// The fixed-point plan both parties run.
    pub fn plan(&self) -> &FixedPlan {
        &self.plan
    }

    /// Input shape `[c, h, w]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.model.input
    }

    /// Number of input values.
    pub fn input_len(&self) -> usize {
        self.model.input.iter().product()
    }

    /// Bits of the share ring.
    pub fn ring_bits(&self) -> u32 {
        self.plan.ring.bits
    }

    /// HE parameters for this ring.
    pub fn he_params(&self) -> Result<&HeParams, ProtocolError> {
        self.he_params.as_ref().ok_or_else(|| {
            ProtocolError::Violation("program compiled for the online phase only (no HE)".into())
        })
    }

    /// The same program with the HE block planner tuned for a link of `mbps` Mbit/s.
    pub fn with_he_link_mbps(mut self, mbps: u32) -> Result<Self, ProtocolError> {
        if let Some(p) = self.he_params.take() {
            self.he_params = Some(p.with_link_mbps(mbps)?);
        }
        Ok(self)
    }

    /// The same program with the HE planner's compute costs scaled by `milli`/1000 (the serving
    /// host's measured speed relative to the planner's reference machine).
    pub fn with_he_compute_milli(mut self, milli: u32) -> Result<Self, ProtocolError> {
        if let Some(p) = self.he_params.take() {
            self.he_params = Some(p.with_compute_milli(milli)?);
        }
        Ok(self)
    }

    /// Number of Conv2d/Linear layers (one HE correlation each per inference).
    pub fn linear_count(&self) -> usize {
        self.linear_nodes.len()
    }

    /// Number of ReLU circuits per inference.
    pub fn relu_elements(&self) -> usize {
        self.relu_params.len()
    }

    /// Number of ReLU nodes (one online garbled-circuit round each).
    pub fn relu_nodes(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s, Step::Relu { .. }))
            .count()
    }

    /// Number of output values (logits).
    pub fn output_len(&self) -> usize {
        self.shapes.get(self.model.output).map_or(0, |s| s.numel())
    }

    pub(crate) fn relu_params(&self) -> &[ReluParams] {
        &self.relu_params
    }

    /// Parameters and element count of every ReLU layer (step with circuits), in step order.
    pub fn relu_layers(&self) -> Vec<(ReluParams, usize)> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Relu {
                    params, selected, ..
                } => Some((*params, selected.len())),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    pub(crate) fn output(&self) -> NodeId {
        self.model.output
    }

    /// Nodes whose tensors are no longer needed after node `id`.
    pub(crate) fn last_uses(&self, id: NodeId) -> &[NodeId] {
        &self.last_uses[id]
    }

    /// `q(x, fa)` of a float image.
    pub(crate) fn quantize_input(&self, image: &[f32]) -> Result<Vec<u64>, ProtocolError> {
        fixed::quantize_input(&self.model, &self.plan, image).map_err(|e| match e {
            models::ModelError::BadInput(m) => ProtocolError::BadInput(m),
            other => ProtocolError::BadInput(other.to_string()),
        })
    }

    /// Logits from the reconstructed output ring values.
    pub(crate) fn dequantize_output(&self, values: &[u64]) -> Vec<f32> {
        fixed::dequantize(self.plan.ring, self.plan.output_scale, values)
    }

    /// A share-linear node applied to shares (the same on both sides).
    pub(crate) fn eval_local(&self, id: NodeId, ins: &[&[u64]]) -> Result<Vec<u64>, ProtocolError> {
        Ok(fixed::eval_shared(
            &self.model,
            &self.plan,
            &self.shapes,
            id,
            ins,
            None,
        )?)
    }

    /// The server's clear evaluation of linear node `id` (with bias) on its share.
    pub(crate) fn eval_linear(&self, id: NodeId, x: &[u64]) -> Result<Vec<u64>, ProtocolError> {
        let w = self.ring_weights[id]
            .as_ref()
            .ok_or(ProtocolError::Violation("no weights".into()))?;
        Ok(fixed::eval_shared(
            &self.model,
            &self.plan,
            &self.shapes,
            id,
            &[x],
            Some(w),
        )?)
    }

    /// Every Conv2d/Linear layer in order: node name, HE shape and quantised weights.
    pub fn linear_layers(&self) -> impl Iterator<Item = (&str, &LinearShape, &[i64])> + '_ {
        self.linear_nodes.iter().filter_map(|&id| {
            match (&self.steps[id], self.plan.nodes[id].linear()) {
                (Step::Linear { shape, .. }, Some(lp)) => Some((
                    self.model.nodes[id].name.as_str(),
                    shape,
                    lp.weight.as_slice(),
                )),
                _ => None,
            }
        })
    }

    /// Transforms every linear layer's quantised weights into HE plaintexts (server, once).
    pub(crate) fn prepare_he_layers(&self) -> Result<Vec<PreparedLayer>, ProtocolError> {
        let mut layers = Vec::with_capacity(self.linear_nodes.len());
        for (_, shape, weight) in self.linear_layers() {
            layers.push(pi_he::prepare_layer(self.he_params()?, shape, weight)?);
        }
        Ok(layers)
    }
}
