//! A trainable burn network interpreted from a [`Model`] graph.
//!
//! Every `Conv2d` node becomes a bias-free convolution followed by BatchNorm (batch statistics
//! while training, running statistics in evaluation); `Linear` keeps its bias; ReLU (all
//! channels or a channel mask), Identity, Add, SliceChannels, Concat, AvgPool, GlobalAvgPool
//! and Flatten are tensor operations. Export folds BatchNorm back into the convolutions and
//! writes the trained weights into a copy of the graph.
//!
//! A "frozen" net instead uses the graph's (already folded) weights and biases as they are:
//! that is how a teacher runs, and how an exported model is checked against its trainer.

use crate::error::{Error, Result};
use crate::rng::Rng;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, batch_norm, batch_norm_train, conv2d, linear};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use burn::tensor::{Device, Tensor, TensorData};
use models::{Model, Op};

/// BatchNorm epsilon (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm running-statistics momentum (PyTorch's default).
pub const BN_MOMENTUM: f64 = 0.1;

/// How to set the weights of a trainable net.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// He-normal convolutions (fan-out, as torchvision's ResNet), PyTorch-default linear layers,
    /// BatchNorm γ = 1, β = 0; seeded.
    Random(u64),
    /// The graph's weights; each convolution bias becomes its BatchNorm β (fine-tuning).
    FromModel,
}

/// Name and shape of one parameter tensor.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ParamInfo {
    /// `<node name>.<weight|bias|bn_gamma|bn_beta>`.
    pub name: String,
    /// Tensor dimensions (convolution `[c_out, c_in/groups, kh, kw]`, linear `[in, out]`).
    pub dims: Vec<usize>,
}

#[derive(Clone, Debug)]
struct ConvLayer {
    weight: usize,
    bias: Option<usize>,
    /// `(gamma, beta, running-statistics index)`.
    bn: Option<(usize, usize, usize)>,
    dims: [usize; 4],
    options: ConvOptions<2>,
}

#[derive(Clone, Debug)]
enum Layer {
    Input,
    Conv(ConvLayer),
    Linear {
        weight: usize,
        bias: usize,
        in_features: usize,
        out_features: usize,
    },
    /// Optional mask `[1, C, 1, 1]`: 1 where the ReLU applies, 0 where the channel passes through.
    Relu(Option<Tensor<4>>),
    Identity,
    Add,
    Slice {
        start: usize,
        len: usize,
    },
    Concat,
    AvgPool {
        kernel: [usize; 2],
        stride: [usize; 2],
    },
    GlobalAvgPool,
    Flatten,
}

/// BatchNorm running statistics of one convolution.
#[derive(Clone, Debug)]
struct Running {
    mean: Tensor<1>,
    var: Tensor<1>,
}

/// A network ready to train (or, frozen, to run) on the CPU through burn's flex backend.
#[derive(Clone, Debug)]
pub struct Net {
    arch: Model,
    layers: Vec<Layer>,
    /// Index of the last node reading each node's output (to free activations early).
    last_use: Vec<usize>,
    params: Vec<Tensor<1>>,
    info: Vec<ParamInfo>,
    running: Vec<Running>,
    device: Device,
    trainable: bool,
    classes: usize,
}

fn tensor1(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// The values of a tensor as `f32`s.
pub fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Model(format!("reading tensor data: {e:?}")))
}

impl Net {
    /// A trainable net (convolution + BatchNorm) with the architecture of `model`.
    pub fn trainable(model: &Model, init: Init) -> Result<Net> {
        Net::build(model, true, init)
    }

    /// A frozen net computing exactly `model` (folded weights and biases), for teachers and checks.
    pub fn frozen(model: &Model) -> Result<Net> {
        Net::build(model, false, Init::FromModel)
    }

