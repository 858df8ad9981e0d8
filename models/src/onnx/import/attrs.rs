//! Attribute access for one ONNX node, refusing attributes the operator mapping does not know.

use super::super::proto::AttributeProto;
use crate::ModelError;

/// Largest stride, padding, pool window or input dimension accepted (keeps all size arithmetic far
/// from overflow).
pub(super) const MAX_SIZE: i64 = 1 << 16;

/// The attributes of one node.
pub(super) struct Attrs<'a> {
    pub op: &'a str,
    pub node: &'a str,
    pub list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    /// Errors on any attribute not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), ModelError> {
        for a in self.list {
            let n = a.name.as_deref().unwrap_or("");
            if !known.contains(&n) {
                return Err(self.unsupported(n, "attribute not supported for this operator"));
            }
        }
        Ok(())
    }

    /// The attribute called `name`.
    pub fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name.as_deref() == Some(name))
    }

    /// An INT attribute with a default.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, ModelError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => {
                a.i.ok_or_else(|| self.unsupported(name, "expected an INT value"))
            }
        }
    }

    /// A FLOAT attribute with a default.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, ModelError> {
        match self.get(name) {
            None => Ok(default),
            Some(a) => {
                a.f.ok_or_else(|| self.unsupported(name, "expected a FLOAT value"))
            }
        }
    }

    /// An INTS attribute, if present.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    /// A STRING attribute with a default.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_else(|| default.to_string())
    }

    /// An `UnsupportedAttribute` error for this node.
    pub fn unsupported(&self, attribute: &str, reason: impl Into<String>) -> ModelError {
        ModelError::UnsupportedAttribute {
            op: self.op.to_string(),
            node: self.node.to_string(),
            attribute: attribute.to_string(),
            reason: reason.into(),
        }
    }

    /// A two-element INTS attribute as sizes in `1..=MAX_SIZE` (default if absent).
    pub fn pair(&self, name: &str, default: [usize; 2]) -> Result<[usize; 2], ModelError> {
        match self.ints(name) {
            None => Ok(default),
            Some(v) => match v.as_slice() {
                [p, q] if (1..=MAX_SIZE).contains(p) && (1..=MAX_SIZE).contains(q) => {
                    Ok([*p as usize, *q as usize])
                }
                _ => Err(self.unsupported(
                    name,
                    format!("expected two values in 1..={MAX_SIZE}, got {v:?}"),
                )),
            },
        }
    }

    /// 2-D `pads` as `[top, left, bottom, right]` (ONNX order `[t, l, b, r]`), each in 0..=MAX_SIZE.
    pub fn pads(&self) -> Result<[usize; 4], ModelError> {
        match self.ints("pads") {
            None => Ok([0; 4]),
            Some(p) if p.len() == 4 && p.iter().all(|v| (0..=MAX_SIZE).contains(v)) => {
                Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
            }
            Some(p) => Err(self.unsupported(
                "pads",
                format!("expected four non-negative 2-D pads, got {p:?}"),
            )),
        }
    }

    /// `[top, left, bottom, right]` padding from `auto_pad` (or `pads` when NOTSET) for an
    /// `h × w` input, kernel `k`, stride `s`, dilation 1.
    pub fn auto_pads(
        &self,
        (h, w): (usize, usize),
        k: [usize; 2],
        s: [usize; 2],
    ) -> Result<[usize; 4], ModelError> {
        let auto_pad = self.string("auto_pad", "NOTSET");
        match auto_pad.as_str() {
            "NOTSET" | "" => self.pads(),
            "VALID" => Ok([0; 4]),
            "SAME_UPPER" | "SAME_LOWER" => {
                let total = |n: usize, k: usize, s: usize| {
                    let out = n.div_ceil(s);
                    ((out - 1) * s + k).saturating_sub(n)
                };
                let (th, tw) = (total(h, k[0], s[0]), total(w, k[1], s[1]));
                let split = |t: usize| {
                    if auto_pad == "SAME_UPPER" {
                        (t / 2, t - t / 2)
                    } else {
                        (t - t / 2, t / 2)
                    }
                };
                let ((t, b), (l, r)) = (split(th), split(tw));
                Ok([t, l, b, r])
            }
            other => Err(self.unsupported("auto_pad", format!("unknown value {other}"))),
        }
    }
}
