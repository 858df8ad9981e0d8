//! What each node of a model needs from the protocol, derived once from the fixed-point plan.

use models::fixed::{self, FixedConfig, FixedPlan, RingWeights};
use models::{Model, NodeId, Op, Shape};
use std::ops::Range;

use pi_gc::{CircuitSpec, ReluParams};
use pi_he::{HeParams, LinearShape, PreparedLayer};

use crate::circuit_layer::CircuitLayer;
use crate::nonlinear::ReluProtocol;
use crate::ProtocolError;

/// One nonlinear node's circuits within the inference's circuit list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpan {
    /// Its circuits (indices into [`Program::circuit_specs`]).
    pub circuits: Range<usize>,
    /// Server words (its shares) over the layer's circuits.
    pub server_words: usize,
    /// Client words (its shares and output masks) over the layer's circuits.
    pub client_words: usize,
    /// `Some` when every circuit is this plain ReLU (the OT protocol can run the layer too).
    pub relu: Option<ReluParams>,
    /// The ReLU parameters, or for maxima and ReLU6 the width, shift and ring of their circuits.
    pub params: ReluParams,
    /// AND gates over the layer's circuits.
    pub and_gates: u64,
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
    /// Garbled circuits (ReLU, ReLU6, max pooling) on the input share, the rest truncated locally.
    Circuits { input: NodeId, layer: CircuitLayer },
    /// The server adds constants to its share (a shift-only affine map); the client's passes.
    AddConst { input: NodeId },
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
    circuit_specs: Vec<CircuitSpec>,
    layer_spans: Vec<LayerSpan>,
    linear_nodes: Vec<NodeId>,
    ring_weights: Vec<Option<RingWeights>>,
    last_uses: Vec<Vec<NodeId>>,
    /// `None` for a program that only runs online (a banked inference needs no HE).
    he_params: Option<HeParams>,
    relus: u64,
    comparisons: u64,
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
        let plan = match with_weights {
            true => fixed::plan(&model, &config)?,
            false => fixed::plan_weightless(&model, &config)?,
        };
        let shapes = model.shapes()?;
        let counts = models::count::count(&model)?;
        let bits = plan.ring.bits;
        let mut steps = Vec::with_capacity(model.nodes.len());
        let mut circuit_specs = Vec::new();
        let mut layer_spans = Vec::new();
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
                (Op::Relu(r), fixed::Step::Relu { relu, pass, cap }) => {
                    let (c, h, w) = shapes[first].dims();
                    let selected = (!(r.channels.is_none() && r.elements.is_none()))
                        .then(|| r.selection(c, h * w));
                    let layer =
                        CircuitLayer::relu(*relu, *cap, bits, selected, pass.shift, c * h * w)?;
                    layer_spans.push(span(&layer, &mut circuit_specs)?);
                    Step::Circuits {
                        input: first,
                        layer,
                    }
                }
                (Op::MaxPool(mp), fixed::Step::Max { trunc, relu, cap }) => {
                    let (c, h, w) = shapes[first].dims();
                    let layer = CircuitLayer::windows(
                        *trunc,
                        *relu,
                        *cap,
                        bits,
                        c,
                        (h, w),
                        mp.pool.windows(h, w),
                    )?;
                    layer_spans.push(span(&layer, &mut circuit_specs)?);
                    Step::Circuits {
                        input: first,
                        layer,
                    }
                }
                (Op::Affine(_), fixed::Step::AddConst(_)) => Step::AddConst { input: first },
                (Op::Identity, fixed::Step::Identity(t)) => Step::Truncate {
                    input: first,
                    shift: t.shift,
                },
                (
                    _,
                    fixed::Step::Input
                    | fixed::Step::Linear(_)
                    | fixed::Step::Relu { .. }
                    | fixed::Step::Max { .. }
                    | fixed::Step::AddConst(_)
                    | fixed::Step::Identity(_),
                )
                | (Op::Relu(_) | Op::MaxPool(_) | Op::Affine(_), _) => {
                    return Err(bad("plan and graph disagree"))
                }
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
        let relus = circuit_specs.iter().map(|s| s.relus()).sum::<u64>();
        let comparisons = circuit_specs.iter().map(|s| s.comparisons()).sum::<u64>();
        debug_assert_eq!((relus, comparisons), (counts.relus, counts.comparisons));
        Ok(Program {
            relus,
            comparisons,
            macs: counts.macs,
            model,
            plan,
            shapes,
            steps,
            circuit_specs,
            layer_spans,
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

    /// ReLUs per inference (circuits with a ReLU: ReLU, ReLU6, max pooling with a fused ReLU).
    pub fn relus(&self) -> u64 {
        self.relus
    }

    /// Comparisons per inference beyond ReLU sign tests (max pooling, caps).
    pub fn comparisons(&self) -> u64 {
        self.comparisons
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

    /// The same program with the HE planner weighing the serving host's measured operation
    /// costs (`pi_he::measure_op_costs`).
    pub fn with_he_costs(mut self, costs: pi_he::HeOpCosts) -> Result<Self, ProtocolError> {
        if let Some(p) = self.he_params.take() {
            self.he_params = Some(p.with_op_costs(costs)?);
        }
        Ok(self)
    }

    /// Number of Conv2d/Linear layers (one HE correlation each per inference).
    pub fn linear_count(&self) -> usize {
        self.linear_nodes.len()
    }

    /// Number of garbled circuits per inference.
    pub fn circuit_count(&self) -> usize {
        self.circuit_specs.len()
    }

    /// Every garbled circuit of one inference, in protocol order.
    pub fn circuit_specs(&self) -> &[CircuitSpec] {
        &self.circuit_specs
    }

    /// Number of nonlinear nodes (one online round of circuits, or of OT comparisons, each).
    pub fn relu_nodes(&self) -> usize {
        self.layer_spans.len()
    }

    /// Number of output values (logits).
    pub fn output_len(&self) -> usize {
        self.shapes.get(self.model.output).map_or(0, |s| s.numel())
    }

    /// Every nonlinear layer (ReLU, ReLU6, max pooling) in step order: its circuits and words.
    pub fn layer_spans(&self) -> &[LayerSpan] {
        &self.layer_spans
    }

    /// Per nonlinear layer, the ReLU parameters and the number of circuits: the layer's
    /// `ReluParams` when it is a plain ReLU (the layers the OT protocol can also run), otherwise
    /// the width, shift and ring of its circuits (see [`LayerSpan::relu`]).
    pub fn relu_layers(&self) -> Vec<(ReluParams, usize)> {
        self.layer_spans
            .iter()
            .map(|l| (l.params, l.circuits.len()))
            .collect()
    }

    /// The AND gates of all circuits in units of the default ReLU's (for compute budgets).
    pub fn relu_equivalents(&self) -> u64 {
        let per = ReluParams::DEFAULT.and_gates().max(1) as u64;
        self.layer_spans
            .iter()
            .map(|l| l.and_gates)
            .sum::<u64>()
            .div_ceil(per)
    }

    /// `plan` with every layer the OT protocol cannot run (maxima, ReLU6) on garbled circuits.
    pub fn restrict_plan(&self, plan: &[ReluProtocol]) -> Vec<ReluProtocol> {
        plan.iter()
            .zip(&self.layer_spans)
            .map(|(&p, l)| {
                if l.relu.is_some() {
                    p
                } else {
                    ReluProtocol::Gc
                }
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

    /// The server's part of a shift-only affine node: its share plus the constants.
    pub(crate) fn add_constants(&self, id: NodeId, x: &[u64]) -> Result<Vec<u64>, ProtocolError> {
        let (Some(node), Some(np)) = (self.model.nodes.get(id), self.plan.nodes.get(id)) else {
            return Err(ProtocolError::Violation(format!("node {id} out of range")));
        };
        let fixed::Step::AddConst(values) = &np.step else {
            return Err(ProtocolError::Violation(format!(
                "node {} adds no constants",
                node.name
            )));
        };
        let (c, h, w) = node
            .inputs
            .first()
            .map(|&i| self.shapes[i].dims())
            .unwrap_or((0, 0, 0));
        if x.len() != c * h * w {
            return Err(ProtocolError::Violation(format!(
                "node {}: {} values, expected {}",
                node.name,
                x.len(),
                c * h * w
            )));
        }
        Ok(fixed::add_constants(self.plan.ring, x, values, c, h * w))
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
    /// Every linear layer's weights transformed for HE, their NTT-form kernels cached in layer
    /// order while they fit in `cache_bytes` altogether (the rest is transformed in each session;
    /// [`Program::kernel_cache_plan`] says which).
    pub(crate) fn prepare_he_layers(
        &self,
        cache_bytes: usize,
    ) -> Result<Vec<PreparedLayer>, ProtocolError> {
        let mut layers = Vec::with_capacity(self.linear_nodes.len());
        let mut left = cache_bytes;
        for (_, shape, weight) in self.linear_layers() {
            let layer = pi_he::prepare_layer_with_cache(self.he_params()?, shape, weight, left)?;
            left -= layer.cached_bytes();
            layers.push(layer);
        }
        Ok(layers)
    }

    /// How many kernels of each linear layer [`Program::prepare_he_layers`] caches under
    /// `cache_bytes`: (kernels, cached) per layer, in order.
    pub fn kernel_cache_plan(
        &self,
        cache_bytes: usize,
    ) -> Result<Vec<(usize, usize)>, ProtocolError> {
        let params = self.he_params()?;
        let kb = pi_he::kernel_bytes(params);
        let mut left = cache_bytes;
        self.linear_layers()
            .map(|(_, shape, _)| {
                let kernels = pi_he::plan_cost(params, shape)?.kernel_transforms;
                let cached = kernels.min(left / kb);
                left -= cached * kb;
                Ok((kernels, cached))
            })
            .collect()
    }
}

/// Appends a layer's circuits to the list and describes where they sit.
fn span(layer: &CircuitLayer, specs: &mut Vec<CircuitSpec>) -> Result<LayerSpan, ProtocolError> {
    let start = specs.len();
    layer.extend_specs(specs);
    let mine = &specs[start..];
    let relu = match mine.first() {
        Some(CircuitSpec::Relu(p)) if mine.iter().all(|s| *s == CircuitSpec::Relu(*p)) => Some(*p),
        _ => None,
    };
    let params = match mine.first() {
        Some(CircuitSpec::Relu(p)) => *p,
        Some(CircuitSpec::Max(m)) => ReluParams::new(m.in_bits, m.shift, m.out_bits)?,
        None => ReluParams::DEFAULT,
    };
    let mut and_gates = 0u64;
    let mut last: Option<(CircuitSpec, u64)> = None;
    for s in mine {
        let a = match last {
            Some((q, a)) if q == *s => a,
            _ => {
                let a = s.and_gates() as u64;
                last = Some((*s, a));
                a
            }
        };
        and_gates += a;
    }
    Ok(LayerSpan {
        circuits: start..specs.len(),
        server_words: mine.iter().map(|s| s.server_words()).sum(),
        client_words: mine.iter().map(|s| s.client_words()).sum(),
        relu,
        params,
        and_gates,
    })
}
