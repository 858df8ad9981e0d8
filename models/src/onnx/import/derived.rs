//! Tensors derived from one computed tensor by public data movement and averaging, of any rank:
//! how the dynamo exporter writes `AdaptiveAvgPool2d` to a size that does not divide the input
//! (`Transpose` → `GatherND` → masks (`Where`) → `Gather` / `Add` / `Div` or `ReduceMean` →
//! `Reshape`). Each element is traced as a list of (source element, coefficient); when the result
//! is used as an ordinary `[N, C, H, W]` / `[N, C]` tensor it becomes one [`GatherMean`] node,
//! provided every element is a plain average (all its coefficients equal 1/d for an integer d):
//! such a map reveals nothing but the architecture and costs nothing on shares.

use super::super::proto::NodeProto;
use super::attrs::Attrs;
use super::core::{norm_axis, onnx_dims, unsupported_op, Importer, Value};
use super::tensor::{Data, Tensor};
use crate::graph::{GatherMean, Op, Shape, Stage};
use crate::ModelError;

/// Largest derived tensor traced (elements).
const MAX_ELEMENTS: usize = 1 << 24;
/// Largest number of (source, coefficient) terms over a derived tensor.
const MAX_TERMS: usize = 1 << 26;

/// A traced tensor: per element, the source elements it sums with their coefficients.
#[derive(Clone, Debug)]
pub(super) struct Derived {
    pub src: usize,
    pub dims: Vec<usize>,
    pub terms: Vec<Vec<(u32, f32)>>,
}

/// Operators a derived tensor flows through.
pub(super) const DERIVED_OPS: &[&str] = &[
    "Transpose",
    "GatherND",
    "Gather",
    "Where",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "ReduceMean",
    "ReduceSum",
    "Reshape",
    "Squeeze",
    "Unsqueeze",
    "Identity",
];

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn unravel(mut p: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for i in (0..dims.len()).rev() {
        idx[i] = p % dims[i].max(1);
        p /= dims[i].max(1);
    }
    idx
}

/// Index into a tensor of `src` dims broadcast to `out` dims.
fn broadcast_at(src: &[usize], out: &[usize], idx: &[usize]) -> usize {
    let off = out.len() - src.len();
    let st = strides(src);
    src.iter()
        .enumerate()
        .map(|(i, &d)| if d == 1 { 0 } else { idx[i + off] * st[i] })
        .sum()
}

impl Derived {
    fn check(self, node: &str) -> Result<Derived, ModelError> {
        let n: usize = self.dims.iter().product();
        let t: usize = self.terms.iter().map(Vec::len).sum();
        if n > MAX_ELEMENTS || t > MAX_TERMS || n != self.terms.len() {
            return Err(unsupported_op(
                "GatherND",
                "a traced data-movement tensor that is too large",
                node,
            ));
        }
        Ok(self)
    }

    /// The identity trace of a computed tensor of ONNX dims `dims`.
    pub fn identity(src: usize, dims: Vec<usize>) -> Derived {
        let n: usize = dims.iter().product();
        Derived {
            src,
            dims,
            terms: (0..n as u32).map(|i| vec![(i, 1.0)]).collect(),
        }
    }

    fn transpose(&self, perm: &[usize], node: &str) -> Result<Derived, ModelError> {
        let r = self.dims.len();
        let mut seen = vec![false; r];
        if perm.len() != r
            || perm
                .iter()
                .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
        {
            return Err(ModelError::onnx(
                node,
                format!("bad Transpose perm {perm:?}"),
            ));
        }
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        let st = strides(&self.dims);
        let n: usize = dims.iter().product();
        let terms = (0..n)
            .map(|p| {
                let o = unravel(p, &dims);
                let src: usize = (0..r).map(|k| o[k] * st[perm[k]]).sum();
                self.terms[src].clone()
            })
            .collect();
        Derived {
            src: self.src,
            dims,
            terms,
        }
        .check(node)
    }

