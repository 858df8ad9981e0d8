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
    /// The client's garbled material beyond its memory budget through a temporary file: the
    /// part of its writing and reading that the garbled-circuit phases do not hide (chunks are
    /// written by a background thread as they arrive, and read back ahead of the evaluation
    /// into the memory that evaluated chunks free).
    pub spill_seconds: f64,
    /// Bytes of it.
    pub spilled_bytes: u64,
    /// Wall seconds the session may take beyond `total_seconds` where the client's garbled
    /// material in memory lands on memory the host's hypervisor has reclaimed (0 on hosts that
    /// do not reclaim memory): its bytes at [`COLD_TOUCH_NS_PER_BYTE`]. Not in the total: whether
    /// it applies depends on what ran before, not on the model.
    pub cold_memory_seconds: f64,
    /// Wall seconds in all.
    pub total_seconds: f64,
    /// CPU seconds of HE, of the garbled circuits, and of both parties in all.
    pub he_cpu_seconds: f64,
    pub gc_cpu_seconds: f64,
    pub cpu_seconds: f64,
    /// Every linear layer.
    pub layers: Vec<LayerTime>,
}

/// What the first touch of a page the hypervisor has reclaimed costs beyond that of a page it
/// still backs, per byte: ~10 µs against ~1.3 µs per 4 KiB page on the CI machines (docs/zoo.md).
pub const COLD_TOUCH_NS_PER_BYTE: f64 = 2.1;

/// The part of the garbled circuits' wall time that is the online evaluation (31–34% over the
/// zoo's ResNets on the CI machine, `scripts/zoo-table.sh` reports).
const ONLINE_GC_SHARE: f64 = 1.0 / 3.0;

impl HostModel {
    /// Wall seconds the spill file adds: its writing beyond what the offline garbled-circuit
    /// phase hides (a background thread writes while chunks arrive), and its reading back beyond
    /// what the online evaluation of the chunks kept in memory hides (the reader runs ahead into
    /// the memory they free, [`pi_gc::SpillChunks`]).
    fn spill_wall_seconds(&self, stored: u64, spilled: u64, gc: f64) -> f64 {
        if spilled == 0 || stored == 0 {
            return 0.0;
        }
        let read = spilled as f64 * self.spill_read_ns_per_byte * 1e-9;
        let write =
            spilled as f64 * (self.spill_ns_per_byte - self.spill_read_ns_per_byte).max(0.0) * 1e-9;
        let in_memory = 1.0 - spilled as f64 / stored as f64;
        (write - gc * (1.0 - ONLINE_GC_SHARE)).max(0.0)
            + (read - gc * ONLINE_GC_SHARE * in_memory).max(0.0)
    }

    /// The HE operation costs of one layer: its products with kernels from the server's cache
    /// read them from memory (each is used once per session), the others follow their transform.
    fn layer_ops(&self, l: &super::HeLayerCost) -> pi_he::HeOpCosts {
        let kernels = l.plan.kernel_transforms;
        let hot = self.he.product_ns as f64;
        if kernels == 0 || self.he_product_stream_ns <= 0.0 {
            return self.he;
        }
        let cached = (kernels - l.uncached_kernels.min(kernels)) as f64 / kernels as f64;
        let product = cached * self.he_product_stream_ns.max(hot) + (1.0 - cached) * hot;
        pi_he::HeOpCosts {
            product_ns: product.round().clamp(1.0, 999_999_999.0) as u32,
            ..self.he
        }
    }

