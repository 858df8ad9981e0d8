//! Constant tensors: decoding `TensorProto`s (inline, raw or external data) and the small
//! tensor algebra the importer folds at load time (broadcasting, element-wise arithmetic).

use std::path::{Component, Path, PathBuf};

use super::super::proto::*;
use crate::ModelError;

/// Largest external-data file region read for one tensor (4 GiB).
const MAX_EXTERNAL_BYTES: u64 = 1 << 32;

/// A constant tensor: initializer, `Constant` node or folded shape arithmetic.
#[derive(Clone, Debug)]
pub(super) struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

/// Element data of a [`Tensor`] (integers and booleans are both `I64`).
#[derive(Clone, Debug)]
pub(super) enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Tensor {
    /// A 1-D int64 tensor.
    pub fn ints(v: Vec<i64>) -> Tensor {
        Tensor {
            dims: vec![v.len()],
            data: Data::I64(v),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }

    /// The values as f32 (integers converted).
    pub fn as_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

/// Where external tensor data is read from (the directory of the model file).
#[derive(Clone, Debug, Default)]
pub(super) struct DataSource {
    pub base_dir: Option<PathBuf>,
}

impl DataSource {
    /// Reads the external region of tensor `name` described by `entries` (ONNX keys `location`,
    /// `offset`, `length`). The location must be a relative path inside the model's directory.
    fn external(
        &self,
        entries: &[StringStringEntryProto],
        name: &str,
    ) -> Result<Vec<u8>, ModelError> {
        let get = |key: &str| {
            entries
                .iter()
                .find(|e| e.key.as_deref() == Some(key))
                .and_then(|e| e.value.clone())
        };
        let location = get("location")
            .ok_or_else(|| ModelError::onnx(name, "external data without a location"))?;
        let rel = Path::new(&location);
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(ModelError::onnx(
                name,
                format!("external data location `{location}` must be a relative path inside the model's directory"),
            ));
        }
        let base = self.base_dir.as_ref().ok_or_else(|| {
            ModelError::onnx(
                name,
                format!(
                    "tensor data lives in the external file `{location}`; load the model from its \
                     file (models::onnx::load) so the file can be found next to it"
                ),
            )
        })?;
        let path = base.join(rel);
        let parse = |key: &str| -> Result<Option<u64>, ModelError> {
            get(key)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        ModelError::onnx(name, format!("external data {key} `{v}` is not a number"))
                    })
                })
                .transpose()
        };
        let offset = parse("offset")?.unwrap_or(0);
        let length = parse("length")?;
        use std::io::{Read, Seek, SeekFrom};
        let io = |source| ModelError::Io {
            path: path.clone(),
            source,
        };
        let mut f = std::fs::File::open(&path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        let len = length.unwrap_or(size.saturating_sub(offset));
        if offset.checked_add(len).is_none_or(|end| end > size) || len > MAX_EXTERNAL_BYTES {
            return Err(ModelError::onnx(
                name,
                format!(
                    "external data region {offset}+{len} lies outside `{}` ({size} bytes)",
                    path.display()
                ),
            ));
        }
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).map_err(io)?;
        Ok(buf)
    }
}

/// Decodes a `TensorProto` (float32, double, int64, int32, bool; inline, raw or external data).
pub(super) fn decode(t: &TensorProto, name: &str, src: &DataSource) -> Result<Tensor, ModelError> {
    let mut dims = Vec::with_capacity(t.dims.len());
    for &d in &t.dims {
        if d < 0 {
            return Err(ModelError::onnx(name, format!("negative dimension {d}")));
        }
        dims.push(d as usize);
    }
    let numel = checked_numel(&dims).ok_or_else(|| ModelError::onnx(name, "tensor too large"))?;
    let external;
    let raw = if t.data_location == Some(1) || !t.external_data.is_empty() {
        external = src.external(&t.external_data, name)?;
        Some(external.as_slice())
    } else {
        t.raw_data.as_deref()
    };
    let dt = t.data_type.unwrap_or(0);
    let data = match dt {
        DT_FLOAT => Data::F32(match raw {
            Some(r) => chunks::<4>(r, numel, name)?
                .map(f32::from_le_bytes)
                .collect(),
            None => t.float_data.clone(),
        }),
        DT_DOUBLE => Data::F32(match raw {
            Some(r) => chunks::<8>(r, numel, name)?
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
            None => t.double_data.iter().map(|&v| v as f32).collect(),
        }),
        DT_INT64 => Data::I64(match raw {
            Some(r) => chunks::<8>(r, numel, name)?
                .map(i64::from_le_bytes)
                .collect(),
            None => t.int64_data.clone(),
        }),
        DT_INT32 => Data::I64(match raw {
            Some(r) => chunks::<4>(r, numel, name)?
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
            None => t.int32_data.iter().map(|&v| v as i64).collect(),
        }),
        DT_BOOL => Data::I64(match raw {
            Some(r) => chunks::<1>(r, numel, name)?
                .map(|b| (b[0] != 0) as i64)
                .collect(),
            None => t.int32_data.iter().map(|&v| (v != 0) as i64).collect(),
        }),
        other => {
            return Err(ModelError::onnx(
                name,
                format!(
                "tensor data type {other} not supported (float32, double, int32, int64, bool are)"
            ),
            ))
        }
    };
    let len = match &data {
        Data::F32(v) => v.len(),
        Data::I64(v) => v.len(),
    };
    if len != numel {
        return Err(ModelError::onnx(
            name,
            format!("tensor has {len} values, dims {dims:?} need {numel}"),
        ));
    }
    Ok(Tensor { dims, data })
}