    fn gather_nd(&self, idx: &Tensor, node: &str) -> Result<Derived, ModelError> {
        let Data::I64(iv) = &idx.data else {
            return Err(ModelError::onnx(node, "GatherND indices must be integers"));
        };
        let q = *idx.dims.last().unwrap_or(&0);
        if q == 0 || q > self.dims.len() {
            return Err(ModelError::onnx(
                node,
                "GatherND index tuples of a bad length",
            ));
        }
        let outer: usize = idx.dims[..idx.dims.len() - 1].iter().product();
        let inner: usize = self.dims[q..].iter().product();
        let st = strides(&self.dims);
        let mut terms = Vec::with_capacity(outer * inner);
        for t in 0..outer {
            let mut base = 0usize;
            for k in 0..q {
                let d = self.dims[k] as i64;
                let v = iv[t * q + k];
                let v = if v < 0 { v + d } else { v };
                if !(0..d).contains(&v) {
                    return Err(ModelError::onnx(
                        node,
                        format!("GatherND index {v} out of range"),
                    ));
                }
                base += v as usize * st[k];
            }
            terms.extend(self.terms[base..base + inner].iter().cloned());
        }
        let mut dims = idx.dims[..idx.dims.len() - 1].to_vec();
        dims.extend_from_slice(&self.dims[q..]);
        Derived {
            src: self.src,
            dims,
            terms,
        }
        .check(node)
    }

