//! The host's figures the estimate prices with, measured in about two seconds: every HE operation
//! (`pi_he::measure_op_costs`, the same figures the HE block planner weighs), the garbled-circuit
//! pipeline per AND gate (the figure `--relu-protocol auto` uses, plus its CPU time), the clear
//! evaluation of linear layers, loopback and temporary-file throughput.

use std::time::Instant;

use models::fixed::FixedConfig;
use serde::{Deserialize, Serialize};

use crate::nonlinear::{gc_pipeline_seconds, measure_relu_costs, ReluCosts};
use crate::{Program, ProtocolError};

/// What one private inference's parts cost on a host (both parties on it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostModel {
    /// CPU model and HE kernel path.
    pub source: String,
    /// Threads each party computes with (its rayon pool).
    pub threads: usize,
    /// Every HE operation, one core.
    pub he: pi_he::HeOpCosts,
    /// One session's HE key setup (client key generation, server validation), ns.
    pub he_setup_ns: f64,
    /// One HE product whose kernel the server prepared before the session (read from memory,
    /// not the cache), ns; `he.product_ns` is the product right after a kernel's transform.
    #[serde(default)]
    pub he_product_stream_ns: f64,
    /// The ReLU protocols' costs (`gc_us_per_and`: wall time per AND gate of garbling, OT,
    /// evaluation, transfer and the online phase, both parties on this host).
    pub relu: ReluCosts,
    /// CPU time of both parties per AND gate of the same pipeline, ns.
    pub gc_cpu_ns_per_and: f64,
    /// The server's online evaluation of linear layers in the clear, ns per MAC (one core).
    pub clear_ns_per_mac: f64,
    /// Loopback transfer, ns per byte (wall, both ends).
    pub wire_ns_per_byte: f64,
    /// Writing garbled material to a temporary file and reading it back, ns per byte.
    pub spill_ns_per_byte: f64,
    /// The reading back alone (online, ahead of the evaluation), ns per byte.
    #[serde(default = "default_spill_read")]
    pub spill_read_ns_per_byte: f64,
    /// Wall time of a real private inference on this host over its estimate from the figures
    /// above (`probe::session_scale`): what micro-benchmarks of warm, isolated operations miss
    /// (allocation, caches, the two parties' hand-offs). Scales every wall-time estimate.
    #[serde(default = "unit_scale")]
    pub session_scale: f64,
    /// The host's hypervisor takes free memory back (a virtio balloon with free page reporting),
    /// so memory a session touches first may cost a fault on the host as well (docs/zoo.md,
    /// "Memory the host has reclaimed").
    #[serde(default)]
    pub reclaims_free_memory: bool,
}

fn default_spill_read() -> f64 {
    0.4
}

fn unit_scale() -> f64 {
    1.0
}

impl Default for HostModel {
    /// The development machine's figures (AMD EPYC Zen 5 with AVX-512 IFMA, 2 cores, idle), for
    /// tests and hosts that have not measured theirs.
    fn default() -> Self {
        HostModel {
            source: "default".into(),
            threads: 2,
            he: pi_he::HeOpCosts::default(),
            he_setup_ns: 60e6,
            he_product_stream_ns: 30e3,
            relu: ReluCosts::default(),
            gc_cpu_ns_per_and: 130.0,
            clear_ns_per_mac: 0.6,
            wire_ns_per_byte: 0.25,
            spill_ns_per_byte: 0.6,
            spill_read_ns_per_byte: default_spill_read(),
            session_scale: 1.0,
            reclaims_free_memory: false,
        }
    }
}

impl HostModel {
    /// Every figure finite and in range (a cache file could say anything).
    pub fn is_sane(&self) -> bool {
        let r = &self.relu;
        self.he.is_sane()
            && (1..=4096).contains(&self.threads)
            && [
                self.he_setup_ns,
                self.he_product_stream_ns,
                self.gc_cpu_ns_per_and,
                self.clear_ns_per_mac,
                self.wire_ns_per_byte,
                self.spill_ns_per_byte,
                self.spill_read_ns_per_byte,
                r.gc_us_per_and,
                r.ot_us_per_cot,
                r.ot_session_us,
            ]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0 && *v < 1e12)
            && (super::probe::SCALE_RANGE).contains(&self.session_scale)
    }
}

/// The CPU model (as the kernel names it, or the architecture) and the HE kernel path.
pub fn host_name() -> String {
    let cpu = pi_he::cpu_model().unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{cpu} / HE {}", pi_he::kernel_path())
}

