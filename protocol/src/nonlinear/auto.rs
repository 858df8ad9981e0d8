//! The per-layer choice: estimated time = compute (measured on the host) + bytes at the link's
//! bandwidth + round trips at its latency, for each protocol; OT's one-off session cost (Ferret
//! bootstrap, reverse OT setup) is charged once if any layer uses it.

use pi_gc::ReluParams;
use serde::{Deserialize, Serialize};

use super::{ReluChoice, ReluProtocol};
use crate::ProtocolError;

/// The link both parties plan for (one description for the HE planner and the ReLU choice).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Bandwidth, Mbit/s.
    pub mbps: u32,
    /// Round-trip time, milliseconds.
    pub rtt_ms: f64,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            mbps: pi_he::DEFAULT_LINK_MBPS,
            rtt_ms: 1.0,
        }
    }
}

/// Compute costs of the two protocols, wall time with both parties on one host, one thread each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReluCosts {
    /// µs per AND gate of a garbled ReLU (garbling, OT, evaluation, online).
    pub gc_us_per_and: f64,
    /// µs per forward COT of an OT ReLU (Ferret, conversion, online), beyond the session cost.
    pub ot_us_per_cot: f64,
    /// µs of one OT session's fixed work (base OTs, bootstraps).
    pub ot_session_us: f64,
    /// Where the figures come from (CPU model, or "default").
    pub source: String,
}

impl Default for ReluCosts {
    /// Figures of the 2-core development machine (AMD EPYC, `pi-bench relu`, loaded); the server
    /// replaces them by a measurement on its own host at start.
    fn default() -> Self {
        ReluCosts {
            gc_us_per_and: 0.16,
            ot_us_per_cot: 0.14,
            ot_session_us: 60_000.0,
            source: "default".into(),
        }
    }
}

/// Bytes the OT session moves once, whatever its size (Ferret bootstrap, reverse OT setup).
const OT_SESSION_BYTES: f64 = 310_000.0;
/// Ferret bytes per forward COT in steady state (b12/b13).
const FERRET_BYTES_PER_COT: f64 = 0.06;
/// SoftSpoken k of the GC protocol's OT: 128/k bits per client input bit.
const GC_OT_BITS: f64 = 32.0;

/// The estimate of one layer under both protocols.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerEstimate {
    /// Estimated seconds with garbled circuits.
    pub gc_seconds: f64,
    /// Estimated seconds with OT (without the session's one-off cost).
    pub ot_seconds: f64,
    /// Bytes with garbled circuits.
    pub gc_bytes: f64,
    /// Bytes with OT (without the session's one-off cost).
    pub ot_bytes: f64,
}

fn seconds(compute_us: f64, bytes: f64, rtts: f64, link: &Link) -> f64 {
    compute_us * 1e-6 + bytes * 8.0 / (link.mbps.max(1) as f64 * 1e6) + rtts * link.rtt_ms * 1e-3
}

/// Estimates one layer of `n` ReLUs with parameters `p`.
pub fn estimate(p: &ReluParams, n: usize, link: &Link, costs: &ReluCosts) -> LayerEstimate {
    let nf = n as f64;
    let gc_bytes = nf
        * (p.table_bytes() as f64
            + p.client_input_bits() as f64 * GC_OT_BITS / 8.0
            + p.server_input_bits() as f64 * 16.0
            + (p.out_bits as f64 / 8.0).ceil());
    let gc_seconds = seconds(
        nf * p.and_gates() as f64 * costs.gc_us_per_and,
        gc_bytes,
        1.0,
        link,
    );
    let c = pi_ot::cost(p);
    let ot_bytes = nf
        * ((c.online_bits + c.offline_bits) as f64 / 8.0
            + c.forward_cots as f64 * FERRET_BYTES_PER_COT);
    let ot_seconds = seconds(
        nf * c.forward_cots.max(1) as f64 * costs.ot_us_per_cot,
        ot_bytes,
        c.online_messages as f64 / 2.0,
        link,
    );
    LayerEstimate {
        gc_seconds,
        ot_seconds,
        gc_bytes,
        ot_bytes,
    }
}

/// Share of a protocol's compute (all phases) spent online: the garbled ReLU evaluates in
/// ≈ 4.4 of 22.6 µs, the OT ReLU runs its rounds in ≈ 1.1 of 5.0 µs (`pi-bench relu`).
const ONLINE_COMPUTE_SHARE: f64 = 0.2;

/// The online phase of one layer of `n` ReLUs under both protocols, for banked sets (whose
/// offline phase is off the critical path): (garbled seconds, OT seconds).
pub fn estimate_online(p: &ReluParams, n: usize, link: &Link, costs: &ReluCosts) -> (f64, f64) {
    let nf = n as f64;
    // The server's input labels down, the output colour bits up.
    let gc_bytes = nf * (p.server_input_bits() as f64 * 16.0 + (p.out_bits as f64 / 8.0).ceil());
    let gc = seconds(
        nf * p.and_gates() as f64 * costs.gc_us_per_and * ONLINE_COMPUTE_SHARE,
        gc_bytes,
        1.0,
        link,
    );
    let c = pi_ot::cost(p);
    let ot = seconds(
        nf * c.forward_cots.max(1) as f64 * costs.ot_us_per_cot * ONLINE_COMPUTE_SHARE,
        nf * c.online_bits as f64 / 8.0,
        c.online_messages as f64 / 2.0,
        link,
    );
    (gc, ot)
}

