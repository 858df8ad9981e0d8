//! This host's measured figures for the planned estimate ([`protocol::cost::HostModel`]), cached
//! in a small JSON file and measured again (≈ 2 s) when the file is missing, unreadable, out of
//! range or written on another CPU, HE kernel path, thread count or `pi-opt` build. Tests point
//! `--host-costs` (or `PI_OPT_HOST_COSTS`) at a file of their own, so figures measured under test
//! load never reach the user's cache.

use std::path::{Path, PathBuf};

use protocol::cost::{host_name, measure_host_model, HostModel};
use serde::{Deserialize, Serialize};

use crate::error::OptError;

/// What the cache file holds: the figures and what they depend on.
#[derive(Serialize, Deserialize)]
struct Cached {
    /// CPU model, HE kernel path, thread count and `pi-opt` build ([`host_key`]).
    key: String,
    model: HostModel,
}

/// The default cache file: `$XDG_CACHE_HOME` or `~/.cache`, `pi-opt/host-model-v1.json`.
pub fn default_path() -> Option<PathBuf> {
    Some(protocol::cost::cache_dir("pi-opt")?.join("host-model-v1.json"))
}

/// What the figures depend on: the CPU and HE kernels ([`host_name`]), the threads the protocol
/// would compute with, and this binary's version and build (its modification time), so a
/// rebuilt `pi-opt` measures again.
pub fn host_key() -> String {
    let built = protocol::cost::build_stamp();
    format!(
        "{} / {} threads / pi-opt {} built {built}",
        host_name(),
        rayon_threads(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The figures in `path` if they were measured by this build on this host and are sane.
pub fn read(path: &Path) -> Option<HostModel> {
    let text = std::fs::read_to_string(path).ok()?;
    let c: Cached = serde_json::from_str(&text).ok()?;
    (c.model.is_sane() && c.key == host_key()).then_some(c.model)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Writes the figures through a temporary file and a rename (concurrent runs never read half a
/// file).
fn write(path: &Path, m: &HostModel) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let c = Cached {
        key: host_key(),
        model: m.clone(),
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(&c)?)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Cached figures for this host, or a fresh measurement written to `path` (default:
/// [`default_path`]); `remeasure` ignores the cache.
pub fn load_or_measure(path: Option<&Path>, remeasure: bool) -> Result<HostModel, OptError> {
    let path = path.map(Path::to_path_buf).or_else(default_path);
    if !remeasure {
        if let Some(m) = path.as_deref().and_then(read) {
            return Ok(m);
        }
    }
    let m = measure_host_model()
        .map_err(|e| OptError::Invalid(format!("measuring this host's costs: {e}")))?;
    if let Some(p) = &path {
        if let Err(e) = write(p, &m) {
            eprintln!(
                "warning: could not cache this host's costs in {} ({e}); they will be measured again",
                p.display()
            );
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_read_back_only_for_this_build_and_sane_figures() {
        let dir = std::env::temp_dir().join(format!("pi-opt-host-{}", std::process::id()));
        let p = dir.join("host.json");
        let m = HostModel::default();
        write(&p, &m).unwrap();
        assert_eq!(read(&p), Some(m.clone()));
        // Another build or host: measured again.
        let other = Cached {
            key: "another host".into(),
            model: m.clone(),
        };
        std::fs::write(&p, serde_json::to_string(&other).unwrap()).unwrap();
        assert_eq!(read(&p), None);
        // Figures out of range: measured again.
        let mut bad = m;
        bad.clear_ns_per_mac = f64::NAN;
        let c = Cached {
            key: host_key(),
            model: bad,
        };
        std::fs::write(&p, serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(read(&p), None);
        std::fs::write(&p, "not json").unwrap();
        assert_eq!(read(&p), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
