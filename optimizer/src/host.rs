//! This host's measured figures for the planned estimate ([`protocol::cost::HostModel`]), cached
//! in a small JSON file and measured again (≈ 2 s) when the file is missing, unreadable, out of
//! range or written on another CPU, HE kernel path or thread count.

use std::path::{Path, PathBuf};

use protocol::cost::{host_name, measure_host_model, HostModel};

use crate::error::OptError;

/// The default cache file: `$XDG_CACHE_HOME` or `~/.cache`, `pi-opt/host-model-v1.json`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pi-opt").join("host-model-v1.json"))
}

/// The figures in `path` if they were measured on this host and are sane.
pub fn read(path: &Path) -> Option<HostModel> {
    let text = std::fs::read_to_string(path).ok()?;
    let m: HostModel = serde_json::from_str(&text).ok()?;
    (m.is_sane() && m.source == host_name() && m.threads == rayon_threads()).then_some(m)
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
        let write = || -> std::io::Result<()> {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, serde_json::to_string_pretty(&m)?)?;
            std::fs::rename(&tmp, p)
        };
        if let Err(e) = write() {
            eprintln!(
                "warning: could not cache this host's costs in {} ({e}); they will be measured again",
                p.display()
            );
        }
    }
    Ok(m)
}
