//! Prices a [`CostProfile`] with a [`HostModel`]: wall time of one inference with both parties
//! on the host (each phase spread over the threads its independent pieces can use), and the CPU
//! time both spend (what other load on a shared machine distorts least).

use serde::Serialize;

use super::{CostProfile, HostModel};

/// One linear layer's HE exchange, priced.
#[derive(Clone, Debug, Serialize)]
pub struct LayerTime {
    /// Node name.
    pub name: String,
    /// Wall seconds (compute spread over the threads, transfer).
    pub seconds: f64,
    /// CPU seconds of both parties.
    pub cpu_seconds: f64,
}

/// The estimated cost of one private inference, by part.
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    /// HE: key setup and every linear layer's exchange (wall seconds).
    pub he_seconds: f64,
    /// Garbled circuits: OT, garbling, transfer, evaluation, online labels (wall seconds).
    pub gc_seconds: f64,
    /// The server's online evaluation of the linear layers in the clear (seconds).
    pub online_linear_seconds: f64,
    /// The client's garbled material beyond its memory budget through a temporary file.
    pub spill_seconds: f64,
    /// Bytes of it.
    pub spilled_bytes: u64,
    /// Wall seconds in all.
    pub total_seconds: f64,
    /// CPU seconds of HE, of the garbled circuits, and of both parties in all.
    pub he_cpu_seconds: f64,
    pub gc_cpu_seconds: f64,
    pub cpu_seconds: f64,
    /// Every linear layer.
    pub layers: Vec<LayerTime>,
}

impl HostModel {
    /// Prices `p` on this host, with a client that keeps `gc_memory_bytes` of garbled material
    /// in memory (the rest through a temporary file).
    pub fn estimate(&self, p: &CostProfile, gc_memory_bytes: u64) -> Estimate {
        let layers: Vec<LayerTime> = p
            .he_layers
            .iter()
            .map(|l| {
                let wire = (l.plan.bytes_up + l.plan.bytes_down) as f64 * self.wire_ns_per_byte;
                LayerTime {
                    name: l.name.clone(),
                    seconds: (l.plan.wall_ns(&self.he, l.uncached_kernels, self.threads) + wire)
                        * 1e-9,
                    cpu_seconds: (l.plan.cpu_ns(&self.he, l.uncached_kernels) + wire) * 1e-9,
                }
            })
            .collect();
        let setup = if layers.is_empty() {
            0.0
        } else {
            self.he_setup_ns * 1e-9
        };
        let he: f64 = setup + layers.iter().map(|l| l.seconds).sum::<f64>();
        let he_cpu: f64 = setup + layers.iter().map(|l| l.cpu_seconds).sum::<f64>();
        let ands = p.and_gates as f64;
        let gc = ands * self.relu.gc_us_per_and * 1e-6;
        let gc_cpu = ands * self.gc_cpu_ns_per_and * 1e-9;
        let online = p.macs as f64 * self.clear_ns_per_mac * 1e-9;
        let spilled = p.gc_stored_bytes.saturating_sub(gc_memory_bytes);
        let spill = spilled as f64 * self.spill_ns_per_byte * 1e-9;
        Estimate {
            he_seconds: he,
            gc_seconds: gc,
            online_linear_seconds: online,
            spill_seconds: spill,
            spilled_bytes: spilled,
            total_seconds: he + gc + online + spill,
            he_cpu_seconds: he_cpu,
            gc_cpu_seconds: gc_cpu,
            cpu_seconds: he_cpu + gc_cpu + online + spill,
            layers,
        }
    }
}