/// Most elements of a constant tensor (decoded or folded).
const MAX_CONSTANT_ELEMENTS: usize = 1 << 31;

/// Elements of a tensor of `dims`, if within [`MAX_CONSTANT_ELEMENTS`].
fn checked_numel(dims: &[usize]) -> Option<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_CONSTANT_ELEMENTS)
}

/// Splits little-endian raw data into `N`-byte elements, checking the length.
fn chunks<'a, const N: usize>(
    raw: &'a [u8],
    numel: usize,
    name: &str,
) -> Result<impl Iterator<Item = [u8; N]> + 'a, ModelError> {
    if raw.len() != numel * N {
        return Err(ModelError::onnx(
            name,
            format!("raw data has {} bytes, expected {}", raw.len(), numel * N),
        ));
    }
    Ok(raw.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    }))
}

/// Numpy-style broadcast of two shapes.
fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        *o = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Index into a tensor of dims `src` for output position `pos` of a broadcast to `out`.
fn broadcast_index(src: &[usize], out: &[usize], mut pos: usize) -> usize {
    let mut idx = 0;
    let mut stride = 1;
    for i in (0..out.len()).rev() {
        let coord = pos % out[i];
        pos /= out[i];
        if i + src.len() >= out.len() {
            let d = src[i + src.len() - out.len()];
            if d != 1 {
                idx += coord * stride;
            }
            stride *= d;
        }
    }
    idx
}

/// Element-wise binary operation on two constant tensors with broadcasting. Integer operands stay
/// integers (division truncates as ONNX does); a float operand makes the result float.
pub(super) fn binary(a: &Tensor, b: &Tensor, op: &str, node: &str) -> Result<Tensor, ModelError> {
    let dims = broadcast_dims(&a.dims, &b.dims).ok_or_else(|| {
        ModelError::onnx(
            node,
            format!(
                "{op} of shapes {:?} and {:?} does not broadcast",
                a.dims, b.dims
            ),
        )
    })?;
    // Two constants within the bound can broadcast to far more ([n, 1] op [1, n]).
    let n = checked_numel(&dims).ok_or_else(|| {
        ModelError::onnx(
            node,
            format!(
                "{op} of constants of shapes {:?} and {:?} is too large to fold",
                a.dims, b.dims
            ),
        )
    })?;
    let ia = |p| broadcast_index(&a.dims, &dims, p);
    let ib = |p| broadcast_index(&b.dims, &dims, p);
    let data = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => {
            let f = |p: i64, q: i64| -> Option<i64> {
                match op {
                    "Add" => p.checked_add(q),
                    "Sub" => p.checked_sub(q),
                    "Mul" => p.checked_mul(q),
                    "Div" => p.checked_div(q),
                    "Equal" => Some((p == q) as i64),
                    "Max" => Some(p.max(q)),
                    "Min" => Some(p.min(q)),
                    _ => None,
                }
            };
            let mut v = Vec::with_capacity(n);
            for p in 0..n {
                v.push(f(x[ia(p)], y[ib(p)]).ok_or_else(|| {
                    ModelError::onnx(node, format!("integer {op} overflows or is undefined"))
                })?);
            }
            Data::I64(v)
        }
        _ => {
            let (x, y) = (a.as_f32(), b.as_f32());
            let f = |p: f32, q: f32| -> f32 {
                match op {
                    "Add" => p + q,
                    "Sub" => p - q,
                    "Mul" => p * q,
                    "Div" => p / q,
                    "Pow" => p.powf(q),
                    "Max" => p.max(q),
                    "Min" => p.min(q),
                    _ => f32::NAN,
                }
            };
            if op == "Equal" {
                Data::I64((0..n).map(|p| (x[ia(p)] == y[ib(p)]) as i64).collect())
            } else {
                Data::F32((0..n).map(|p| f(x[ia(p)], y[ib(p)])).collect())
            }
        }
    };
    Ok(Tensor { dims, data })
}

/// Broadcasts a constant operand of a binary op with a computed tensor of ONNX dims `target`
/// (`[1, c, h, w]` or `[1, n]`) to a per-tensor (1), per-channel (c) or per-element list, in CHW
/// order; `None` if the constant has another shape or would enlarge the computed tensor.
pub(super) fn broadcast_to_tensor(t: &Tensor, target: &[usize]) -> Option<Vec<f32>> {
    let out = broadcast_dims(&t.dims, target)?;
    if out != target {
        return None;
    }
    let vals = t.as_f32();
    if vals.len() == 1 {
        return Some(vals);
    }
    let chan_only = target.len() >= 2
        && t.dims
            .iter()
            .rev()
            .enumerate()
            .all(|(i, &d)| d == 1 || i + 2 == target.len());
    if chan_only {
        return Some(vals);
    }
    let n: usize = target.iter().product();
    Some(
        (0..n)
            .map(|p| vals[broadcast_index(&t.dims, target, p)])
            .collect(),
    )
}