    fn gather(&self, idx: &Tensor, axis: usize, node: &str) -> Result<Derived, ModelError> {
        let Data::I64(iv) = &idx.data else {
            return Err(ModelError::onnx(node, "Gather indices must be integers"));
        };
        let d = self.dims[axis] as i64;
        let picks: Vec<usize> = iv
            .iter()
            .map(|&v| {
                let v = if v < 0 { v + d } else { v };
                (0..d).contains(&v).then_some(v as usize)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| ModelError::onnx(node, "Gather index out of range"))?;
        let mut dims = self.dims[..axis].to_vec();
        dims.extend_from_slice(&idx.dims);
        dims.extend_from_slice(&self.dims[axis + 1..]);
        let outer: usize = self.dims[..axis].iter().product();
        let inner: usize = self.dims[axis + 1..].iter().product();
        let mut terms = Vec::with_capacity(outer * picks.len() * inner);
        for o in 0..outer {
            for &p in &picks {
                let at = (o * self.dims[axis] + p) * inner;
                terms.extend(self.terms[at..at + inner].iter().cloned());
            }
        }
        Derived {
            src: self.src,
            dims,
            terms,
        }
        .check(node)
    }

    fn scale(&self, t: &Tensor, invert: bool, node: &str) -> Result<Derived, ModelError> {
        let vals = t.as_f32();
        if vals.is_empty()
            || t.dims.len() > self.dims.len()
            || t.dims
                .iter()
                .rev()
                .zip(self.dims.iter().rev())
                .any(|(&a, &b)| a != 1 && a != b)
        {
            return Err(unsupported_op(
                "Mul",
                "Mul/Div of a traced tensor by a constant of another shape",
                node,
            ));
        }
        let mut out = self.clone();
        for (p, terms) in out.terms.iter_mut().enumerate() {
            let idx = unravel(p, &self.dims);
            let v = vals[broadcast_at(&t.dims, &self.dims, &idx)];
            let f = if invert { 1.0 / v } else { v };
            terms.iter_mut().for_each(|(_, c)| *c *= f);
        }
        Ok(out)
    }

    fn reduce(
        &self,
        axes: &[usize],
        keep: bool,
        mean: bool,
        node: &str,
    ) -> Result<Derived, ModelError> {
        let keep_dims: Vec<usize> = self
            .dims
            .iter()
            .enumerate()
            .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
            .collect();
        let count: usize = axes.iter().map(|&a| self.dims[a]).product();
        let n: usize = keep_dims.iter().product();
        let kst = strides(&keep_dims);
        let mut terms = vec![Vec::new(); n];
        for (p, t) in self.terms.iter().enumerate() {
            let idx = unravel(p, &self.dims);
            let q: usize = idx
                .iter()
                .enumerate()
                .map(|(i, &x)| if axes.contains(&i) { 0 } else { x * kst[i] })
                .sum();
            let f = if mean { 1.0 / count as f32 } else { 1.0 };
            terms[q].extend(t.iter().map(|&(s, c)| (s, c * f)));
        }
        let dims = if keep {
            keep_dims
        } else {
            self.dims
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        Derived {
            src: self.src,
            dims,
            terms,
        }
        .check(node)
    }
}

impl Importer {
    /// The traced form of input `i` (a derived tensor, or a computed one traced from scratch).
    fn derived_in(
        &self,
        n: &NodeProto,
        i: usize,
        node: &str,
    ) -> Result<Option<Derived>, ModelError> {
        Ok(match self.input_value(n, i, node)? {
            Some(Value::Derived(d)) => Some(d),
            Some(Value::Node(x)) => Some(Derived::identity(x, onnx_dims(&self.shapes[x]))),
            _ => None,
        })
    }

    /// One operator on traced tensors (see [`DERIVED_OPS`]).
    pub(super) fn derived_node(
        &mut self,
        n: &NodeProto,
        node: &str,
        a: &Attrs,
    ) -> Result<(), ModelError> {
        let op = a.op;
        let refuse =
            |what: &str| unsupported_op(op, format!("{op} ({what}) on a traced tensor"), node);
        let out = match op {
            "Transpose" => {
                let d = self
                    .derived_in(n, 0, node)?
                    .ok_or_else(|| refuse("constant input"))?;
                let perm: Vec<usize> = match a.ints("perm") {
                    Some(p) => p.iter().map(|&v| v as usize).collect(),
                    None => (0..d.dims.len()).rev().collect(),
                };
                d.transpose(&perm, node)?
            }
            "GatherND" => {
                if a.int("batch_dims", 0)? != 0 {
                    return Err(refuse("batch_dims"));
                }
                let d = self
                    .derived_in(n, 0, node)?
                    .ok_or_else(|| refuse("constant data"))?;
                let idx = self
                    .const_in(n, 1, node)?
                    .ok_or_else(|| refuse("computed indices"))?;
                d.gather_nd(&idx, node)?
            }
            "Gather" => {
                let d = self
                    .derived_in(n, 0, node)?
                    .ok_or_else(|| refuse("constant data"))?;
                let idx = self
                    .const_in(n, 1, node)?
                    .ok_or_else(|| refuse("computed indices"))?;
                let axis =
                    norm_axis(a.int("axis", 0)?, d.dims.len()).ok_or_else(|| refuse("axis"))?;
                d.gather(&idx, axis, node)?
            }
            "Where" => {
                let cond = self
                    .const_in(n, 0, node)?
                    .ok_or_else(|| refuse("computed condition"))?;
                let side = |i: usize| -> Result<Option<Derived>, ModelError> {
                    match self.input_value(n, i, node)? {
                        Some(Value::Const(t)) if t.as_f32().iter().all(|&v| v == 0.0) => Ok(None),
                        Some(Value::Const(_)) => Err(refuse("a non-zero constant branch")),
                        _ => self.derived_in(n, i, node),
                    }
                };
                let (x, y) = (side(1)?, side(2)?);
                let dims = x
                    .as_ref()
                    .or(y.as_ref())
                    .map(|d| d.dims.clone())
                    .ok_or_else(|| refuse("two constants"))?;
                let src = x.as_ref().or(y.as_ref()).map(|d| d.src).unwrap_or(0);
                if [&x, &y]
                    .iter()
                    .any(|v| v.as_ref().is_some_and(|d| d.dims != dims || d.src != src))
                    || cond.dims.len() > dims.len()
                {
                    return Err(refuse("shapes"));
                }
                let c = cond.as_f32();
                let terms = (0..dims.iter().product::<usize>())
                    .map(|p| {
                        let sel = c[broadcast_at(&cond.dims, &dims, &unravel(p, &dims))] != 0.0;
                        let pick = if sel { &x } else { &y };
                        pick.as_ref()
                            .map(|d| d.terms[p].clone())
                            .unwrap_or_default()
                    })
                    .collect();
                Derived { src, dims, terms }
            }
            "Add" | "Sub" => {
                let (Some(x), Some(y)) =
                    (self.derived_in(n, 0, node)?, self.derived_in(n, 1, node)?)
                else {
                    return Err(refuse("a constant operand"));
                };
                if x.dims != y.dims || x.src != y.src {
                    return Err(refuse("operands of different shapes or sources"));
                }
                let sign = if op == "Sub" { -1.0 } else { 1.0 };
                let terms = x
                    .terms
                    .iter()
                    .zip(&y.terms)
                    .map(|(p, q)| {
                        p.iter()
                            .copied()
                            .chain(q.iter().map(|&(s, c)| (s, sign * c)))
                            .collect()
                    })
                    .collect();
                Derived {
                    src: x.src,
                    dims: x.dims,
                    terms,
                }
                .check(node)?
            }
            "Mul" | "Div" => {
                let (d, t) = match (self.derived_in(n, 0, node)?, self.const_in_opt(n, 1, node)) {
                    (Some(d), Some(t)) => (d, t),
                    _ if op == "Mul" => {
                        match (self.const_in_opt(n, 0, node), self.derived_in(n, 1, node)?) {
                            (Some(t), Some(d)) => (d, t),
                            _ => return Err(refuse("two computed operands")),
                        }
                    }
                    _ => return Err(refuse("a computed divisor")),
                };
                d.scale(&t, op == "Div", node)?
            }
            "ReduceMean" | "ReduceSum" => {
                let d = self
                    .derived_in(n, 0, node)?
                    .ok_or_else(|| refuse("constant input"))?;
                let axes = match a.ints("axes") {
                    Some(v) => v,
                    None => self.i64_in(n, 1, node)?.unwrap_or_default(),
                };
                let mut ax: Vec<usize> = axes
                    .iter()
                    .map(|&v| norm_axis(v, d.dims.len()))
                    .collect::<Option<_>>()
                    .ok_or_else(|| refuse("axes"))?;
                if ax.is_empty() {
                    ax = (0..d.dims.len()).collect();
                }
                d.reduce(&ax, a.int("keepdims", 1)? != 0, op == "ReduceMean", node)?
            }
            "Reshape" | "Squeeze" | "Unsqueeze" | "Identity" => {
                let d = self
                    .derived_in(n, 0, node)?
                    .ok_or_else(|| refuse("constant input"))?;
                let dims = match op {
                    "Reshape" => {
                        let target = self
                            .i64_in(n, 1, node)?
                            .ok_or_else(|| refuse("computed shape"))?;
                        super::shape_ops::resolve_reshape(
                            &d.dims,
                            &target,
                            a.int("allowzero", 0)? != 0,
                            node,
                        )?
                    }
                    "Identity" => d.dims.clone(),
                    _ => {
                        let axes = match a.ints("axes") {
                            Some(v) => Some(v),
                            None => self.i64_in(n, 1, node)?,
                        };
                        super::shape_ops::reshape_dims_for_squeeze(
                            op == "Unsqueeze",
                            &d.dims,
                            axes.as_deref(),
                            node,
                        )?
                    }
                };
                Derived { dims, ..d }
            }
            _ => return Err(refuse("operator")),
        };
        self.bind(n, Value::Derived(out), node)
    }

    /// Turns a traced tensor that is now an ordinary `[1, c, h, w]` / `[1, n]` tensor into a
    /// [`GatherMean`] node (every element must be a plain average of source elements).
    pub(super) fn materialize(
        &mut self,
        d: &Derived,
        name: &str,
        stage: Option<Stage>,
    ) -> Result<usize, ModelError> {
        let refuse = |what: String| unsupported_op("GatherND", what, name);
        let out = match d.dims.as_slice() {
            [1, c, h, w] => Shape::Chw {
                c: *c,
                h: *h,
                w: *w,
            },
            [1, k] => Shape::Flat(*k),
            other => {
                return Err(refuse(format!(
                    "a traced tensor of dims {other:?} used as a feature map"
                )))
            }
        };
        let mut sets = Vec::with_capacity(d.terms.len());
        let mut divisors = Vec::with_capacity(d.terms.len());
        for t in &d.terms {
            let mut t = t.clone();
            t.sort_by_key(|&(s, _)| s);
            let mut merged: Vec<(u32, f32)> = Vec::with_capacity(t.len());
            for (s, c) in t {
                match merged.last_mut() {
                    Some(last) if last.0 == s => last.1 += c,
                    _ => merged.push((s, c)),
                }
            }
            merged.retain(|&(_, c)| c.abs() > 1e-7);
            let c0 = merged.first().map_or(1.0, |&(_, c)| c);
            let div = (1.0 / c0).round();
            let plain = c0 > 0.0
                && (1.0..=65536.0).contains(&div)
                && merged.iter().all(|&(_, c)| ((c * div) - 1.0).abs() < 1e-4);
            if !plain {
                return Err(refuse(format!(
                    "data movement with coefficients {:?} (only averages 1/d of source elements are public structure)",
                    merged.iter().map(|&(_, c)| c).take(4).collect::<Vec<_>>()
                )));
            }
            sets.push(merged.into_iter().map(|(s, _)| s).collect());
            divisors.push(div as u32);
        }
        let op = Op::GatherMean(GatherMean {
            out,
            sets,
            divisors,
        });
        self.push(name, op, vec![d.src], stage)
    }
}
