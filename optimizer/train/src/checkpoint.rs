//! Training checkpoints: parameters, BatchNorm statistics, momentum buffers, finished epochs
//! and their statistics, so that an interrupted run resumes where it stopped.
//!
//! Layout: `PITRAIN1` magic, u64 LE length of a JSON header ([`Meta`]), the header, then the
//! little-endian f32 values of the parameters, the present velocity buffers and the BatchNorm
//! `(mean, var)` pairs, in that order. Written to a temporary file and renamed into place.

use crate::error::{Error, Result};
use crate::net::{Net, ParamInfo};
use crate::sgd::Sgd;
use crate::trainer::{EpochStats, TrainConfig};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"PITRAIN1";

/// The JSON header of a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Meta {
    /// Epochs completed (the next epoch to run is this number, counting from 0).
    pub epochs_done: usize,
    /// The configuration the run was started with.
    pub config: TrainConfig,
    /// Fingerprint of the architecture (weights excluded).
    pub arch: String,
    /// Parameter names and shapes.
    pub params: Vec<ParamInfo>,
    /// Which parameters have a velocity buffer.
    pub has_velocity: Vec<bool>,
    /// Channels of each BatchNorm.
    pub running: Vec<usize>,
    /// Statistics of the completed epochs.
    pub history: Vec<EpochStats>,
}

/// FNV-1a of the architecture with all weights removed.
pub fn arch_fingerprint(model: &models::Model) -> String {
    let mut m = model.clone();
    for n in &mut m.nodes {
        match &mut n.op {
            models::Op::Conv2d(c) => {
                c.weight.clear();
                c.bias.clear();
            }
            models::Op::Linear(l) => {
                l.weight.clear();
                l.bias.clear();
            }
            _ => {}
        }
    }
    let text = serde_json::to_string(&(m.input, &m.nodes, m.output)).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Write a checkpoint of `net` and `sgd` after `epochs_done` epochs.
pub fn save(
    path: &Path,
    net: &Net,
    sgd: &Sgd,
    config: &TrainConfig,
    epochs_done: usize,
    history: &[EpochStats],
) -> Result<()> {
    let params = net.param_values()?;
    let running = net.running_values()?;
    let velocity = sgd.velocity_values()?;
    let meta = Meta {
        epochs_done,
        config: config.clone(),
        arch: arch_fingerprint(net.arch()),
        params: net.param_info().to_vec(),
        has_velocity: velocity.iter().map(Option::is_some).collect(),
        running: running.iter().map(|(m, _)| m.len()).collect(),
        history: history.to_vec(),
    };
    let header = serde_json::to_vec(&meta).map_err(|e| Error::Checkpoint {
        path: path.into(),
        msg: e.to_string(),
    })?;
    let mut buf =
        Vec::with_capacity(16 + header.len() + 4 * params.iter().map(Vec::len).sum::<usize>() * 2);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(header.len() as u64).to_le_bytes());
    buf.extend_from_slice(&header);
    let mut put = |v: &[f32]| {
        v.iter()
            .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()))
    };
    params.iter().for_each(|p| put(p));
    velocity.iter().flatten().for_each(|v| put(v));
    running.iter().for_each(|(m, v)| {
        put(m);
        put(v);
    });
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(&buf)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Load a checkpoint into `net` and `sgd`, checking it belongs to the same architecture.
pub fn load(path: &Path, net: &mut Net, sgd: &mut Sgd) -> Result<Meta> {
    let bad = |msg: String| Error::Checkpoint {
        path: path.into(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad("not a pi-train checkpoint (bad magic)".into()));
    }
    let hlen = u64::from_le_bytes(
        bytes[8..16]
            .try_into()
            .map_err(|_| bad("truncated header".into()))?,
    ) as usize;
    let header = bytes
        .get(16..16 + hlen)
        .ok_or_else(|| bad("truncated header".into()))?;
    let meta: Meta = serde_json::from_slice(header).map_err(|e| bad(format!("header: {e}")))?;
    if meta.arch != arch_fingerprint(net.arch()) {
        return Err(bad("written for a different architecture".into()));
    }
    if meta.params != net.param_info() {
        return Err(bad(
            "parameter names or shapes differ from the network's".into()
        ));
    }
    let mut at = 16 + hlen;
    let mut take = |n: usize| -> Result<Vec<f32>> {
        let end = at + 4 * n;
        let raw = bytes
            .get(at..end)
            .ok_or_else(|| bad("truncated tensor data".into()))?;
        at = end;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    };
    let sizes: Vec<usize> = meta
        .params
        .iter()
        .map(|p| p.dims.iter().product())
        .collect();
    let params = sizes.iter().map(|&n| take(n)).collect::<Result<Vec<_>>>()?;
    let velocity = sizes
        .iter()
        .zip(&meta.has_velocity)
        .map(|(&n, &has)| if has { take(n).map(Some) } else { Ok(None) })
        .collect::<Result<Vec<_>>>()?;
    let running = meta
        .running
        .iter()
        .map(|&c| Ok((take(c)?, take(c)?)))
        .collect::<Result<Vec<_>>>()?;
    if at != bytes.len() {
        return Err(bad(format!("{} trailing bytes", bytes.len() - at)));
    }
    net.set_values(params, running)?;
    sgd.set_velocity_values(velocity, net.device())?;
    Ok(meta)
}
