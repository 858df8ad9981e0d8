//! Float32 `.npy` images: `[C, H, W]` or `[1, C, H, W]`, little-endian `<f4`, C order.
//!
//! The header is parsed strictly (NPY format versions 1–3): any other dtype, Fortran order, rank,
//! batch size, a zero dimension, a truncated file or trailing bytes is an error. The channel count
//! is not fixed here (grayscale data sets exist); the model checks it at inference.

use std::path::Path;

use crate::ModelError;

/// The 6-byte NPY magic string.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Reads an image `.npy` file: returns `[c, h, w]` and the CHW values.
pub fn load_image(path: impl AsRef<Path>) -> Result<([usize; 3], Vec<f32>), ModelError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_image(&bytes).map_err(|e| match e {
        ModelError::Npy(msg) => ModelError::Npy(format!("{}: {msg}", path.display())),
        other => other,
    })
}

/// Sample images of shape `shape`: one `.npy` (`[C, H, W]`, `[1, C, H, W]` or a batch
/// `[N, C, H, W]`) or a directory of them (sorted by name); at most `limit` images.
pub fn load_samples(
    path: impl AsRef<Path>,
    shape: [usize; 3],
    limit: usize,
) -> Result<Vec<Vec<f32>>, ModelError> {
    let path = path.as_ref();
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ModelError::Io { path: p, source }
    };
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(io(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "npy"))
            .collect();
        v.sort();
        v
    } else {
        vec![path.to_path_buf()]
    };
    let per: usize = shape.iter().product();
    let mut out = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).map_err(io(&f))?;
        let (dims, data) =
            read_f32(&bytes).map_err(|e| npy_err(format!("{}: {e}", f.display())))?;
        let chw = &dims[dims.len().saturating_sub(3)..];
        if chw != shape || dims.len() > 4 || per == 0 || data.len() % per != 0 {
            return Err(npy_err(format!(
                "{}: array of shape {dims:?} does not hold images of shape {shape:?}",
                f.display()
            )));
        }
        out.extend(
            data.chunks_exact(per)
                .take(limit.saturating_sub(out.len()))
                .map(<[f32]>::to_vec),
        );
    }
    if out.is_empty() {
        return Err(npy_err(format!(
            "{}: no sample images found",
            path.display()
        )));
    }
    Ok(out)
}

/// Parses an image `.npy` from memory (see [`load_image`]).
pub fn read_image(bytes: &[u8]) -> Result<([usize; 3], Vec<f32>), ModelError> {
    let (shape, data) = read_f32(bytes)?;
    let dims = match shape.as_slice() {
        [c, h, w] | [1, c, h, w] => [*c, *h, *w],
        [n, _, _, _] => {
            return Err(npy_err(format!(
                "batch of {n} images; expected [C, H, W] or [1, C, H, W]"
            )))
        }
        _ => {
            return Err(npy_err(format!(
                "shape {shape:?}; expected [C, H, W] or [1, C, H, W]"
            )))
        }
    };
    if dims.contains(&0) {
        return Err(npy_err(format!("empty image shape {shape:?}")));
    }
    Ok((dims, data))
}

/// Parses any float32 `.npy` array: returns its shape and values in C order.
pub fn read_f32(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(npy_err("not an .npy file (bad magic)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(npy_err("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        _ => {
            return Err(npy_err(format!(
                "unsupported format version {major}.{minor}"
            )))
        }
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| npy_err("truncated header"))?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| npy_err("header is not UTF-8"))?;
    let (descr, fortran, shape) = parse_header(header)?;
    if descr != "<f4" {
        return Err(npy_err(format!(
            "dtype '{descr}'; expected little-endian float32 '<f4'"
        )));
    }
    if fortran {
        return Err(npy_err("Fortran-ordered arrays are not supported"));
    }
    let numel = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= (1 << 32))
        .ok_or_else(|| npy_err(format!("shape {shape:?} is too large")))?;
    let body = &bytes[end..];
    if body.len() != numel * 4 {
        return Err(npy_err(format!(
            "data has {} bytes, shape {shape:?} needs {} ({})",
            body.len(),
            numel * 4,
            if body.len() < numel * 4 {
                "truncated file"
            } else {
                "trailing bytes"
            }
        )));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, data))
}

/// Writes a float32 `.npy` file (format 1.0, C order) with the given shape.
pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<(), ModelError> {
    let path = path.as_ref();
    let bytes = to_bytes(shape, data)?;
    std::fs::write(path, bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Encodes a float32 array as `.npy` bytes (format 1.0, C order).
pub fn to_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, ModelError> {
    let numel: usize = shape.iter().product();
    if numel != data.len() {
        return Err(npy_err(format!(
            "shape {shape:?} holds {numel} values, got {}",
            data.len()
        )));
    }
    let dims = match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let hl = u16::try_from(header.len()).map_err(|_| npy_err("header too long"))?;
    out.extend_from_slice(&hl.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    data.iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    Ok(out)
}

/// Shorthand for an [`ModelError::Npy`].
fn npy_err(msg: impl Into<String>) -> ModelError {
    ModelError::Npy(msg.into())
}

/// Parses the header dict `{'descr': ..., 'fortran_order': ..., 'shape': (...), }`; every key must
/// appear exactly once and no other key is allowed.
fn parse_header(h: &str) -> Result<(String, bool, Vec<usize>), ModelError> {
    let mut p = Parser {
        s: h.trim_end().as_bytes(),
        i: 0,
    };
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let dup = match key.as_str() {
            "descr" => descr.replace(p.string()?).is_some(),
            "fortran_order" => fortran.replace(p.boolean()?).is_some(),
            "shape" => shape.replace(p.tuple()?).is_some(),
            other => return Err(npy_err(format!("unexpected header key '{other}'"))),
        };
        if dup {
            return Err(npy_err(format!("duplicate header key '{key}'")));
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(npy_err("garbage after the header dict"));
    }
    match (descr, fortran, shape) {
        (Some(d), Some(f), Some(s)) => Ok((d, f, s)),
        _ => Err(npy_err("header lacks 'descr', 'fortran_order' or 'shape'")),
    }
}

/// A cursor over the header text.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    /// Skips spaces.
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `c` or fails.
    fn expect(&mut self, c: u8) -> Result<(), ModelError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(npy_err(format!(
                "malformed header: expected '{}' at offset {}",
                c as char, self.i
            )))
        }
    }

    /// A quoted string ('...' or "...") without escapes.
    fn string(&mut self) -> Result<String, ModelError> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(npy_err(format!(
                    "malformed header: expected a string at offset {}",
                    self.i
                )))
            }
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err(npy_err("malformed header: unterminated string"));
        }
        let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(v)
    }

    /// `True` or `False`.
    fn boolean(&mut self) -> Result<bool, ModelError> {
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else {
            Err(npy_err("malformed header: expected True or False"))
        }
    }

    /// A tuple of non-negative integers: `()`, `(3,)`, `(1, 3, 32, 32)`.
    fn tuple(&mut self) -> Result<Vec<usize>, ModelError> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let v: usize = digits
                .parse()
                .map_err(|_| npy_err(format!("malformed shape at offset {start}")))?;
            out.push(v);
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                break;
            }
        }
        Ok(out)
    }
}