    /// Prices `p` on this host, with a client that keeps `gc_memory_bytes` of garbled material
    /// in memory (the rest through a temporary file).
    pub fn estimate(&self, p: &CostProfile, gc_memory_bytes: u64) -> Estimate {
        let layers: Vec<LayerTime> = p
            .he_layers
            .iter()
            .map(|l| {
                let wire = (l.plan.bytes_up + l.plan.bytes_down) as f64 * self.wire_ns_per_byte;
                let ops = self.layer_ops(l);
                LayerTime {
                    name: l.name.clone(),
                    seconds: (l.plan.wall_ns(&ops, l.uncached_kernels, self.threads) + wire) * 1e-9,
                    cpu_seconds: (l.plan.cpu_ns(&ops, l.uncached_kernels) + wire) * 1e-9,
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
        let spill_io = spilled as f64 * self.spill_ns_per_byte * 1e-9;
        let spill = self.spill_wall_seconds(p.gc_stored_bytes, spilled, gc);
        // Wall times as a real session on this host runs them (CPU seconds are not scaled).
        let k = self.session_scale;
        let layers = layers
            .into_iter()
            .map(|l| LayerTime {
                seconds: l.seconds * k,
                ..l
            })
            .collect();
        Estimate {
            he_seconds: he * k,
            gc_seconds: gc * k,
            online_linear_seconds: online * k,
            spill_seconds: spill * k,
            spilled_bytes: spilled,
            cold_memory_seconds: match self.reclaims_free_memory {
                true => {
                    p.gc_stored_bytes.min(gc_memory_bytes) as f64 * COLD_TOUCH_NS_PER_BYTE * 1e-9
                }
                false => 0.0,
            },
            total_seconds: (he + gc + online + spill) * k,
            he_cpu_seconds: he_cpu,
            gc_cpu_seconds: gc_cpu,
            cpu_seconds: he_cpu + gc_cpu + online + spill_io,
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use models::builder::ModelBuilder;
    use models::fixed::FixedConfig;
    use models::graph::{Conv2d, Stage};

    use super::*;
    use crate::Program;

    fn conv(c: usize, k: usize, groups: usize) -> Conv2d {
        let n = c * (c / groups) * k * k;
        Conv2d {
            c_in: c,
            c_out: c,
            kernel: [k, k],
            stride: [1, 1],
            padding: [k / 2, k / 2],
            groups,
            weight: (0..n).map(|i| ((i % 7) as f32 - 3.0) / 64.0).collect(),
            bias: vec![0.0; c],
        }
    }

    /// A wide 3×3 convolution, a 1×1 one and a depthwise 3×3 one, each followed by a ReLU.
    fn three_convs() -> Program {
        let c = 64;
        let mut b = ModelBuilder::new("three", [c, 16, 16]);
        let mut x = b.input();
        for (k, groups) in [(3, 1), (1, 1), (3, c)] {
            x = b.conv(x, conv(c, k, groups), Stage::Stem);
            x = b.relu(x, Stage::Stem);
        }
        let model = b.finish(x).unwrap();
        Program::new(model, FixedConfig::default()).unwrap()
    }

    #[test]
    fn thin_convolutions_cost_more_per_mac_and_the_parts_add_up() {
        let program = three_convs();
        let host = HostModel::default();
        let cached = program.cost_profile(usize::MAX).unwrap();
        let e = host.estimate(&cached, u64::MAX);
        assert_eq!(e.layers.len(), 3);
        let per_mac: Vec<f64> = e
            .layers
            .iter()
            .zip(&cached.he_layers)
            .map(|(t, l)| t.seconds / l.macs as f64)
            .collect();
        // The HE cost follows ciphertexts and replies, not MACs: a 1×1 or depthwise layer has 9×
        // or 64× fewer MACs than the wide 3×3 one over the same ciphertexts.
        assert!(per_mac[1] > 3.0 * per_mac[0], "{per_mac:?}");
        assert!(per_mac[2] > 10.0 * per_mac[0], "{per_mac:?}");
        // Wall time with two threads never exceeds the one-core CPU time of both parties.
        for l in &e.layers {
            assert!(l.seconds > 0.0 && l.seconds <= l.cpu_seconds, "{l:?}");
        }
        // The parts add up.
        let he_layers: f64 = e.layers.iter().map(|l| l.seconds).sum();
        assert!((e.he_seconds - he_layers - host.he_setup_ns * 1e-9).abs() < 1e-9);
        let gc = cached.and_gates as f64 * host.relu.gc_us_per_and * 1e-6;
        assert!(gc > 0.0 && (e.gc_seconds - gc).abs() < 1e-9);
        let sum = e.he_seconds + e.gc_seconds + e.online_linear_seconds + e.spill_seconds;
        assert!((e.total_seconds - sum).abs() < 1e-9);
        assert_eq!((e.spilled_bytes, e.spill_seconds), (0, 0.0));

        // No kernel cache: every kernel transformed in the session, priced as such, and every
        // product right after its kernel's transform (kernels the server prepared in advance are
        // read from memory, dearer).
        let uncached = program.cost_profile(0).unwrap();
        let kernels: usize = uncached
            .he_layers
            .iter()
            .map(|l| l.plan.kernel_transforms)
            .sum();
        assert!(kernels > 0);
        assert_eq!(
            (uncached.uncached_kernels(), cached.uncached_kernels()),
            (kernels, 0)
        );
        let cold = host.estimate(&uncached, u64::MAX);
        let extra = (cold.he_cpu_seconds - e.he_cpu_seconds) * 1e9;
        let products: usize = uncached.he_layers.iter().map(|l| l.plan.products).sum();
        assert_eq!(products, kernels, "one product per kernel");
        let stream = host.he_product_stream_ns - host.he.product_ns as f64;
        assert!(stream > 0.0);
        let want = kernels as f64 * (host.he.transform_ns as f64 - stream);
        assert!(
            (extra - want).abs() < 1e-3 * want.abs(),
            "{extra} ns vs {want} ns"
        );
        // Without a figure for kernels from memory, every product costs the same.
        let flat = HostModel {
            he_product_stream_ns: 0.0,
            ..host.clone()
        };
        let extra = (flat.estimate(&uncached, u64::MAX).he_cpu_seconds
            - flat.estimate(&cached, u64::MAX).he_cpu_seconds)
            * 1e9;
        let want = kernels as f64 * host.he.transform_ns as f64;
        assert!(
            (extra - want).abs() < 1e-3 * want,
            "{extra} ns vs {want} ns"
        );
        // A cache for one layer's kernels leaves the others uncached.
        let first = uncached.he_layers[0].plan.kernel_transforms;
        let kb = pi_he::kernel_bytes(program.he_params().unwrap());
        let part = program.cost_profile(first * kb).unwrap();
        assert_eq!(part.uncached_kernels(), kernels - first);

        // A client without memory for garbled material spills all of it: CPU time for its
        // writing and reading, wall time only beyond what the garbled-circuit phases hide.
        let spilled = host.estimate(&cached, 0);
        assert_eq!(spilled.spilled_bytes, cached.gc_stored_bytes);
        let io = cached.gc_stored_bytes as f64 * host.spill_ns_per_byte * 1e-9;
        assert!(io > 0.0 && (spilled.cpu_seconds - e.cpu_seconds - io).abs() < 1e-9);
        // Nothing in memory: the reading back is hidden by nothing, the writing by the offline
        // part of the circuits.
        let bytes = cached.gc_stored_bytes as f64 * 1e-9;
        let read = bytes * host.spill_read_ns_per_byte;
        let write = bytes * (host.spill_ns_per_byte - host.spill_read_ns_per_byte);
        let want = read + (write - e.gc_seconds * (1.0 - ONLINE_GC_SHARE)).max(0.0);
        assert!(read > 0.0 && (spilled.spill_seconds - want).abs() < 1e-9);
        // Half in memory: the online evaluation of that half hides part of the reading.
        let half = host.estimate(&cached, cached.gc_stored_bytes / 2);
        assert!(half.spill_seconds < spilled.spill_seconds);
        let slow_disk = HostModel {
            spill_ns_per_byte: 2e3,
            spill_read_ns_per_byte: 1e3,
            ..host.clone()
        };
        let slow = slow_disk.estimate(&cached, 0);
        let want = bytes * 1e3 + (bytes * 1e3 - e.gc_seconds * (1.0 - ONLINE_GC_SHARE));
        assert!((slow.spill_seconds - want).abs() < 1e-6 * want);
        assert!(slow.total_seconds > e.total_seconds);
    }

    #[test]
    fn reclaimed_memory_is_a_bound_beside_the_total_not_in_it() {
        let program = three_convs();
        let p = program.cost_profile(usize::MAX).unwrap();
        let host = HostModel::default();
        let reclaiming = HostModel {
            reclaims_free_memory: true,
            ..host.clone()
        };
        let (a, b) = (
            host.estimate(&p, u64::MAX),
            reclaiming.estimate(&p, u64::MAX),
        );
        assert_eq!(a.cold_memory_seconds, 0.0);
        let want = p.gc_stored_bytes as f64 * COLD_TOUCH_NS_PER_BYTE * 1e-9;
        assert!(want > 0.0 && (b.cold_memory_seconds - want).abs() < 1e-12);
        assert_eq!(a.total_seconds, b.total_seconds);
        // Only what the client keeps in memory: a spilling client touches its budget.
        let half = p.gc_stored_bytes / 2;
        let c = reclaiming.estimate(&p, half);
        assert!(
            (c.cold_memory_seconds - half as f64 * COLD_TOUCH_NS_PER_BYTE * 1e-9).abs() < 1e-12
        );
    }

    #[test]
    fn the_session_scale_multiplies_wall_times_not_cpu_times() {
        let mut b = ModelBuilder::new("scaled", [8, 8, 8]);
        let x = b.conv(b.input(), conv(8, 3, 1), Stage::Stem);
        let program = Program::new(b.finish(x).unwrap(), FixedConfig::default()).unwrap();
        let p = program.cost_profile(usize::MAX).unwrap();
        let one = HostModel::default();
        let two = HostModel {
            session_scale: 2.0,
            ..one.clone()
        };
        let (a, b) = (one.estimate(&p, u64::MAX), two.estimate(&p, u64::MAX));
        assert!(a.total_seconds > 0.0);
        assert!((b.total_seconds - 2.0 * a.total_seconds).abs() < 1e-12);
        assert!((b.he_seconds - 2.0 * a.he_seconds).abs() < 1e-12);
        assert!((b.layers[0].seconds - 2.0 * a.layers[0].seconds).abs() < 1e-12);
        assert_eq!(b.cpu_seconds, a.cpu_seconds);
    }
}