/// The plan of banked sets: as [`plan_layers`], except that `Auto` picks per layer the protocol
/// whose *online* phase is expected to finish sooner (banking takes the offline phase off the
/// user's wait, so only the online phase counts).
pub fn plan_layers_banked(
    layers: &[(ReluParams, usize)],
    choice: &ReluChoice,
    link: &Link,
    costs: &ReluCosts,
) -> Result<Vec<ReluProtocol>, ProtocolError> {
    match choice {
        ReluChoice::Auto => Ok(layers
            .iter()
            .map(|(p, n)| {
                let (gc, ot) = estimate_online(p, *n, link, costs);
                if ot < gc {
                    ReluProtocol::Ot
                } else {
                    ReluProtocol::Gc
                }
            })
            .collect()),
        other => plan_layers(layers, other, link, costs),
    }
}

/// One protocol per layer (`layers[i]` = (params, ReLU count) of ReLU layer i).
pub fn plan_layers(
    layers: &[(ReluParams, usize)],
    choice: &ReluChoice,
    link: &Link,
    costs: &ReluCosts,
) -> Result<Vec<ReluProtocol>, ProtocolError> {
    Ok(match choice {
        ReluChoice::Gc => vec![ReluProtocol::Gc; layers.len()],
        ReluChoice::Ot => vec![ReluProtocol::Ot; layers.len()],
        ReluChoice::PerLayer(v) if v.len() == layers.len() => v.clone(),
        ReluChoice::PerLayer(v) => {
            return Err(ProtocolError::BadInput(format!(
                "{} ReLU protocols given for {} ReLU layers",
                v.len(),
                layers.len()
            )))
        }
        ReluChoice::Auto => {
            let est: Vec<LayerEstimate> = layers
                .iter()
                .map(|(p, n)| estimate(p, *n, link, costs))
                .collect();
            let mixed: Vec<ReluProtocol> = est
                .iter()
                .map(|e| {
                    if e.ot_seconds < e.gc_seconds {
                        ReluProtocol::Ot
                    } else {
                        ReluProtocol::Gc
                    }
                })
                .collect();
            let session = seconds(costs.ot_session_us, OT_SESSION_BYTES, 4.0, link);
            let mixed_total: f64 = est
                .iter()
                .zip(&mixed)
                .map(|(e, p)| match p {
                    ReluProtocol::Gc => e.gc_seconds,
                    ReluProtocol::Ot => e.ot_seconds,
                })
                .sum::<f64>()
                + if mixed.contains(&ReluProtocol::Ot) {
                    session
                } else {
                    0.0
                };
            let gc_total: f64 = est.iter().map(|e| e.gc_seconds).sum();
            if gc_total <= mixed_total {
                vec![ReluProtocol::Gc; layers.len()]
            } else {
                mixed
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_ot_on_slow_links_and_gc_for_tiny_layers_on_slow_round_trips() {
        let p = ReluParams::DEFAULT;
        let costs = ReluCosts::default();
        let wan = Link {
            mbps: 100,
            rtt_ms: 1.0,
        };
        assert_eq!(
            plan_layers(&[(p, 20_000), (p, 5000)], &ReluChoice::Auto, &wan, &costs).unwrap(),
            vec![ReluProtocol::Ot; 2]
        );
        // A fast link with a long round trip: a 10-ReLU layer is not worth 15 round trips.
        let far = Link {
            mbps: 100_000,
            rtt_ms: 80.0,
        };
        assert_eq!(
            plan_layers(&[(p, 10)], &ReluChoice::Auto, &far, &costs).unwrap(),
            vec![ReluProtocol::Gc]
        );
        assert_eq!(
            plan_layers(&[(p, 10)], &ReluChoice::Ot, &far, &costs).unwrap(),
            vec![ReluProtocol::Ot]
        );
        assert!(plan_layers(&[(p, 10)], &ReluChoice::PerLayer(vec![]), &far, &costs).is_err());
        let e = estimate(&p, 1000, &wan, &costs);
        assert!(e.gc_bytes / e.ot_bytes > 50.0);
    }

    #[test]
    fn banked_plans_weigh_the_online_phase_only() {
        let p = ReluParams::DEFAULT;
        let costs = ReluCosts::default();
        let layers = [(p, 8192), (p, 64)];
        // 100 Mbit/s with a short round trip: OT's 25 B per ReLU beat 27 labels of 16 B.
        let lan = Link {
            mbps: 100,
            rtt_ms: 1.0,
        };
        let plan = plan_layers_banked(&layers, &ReluChoice::Auto, &lan, &costs).unwrap();
        assert_eq!(plan[0], ReluProtocol::Ot);
        // Each layer takes the protocol whose online phase is estimated faster (a 64-ReLU layer's
        // 28 KB of labels take 2.2 ms, against OT's round trips).
        for (&(p, n), got) in layers.iter().zip(&plan) {
            let (gc, ot) = estimate_online(&p, n, &lan, &costs);
            assert_eq!(
                *got == ReluProtocol::Ot,
                ot < gc,
                "{n} ReLUs: gc {gc} s, ot {ot} s"
            );
        }
        // With 20 ms round trips OT's ~15 per layer cost more than the labels of small layers.
        let wan = Link {
            mbps: 100,
            rtt_ms: 20.0,
        };
        let plan = plan_layers_banked(&layers, &ReluChoice::Auto, &wan, &costs).unwrap();
        assert_eq!(plan[1], ReluProtocol::Gc);
        let (gc, ot) = estimate_online(&p, 8192, &wan, &costs);
        assert_eq!(plan[0] == ReluProtocol::Ot, ot < gc);
        // An explicit choice is kept.
        assert_eq!(
            plan_layers_banked(&layers, &ReluChoice::Gc, &lan, &costs).unwrap(),
            vec![ReluProtocol::Gc; 2]
        );
    }
}