    fn build(model: &Model, trainable: bool, init: Init) -> Result<Net> {
        let shapes = model.shapes()?;
        let classes = shapes[model.output].numel();
        let device = Device::flex();
        let mut rng = match init {
            Init::Random(seed) => Some(Rng::new(seed)),
            Init::FromModel => None,
        };
        let mut params: Vec<Vec<f32>> = Vec::new();
        let mut info = Vec::new();
        let mut running = Vec::new();
        let mut add = |name: String, dims: Vec<usize>, v: Vec<f32>, params: &mut Vec<Vec<f32>>| {
            info.push(ParamInfo { name, dims });
            params.push(v);
            params.len() - 1
        };
        let mut layers = Vec::with_capacity(model.nodes.len());
        for node in &model.nodes {
            let layer = match &node.op {
                Op::Input => Layer::Input,
                Op::Conv2d(c) => {
                    let dims = [c.c_out, c.c_in / c.groups, c.kernel[0], c.kernel[1]];
                    let n: usize = dims.iter().product();
                    let weight = match rng.as_mut() {
                        Some(r) => {
                            let std = (2.0 / (c.c_out * c.kernel[0] * c.kernel[1]) as f64).sqrt();
                            (0..n).map(|_| (r.normal() * std) as f32).collect()
                        }
                        None => c.weight.clone(),
                    };
                    let w = add(
                        format!("{}.weight", node.name),
                        dims.to_vec(),
                        weight,
                        &mut params,
                    );
                    let options = ConvOptions::new(c.stride, c.padding, [1, 1], c.groups);
                    if trainable {
                        let beta = match init {
                            Init::Random(_) => vec![0.0; c.c_out],
                            Init::FromModel => c.bias.clone(),
                        };
                        let g = add(
                            format!("{}.bn_gamma", node.name),
                            vec![c.c_out],
                            vec![1.0; c.c_out],
                            &mut params,
                        );
                        let b = add(
                            format!("{}.bn_beta", node.name),
                            vec![c.c_out],
                            beta,
                            &mut params,
                        );
                        running.push(Running {
                            mean: tensor1(vec![0.0; c.c_out], &device),
                            var: tensor1(vec![1.0; c.c_out], &device),
                        });
                        Layer::Conv(ConvLayer {
                            weight: w,
                            bias: None,
                            bn: Some((g, b, running.len() - 1)),
                            dims,
                            options,
                        })
                    } else {
                        let b = add(
                            format!("{}.bias", node.name),
                            vec![c.c_out],
                            c.bias.clone(),
                            &mut params,
                        );
                        Layer::Conv(ConvLayer {
                            weight: w,
                            bias: Some(b),
                            bn: None,
                            dims,
                            options,
                        })
                    }
                }
                Op::Linear(l) => {
                    let (i, o) = (l.in_features, l.out_features);
                    let (weight_oi, bias) = match rng.as_mut() {
                        Some(r) => {
                            let bound = 1.0 / (i as f64).sqrt();
                            let mut u = || ((r.uniform() * 2.0 - 1.0) * bound) as f32;
                            (
                                (0..i * o).map(|_| u()).collect::<Vec<f32>>(),
                                (0..o).map(|_| u()).collect(),
                            )
                        }
                        None => (l.weight.clone(), l.bias.clone()),
                    };
                    // stored as [in, out] for burn's `linear`
                    let mut w_io = vec![0.0; i * o];
                    for r in 0..o {
                        for k in 0..i {
                            w_io[k * o + r] = weight_oi[r * i + k];
                        }
                    }
                    let weight = add(
                        format!("{}.weight", node.name),
                        vec![i, o],
                        w_io,
                        &mut params,
                    );
                    let bias = add(format!("{}.bias", node.name), vec![o], bias, &mut params);
                    Layer::Linear {
                        weight,
                        bias,
                        in_features: i,
                        out_features: o,
                    }
                }
                Op::Relu(r) if r.elements.is_some() || r.cap.is_some() => {
                    return Err(Error::Model(format!(
                        "node {}: training supports ReLUs on all elements or a channel subset, not \
                         element masks or caps (ReLU6)",
                        node.name
                    )))
                }
                Op::Relu(r) => match &r.channels {
                    None => Layer::Relu(None),
                    Some(ch) => {
                        let c = shapes[node.inputs[0]].channels();
                        let mut m = vec![0.0f32; c];
                        ch.iter().for_each(|&k| m[k] = 1.0);
                        Layer::Relu(Some(Tensor::from_data(
                            TensorData::new(m, [1, c, 1, 1]),
                            &device,
                        )))
                    }
                },
                Op::Identity => Layer::Identity,
                Op::Add => Layer::Add,
                Op::SliceChannels { start, len } => Layer::Slice {
                    start: *start,
                    len: *len,
                },
                Op::Concat => Layer::Concat,
                Op::AvgPool(p) if !p.is_plain() => {
                    return Err(Error::Model(format!(
                        "node {}: training supports average pools without padding or ceil mode",
                        node.name
                    )))
                }
                Op::MaxPool(_)
                | Op::Affine(_)
                | Op::Pad(_)
                | Op::Slice(_)
                | Op::PermuteChannels(_)
                | Op::GatherMean(_) => {
                    return Err(Error::Model(format!(
                        "node {}: training does not support {} nodes (the networks pi-opt builds \
                         do not have them)",
                        node.name,
                        node.op.kind()
                    )))
                }
                Op::AvgPool(p) => Layer::AvgPool {
                    kernel: p.kernel,
                    stride: p.stride,
                },
                Op::GlobalAvgPool => Layer::GlobalAvgPool,
                Op::Flatten => Layer::Flatten,
            };
            layers.push(layer);
        }
        let mut last_use: Vec<usize> = (0..model.nodes.len()).collect();
        for (id, node) in model.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last_use[i] = last_use[i].max(id);
            }
        }
        last_use[model.output] = usize::MAX;
        let ad = device.clone().autodiff();
        let params = params
            .into_iter()
            .map(|v| {
                if trainable {
                    tensor1(v, &ad).require_grad()
                } else {
                    tensor1(v, &device)
                }
            })
            .collect();
        Ok(Net {
            arch: model.clone(),
            layers,
            last_use,
            params,
            info,
            running,
            device,
            trainable,
            classes,
        })
    }

    /// The graph this net was built from.
    pub fn arch(&self) -> &Model {
        &self.arch
    }

    /// Number of output classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Whether the net has BatchNorm and autodiff parameters.
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    /// Input shape `[c, h, w]`.
    pub fn input_shape(&self) -> [usize; 3] {
        self.arch.input
    }

    /// Names and shapes of the parameters, in storage order.
    pub fn param_info(&self) -> &[ParamInfo] {
        &self.info
    }

    /// The parameter tensors (flattened), in storage order.
    pub fn params(&self) -> &[Tensor<1>] {
        &self.params
    }

    /// Mutable parameter tensors, for the optimizer.
    pub fn params_mut(&mut self) -> &mut [Tensor<1>] {
        &mut self.params
    }

    /// The device tensors are created on for inference (autodiff-free).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A batch `[n, c, h, w]` of input values as a tensor, on the autodiff device when `grad`.
    pub fn input_tensor(&self, data: Vec<f32>, n: usize, grad: bool) -> Tensor<4> {
        let [c, h, w] = self.arch.input;
        let dev = if grad {
            self.device.clone().autodiff()
        } else {
            self.device.clone()
        };
        Tensor::from_data(TensorData::new(data, [n, c, h, w]), &dev)
    }

    /// Parameter values, in storage order.
    pub fn param_values(&self) -> Result<Vec<Vec<f32>>> {
        self.params
            .iter()
            .map(|p| values(p.clone().inner()))
            .collect()
    }

    /// BatchNorm running `(mean, var)` per convolution, in graph order.
    pub fn running_values(&self) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
        self.running
            .iter()
            .map(|r| Ok((values(r.mean.clone())?, values(r.var.clone())?)))
            .collect()
    }

    /// Replace parameters and running statistics (e.g. from a checkpoint), checking sizes.
    pub fn set_values(
        &mut self,
        params: Vec<Vec<f32>>,
        running: Vec<(Vec<f32>, Vec<f32>)>,
    ) -> Result<()> {
        if params.len() != self.params.len() || running.len() != self.running.len() {
            return Err(Error::Model(format!(
                "{} parameter tensors and {} BatchNorms given, the net has {} and {}",
                params.len(),
                running.len(),
                self.params.len(),
                self.running.len()
            )));
        }
        for (k, v) in params.iter().enumerate() {
            let n: usize = self.info[k].dims.iter().product();
            if v.len() != n {
                return Err(Error::Model(format!(
                    "parameter {} has {} values, expected {n}",
                    self.info[k].name,
                    v.len()
                )));
            }
        }
        let ad = self.device.clone().autodiff();
        self.params = params
            .into_iter()
            .map(|v| {
                if self.trainable {
                    tensor1(v, &ad).require_grad()
                } else {
                    tensor1(v, &self.device)
                }
            })
            .collect();
        for (r, (m, v)) in self.running.iter_mut().zip(running) {
            if m.len() != r.mean.dims()[0] || v.len() != r.var.dims()[0] {
                return Err(Error::Model(
                    "BatchNorm statistics of the wrong size".into(),
                ));
            }
            r.mean = tensor1(m, &self.device);
            r.var = tensor1(v, &self.device);
        }
        Ok(())
    }

    /// Logits `[n, classes]` in training mode (batch statistics; running statistics updated).
    pub fn forward_train(&mut self, x: Tensor<4>) -> Tensor<2> {
        let params = self.params.clone();
        let (out, stats) = self.run(&params, x, true);
        for (k, mean, var, count) in stats {
            let r = &mut self.running[k];
            let unbiased = if count > 1 {
                count as f64 / (count - 1) as f64
            } else {
                1.0
            };
            r.mean = r
                .mean
                .clone()
                .mul_scalar(1.0 - BN_MOMENTUM)
                .add(mean.inner().mul_scalar(BN_MOMENTUM));
            r.var = r
                .var
                .clone()
                .mul_scalar(1.0 - BN_MOMENTUM)
                .add(var.inner().mul_scalar(BN_MOMENTUM * unbiased));
        }
        out
    }

    /// Logits `[n, classes]` in evaluation mode (running statistics, no autodiff).
    pub fn forward_eval(&self, x: Tensor<4>) -> Tensor<2> {
        let params: Vec<Tensor<1>> = self.params.iter().map(|p| p.clone().inner()).collect();
        self.run(&params, x.inner(), false).0
    }

    /// Interpret the graph. Returns the logits and, in training, each BatchNorm's batch
    /// `(index, mean, biased variance, elements per channel)`.
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        p: &[Tensor<1>],
        x: Tensor<4>,
        train: bool,
    ) -> (Tensor<2>, Vec<(usize, Tensor<1>, Tensor<1>, usize)>) {
        let n = x.dims()[0];
        let mut vals: Vec<Option<Tensor<4>>> = vec![None; self.layers.len()];
        let mut stats = Vec::new();
        let mut x = Some(x);
        for (id, layer) in self.layers.iter().enumerate() {
            let inputs = &self.arch.nodes[id].inputs;
            let get = |k: usize| -> Tensor<4> {
                vals[inputs[k]]
                    .clone()
                    .expect("graph order guarantees inputs are computed and kept until last use")
            };
            let out = match layer {
                Layer::Input => x.take().expect("the input node is evaluated once"),
                Layer::Conv(c) => {
                    let w = p[c.weight].clone().reshape(c.dims);
                    let bias = c.bias.map(|b| p[b].clone());
                    let y = conv2d(get(0), w, bias, c.options.clone());
                    match c.bn {
                        None => y,
                        Some((g, b, r)) if train => {
                            let [bn, _, h, wd] = y.dims();
                            let o = batch_norm_train(y, p[g].clone(), p[b].clone(), BN_EPS);
                            stats.push((r, o.mean, o.variance, bn * h * wd));
                            o.output
                        }
                        Some((g, b, r)) => batch_norm(
                            y,
                            p[g].clone(),
                            p[b].clone(),
                            self.running[r].mean.clone(),
                            self.running[r].var.clone(),
                            BN_EPS,
                        ),
                    }
                }
                Layer::Linear {
                    weight,
                    bias,
                    in_features,
                    out_features,
                } => {
                    let w = p[*weight].clone().reshape([*in_features, *out_features]);
                    let y = linear(get(0).reshape([n, *in_features]), w, Some(p[*bias].clone()));
                    y.reshape([n, *out_features, 1, 1])
                }
                Layer::Relu(None) => relu(get(0)),
                Layer::Relu(Some(mask)) => {
                    let v = get(0);
                    v.clone() + (relu(v.clone()) - v) * mask.clone()
                }
                Layer::Identity => get(0),
                Layer::Add => get(0) + get(1),
                Layer::Slice { start, len } => get(0).narrow(1, *start, *len),
                Layer::Concat => Tensor::cat((0..inputs.len()).map(get).collect(), 1),
                Layer::AvgPool { kernel, stride } => {
                    avg_pool2d(get(0), AvgPoolOptions::new(*kernel).with_stride(*stride))
                }
                Layer::GlobalAvgPool => get(0).mean_dim(3).mean_dim(2),
                Layer::Flatten => {
                    let [_, c, h, w] = get(0).dims();
                    get(0).reshape([n, c * h * w, 1, 1])
                }
            };
            vals[id] = Some(out);
            for &i in inputs {
                if self.last_use[i] == id {
                    vals[i] = None;
                }
            }
        }
        let out = vals[self.arch.output].take().expect("output node computed");
        (out.reshape([n, self.classes]), stats)
    }

    /// The trained network as a graph: BatchNorm folded into each convolution
    /// (`w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`), linear layers back to `[out, in]`.
    pub fn to_model(&self) -> Result<Model> {
        let p = self.param_values()?;
        let running = self.running_values()?;
        let mut model = self.arch.clone();
        for (node, layer) in model.nodes.iter_mut().zip(&self.layers) {
            match (&mut node.op, layer) {
                (Op::Conv2d(conv), Layer::Conv(c)) => {
                    let mut w = p[c.weight].clone();
                    let mut b = match c.bias {
                        Some(b) => p[b].clone(),
                        None => vec![0.0; c.dims[0]],
                    };
                    if let Some((g, beta, r)) = c.bn {
                        let (mean, var) = &running[r];
                        let per = w.len() / c.dims[0];
                        for co in 0..c.dims[0] {
                            let s = p[g][co] / (var[co] + BN_EPS as f32).sqrt();
                            w[co * per..(co + 1) * per].iter_mut().for_each(|v| *v *= s);
                            b[co] = p[beta][co] + (b[co] - mean[co]) * s;
                        }
                    }
                    conv.weight = w;
                    conv.bias = b;
                }
                (
                    Op::Linear(l),
                    Layer::Linear {
                        weight,
                        bias,
                        in_features,
                        out_features,
                    },
                ) => {
                    let w_io = &p[*weight];
                    let (i, o) = (*in_features, *out_features);
                    let mut w = vec![0.0; i * o];
                    for r in 0..o {
                        for k in 0..i {
                            w[r * i + k] = w_io[k * o + r];
                        }
                    }
                    l.weight = w;
                    l.bias = p[*bias].clone();
                }
                _ => {}
            }
        }
        model.validate()?;
        Ok(model)
    }
}