/// CPU seconds this process has used (user + system), where the platform says.
pub fn process_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        // SAFETY: getrusage writes one plain struct; RUSAGE_SELF is always valid.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
            return None;
        }
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
        Some(t(u.ru_utime) + t(u.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

fn best(
    reps: usize,
    mut f: impl FnMut() -> Result<(), ProtocolError>,
) -> Result<f64, ProtocolError> {
    let mut b = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        b = b.min(t.elapsed().as_nanos() as f64);
    }
    Ok(b)
}

/// Measures this host (≈ 3 s, a probe private inference included; run it on an otherwise idle
/// machine for figures that hold).
pub fn measure_host_model() -> Result<HostModel, ProtocolError> {
    let source = host_name();
    let params = pi_he::HeParams::for_ring(52)?;
    let he = pi_he::measure_op_costs(&params)?;
    let he_setup_ns = best(3, || {
        let mut rng = crate::session::csprng();
        let c = pi_he::ClientHe::new(&params, &mut rng)?;
        pi_he::ServerHe::new(&params, &c.public_setup())?;
        Ok(())
    })?;
    let relu = measure_relu_costs(&source)?;
    let n = 16_384;
    let ands = (n * pi_gc::ReluParams::DEFAULT.and_gates()) as f64;
    let mut cpu = f64::MAX;
    for _ in 0..2 {
        let c0 = process_cpu_seconds();
        let wall = gc_pipeline_seconds(n)?;
        cpu = cpu.min(match (c0, process_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => wall * rayon::current_num_threads() as f64,
        });
    }
    let he_product_stream_ns = pi_he::measure_product_stream_ns(&params)?;
    let spill = pi_gc::spill_rates(None, 64 << 20)?;
    let mut host = HostModel {
        source,
        threads: rayon::current_num_threads(),
        he,
        he_setup_ns,
        he_product_stream_ns,
        relu,
        gc_cpu_ns_per_and: cpu * 1e9 / ands,
        clear_ns_per_mac: clear_ns_per_mac()?,
        wire_ns_per_byte: wire_ns_per_byte()?,
        spill_ns_per_byte: spill.write_ns_per_byte + spill.read_ns_per_byte,
        spill_read_ns_per_byte: spill.read_ns_per_byte,
        session_scale: 1.0,
        reclaims_free_memory: reclaims_free_memory(),
    };
    host.session_scale = super::probe::session_scale(&host)?;
    Ok(host)
}

/// The server's clear evaluation of a 64-channel 3×3 convolution on 16×16 (9.4 M MACs).
fn clear_ns_per_mac() -> Result<f64, ProtocolError> {
    use models::builder::ModelBuilder;
    use models::graph::{Conv2d, Stage};
    let (c, hw) = (64, 16);
    let mut b = ModelBuilder::new("probe", [c, hw, hw]);
    let conv = Conv2d {
        c_in: c,
        c_out: c,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1],
        groups: 1,
        weight: (0..c * c * 9)
            .map(|i| ((i % 7) as f32 - 3.0) / 64.0)
            .collect(),
        bias: vec![0.0; c],
    };
    let x = b.conv(b.input(), conv, Stage::Stem);
    let model = b.finish(x)?;
    let program = Program::new(model, FixedConfig::default())?;
    let input: Vec<u64> = (0..c * hw * hw)
        .map(|i| (i as u64 * 2_654_435_761) & 0xffff)
        .collect();
    let t = best(3, || {
        std::hint::black_box(program.eval_linear(x, &input)?);
        Ok(())
    })?;
    Ok(t / program.macs().max(1) as f64)
}

/// 64 MiB over a loopback TCP connection in 1 MiB frames.
fn wire_ns_per_byte() -> Result<f64, ProtocolError> {
    let (mut s, mut c) = pi_net::loopback_pair().map_err(pi_net::NetError::from)?;
    let frame = vec![0x5au8; 1 << 20];
    let frames = 64;
    let t = Instant::now();
    std::thread::scope(|sc| -> Result<(), ProtocolError> {
        let h = sc.spawn(move || -> Result<(), ProtocolError> {
            for _ in 0..frames {
                s.send_frame(&frame)?;
            }
            s.flush()?;
            Ok(())
        });
        for _ in 0..frames {
            c.recv_frame()?;
        }
        h.join()
            .map_err(|_| ProtocolError::Violation("calibration thread panicked".into()))?
    })?;
    Ok(t.elapsed().as_nanos() as f64 / (frames << 20) as f64)
}

/// Whether a virtio balloon device of this host offers free page reporting (feature bit 5,
/// `VIRTIO_BALLOON_F_REPORTING`): its hypervisor then reclaims the memory the guest frees.
fn reclaims_free_memory() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return false;
    };
    devices.flatten().any(|d| {
        let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap_or_default();
        read("device").trim() == "0x0005" && read("features").as_bytes().get(5) == Some(&b'1')
    })
}

/// The per-user cache directory of `program` (`$XDG_CACHE_HOME/program` or
/// `~/.cache/program`), where the binaries keep their measured host figures.
pub fn cache_dir(program: &str) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join(program))
}

/// This executable's modification time (seconds since the epoch; 0 if unknown): part of a
/// host-figure cache key, so that a rebuilt binary measures again.
pub fn build_stamp() -> u64 {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}
