//! The host's compute costs: the ReLU protocols' (for `--relu-protocol auto`) and the HE
//! planner's speed relative to its reference machine. Measured once (a few seconds) and cached in
//! a small JSON file, measured again when the file is missing, unreadable, or was written on
//! another CPU, HE kernel path or `pi-server` build. Tests point `--host-costs` (or
//! `PI_SERVER_HOST_COSTS`) at a file of their own, so a figure measured under test load never
//! reaches the user's cache.

use std::path::{Path, PathBuf};

use protocol::ReluCosts;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// What the cache holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostCosts {
    /// CPU model, HE kernel path and `pi-server` build the figures were measured with.
    pub host: String,
    /// The ReLU protocols' costs.
    pub relu: ReluCosts,
    /// HE compute time relative to the planner's reference machine, thousandths.
    pub he_compute_milli: u32,
    /// Every HE operation's cost (what the HE block planner weighs; announced to clients).
    #[serde(default)]
    pub he_ops: Option<protocol::HeOpCosts>,
}

/// What the figures depend on: the CPU this process runs on (as the kernel names it, or the
/// architecture), the HE kernels, and this binary's version and build (its modification time), so
/// a rebuilt or upgraded server measures again.
fn host_key() -> String {
    let cpu = protocol::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let built = protocol::cost::build_stamp();
    format!(
        "{cpu} / HE {} / pi-server {} built {built}",
        protocol::he_kernel_path(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The default cache file.
pub fn default_path() -> Option<PathBuf> {
    Some(protocol::cost::cache_dir("pi-server")?.join("host-costs-v1.json"))
}

fn read(path: &Path, host: &str) -> Option<HostCosts> {
    let text = std::fs::read_to_string(path).ok()?;
    let c: HostCosts = serde_json::from_str(&text).ok()?;
    let r = &c.relu;
    let sane = [r.gc_us_per_and, r.ot_us_per_cot, r.ot_session_us]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
        && (10..=100_000).contains(&c.he_compute_milli)
        && c.he_ops.is_some_and(|o| o.is_sane());
    (c.host == host && sane).then_some(c)
}

/// Writes `c` to `path` through a temporary file and a rename, so servers starting at once never
/// read a half-written cache.
fn write(path: &Path, c: &HostCosts) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_string_pretty(c)?)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn measure(host: &str) -> Result<HostCosts, protocol::ProtocolError> {
    Ok(HostCosts {
        host: host.to_string(),
        relu: protocol::nonlinear::measure_relu_costs(host)?,
        he_compute_milli: protocol::measure_he_compute_milli()?,
        he_ops: Some(protocol::measure_he_op_costs()?),
    })
}

/// Cached costs for this host, or a fresh measurement (written back when possible).
pub fn load_or_measure(path: Option<&Path>) -> HostCosts {
    let host = host_key();
    let path = path.map(Path::to_path_buf).or_else(default_path);
    if let Some(c) = path.as_deref().and_then(|p| read(p, &host)) {
        info!(
            gc_us_per_and = c.relu.gc_us_per_and,
            ot_us_per_cot = c.relu.ot_us_per_cot,
            he_compute_milli = c.he_compute_milli,
            "host costs from cache"
        );
        return c;
    }
    let t = std::time::Instant::now();
    match measure(&host) {
        Ok(c) => {
            info!(
                gc_us_per_and = format!("{:.4}", c.relu.gc_us_per_and),
                ot_us_per_cot = format!("{:.4}", c.relu.ot_us_per_cot),
                ot_session_ms = format!("{:.1}", c.relu.ot_session_us / 1000.0),
                he_compute_milli = c.he_compute_milli,
                seconds = format!("{:.2}", t.elapsed().as_secs_f64()),
                "measured compute costs on this host"
            );
            if let Some(p) = &path {
                if let Err(e) = write(p, &c) {
                    warn!(path = %p.display(), error = %e, "could not cache the host costs; they will be measured again next start");
                }
            }
            c
        }
        Err(e) => {
            warn!(error = %e, "host cost measurement failed; using the development machine's figures");
            HostCosts {
                host,
                relu: ReluCosts::default(),
                he_compute_milli: 1000,
                he_ops: None,
            }
        }
    }
}
