//! The host's ReLU compute costs for `--relu-protocol auto`: measured once (about a second) and
//! cached in a small JSON file, measured again when the file is missing, unreadable, or was
//! written on another CPU.

use std::path::{Path, PathBuf};

use protocol::ReluCosts;
use tracing::{info, warn};

/// The CPU this process runs on, as the kernel names it (or the architecture).
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The default cache file.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pi-server").join("relu-costs-v1.json"))
}

fn read(path: &Path, cpu: &str) -> Option<ReluCosts> {
    let text = std::fs::read_to_string(path).ok()?;
    let costs: ReluCosts = serde_json::from_str(&text).ok()?;
    let sane = [
        costs.gc_us_per_and,
        costs.ot_us_per_cot,
        costs.ot_session_us,
    ]
    .iter()
    .all(|v| v.is_finite() && *v >= 0.0);
    (costs.source == cpu && sane).then_some(costs)
}

/// Cached costs for this CPU, or a fresh measurement (written back when possible).
pub fn load_or_measure(path: Option<&Path>) -> ReluCosts {
    let cpu = cpu_name();
    let path = path.map(Path::to_path_buf).or_else(default_path);
    if let Some(c) = path.as_deref().and_then(|p| read(p, &cpu)) {
        info!(
            gc_us_per_and = c.gc_us_per_and,
            ot_us_per_cot = c.ot_us_per_cot,
            "ReLU costs from cache"
        );
        return c;
    }
    let t = std::time::Instant::now();
    match protocol::nonlinear::measure_relu_costs(&cpu) {
        Ok(c) => {
            info!(
                gc_us_per_and = format!("{:.4}", c.gc_us_per_and),
                ot_us_per_cot = format!("{:.4}", c.ot_us_per_cot),
                ot_session_ms = format!("{:.1}", c.ot_session_us / 1000.0),
                seconds = format!("{:.2}", t.elapsed().as_secs_f64()),
                "measured ReLU costs on this host"
            );
            if let Some(p) = &path {
                let written = p
                    .parent()
                    .map(std::fs::create_dir_all)
                    .transpose()
                    .ok()
                    .and_then(|_| serde_json::to_string_pretty(&c).ok())
                    .map(|j| std::fs::write(p, j));
                if !matches!(written, Some(Ok(()))) {
                    warn!(path = %p.display(), "could not cache the ReLU costs; they will be measured again next start");
                }
            }
            c
        }
        Err(e) => {
            warn!(error = %e, "ReLU cost measurement failed; using the development machine's figures");
            ReluCosts::default()
        }
    }
}
