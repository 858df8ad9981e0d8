//! Private inference between a real server and client over loopback TCP equals the fixed-point reference.

use std::sync::Arc;

use models::fixed::FixedConfig;
use models::zoo::ResNetSpec;
use models::Model;
use pi_tests::{
    has_local_truncation, loopback_session, loopback_session_with, random_image, references,
};
use protocol::{
    ClientOptions, HeOpCosts, ReluChoice, ReluProtocol, ServeOptions, ServedModel, SpillPolicy,
};

fn argmax(v: &[f32]) -> usize {
    models::float::argmax(v).expect("non-empty logits")
}

/// A small ResNet with every ReLU present: no local truncation anywhere.
fn all_relu_resnet(seed: u64) -> Model {
    let mut spec = ResNetSpec::new(vec![1, 1], vec![4, 8], 10, [3, 8, 8]);
    spec.seed = seed;
    spec.bias_std = 0.1;
    spec.residual_scale = 0.5;
    spec.build().expect("valid spec")
}

#[test]
fn bit_exact_when_every_relu_is_a_circuit() {
    let model = all_relu_resnet(3);
    assert!(
        !has_local_truncation(&model),
        "the test model must not truncate locally"
    );
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    for seed in 0..2 {
        let image = random_image(&model, seed);
        let (fixed, float) = references(&model, &image);
        let run = loopback_session(served.clone(), &image, 1);
        run.server.expect("server session");
        let report = run.client.expect("client session");
        let inf = &report.inferences[0];
        assert_eq!(
            inf.logits, fixed,
            "PI logits must equal the fixed-point reference bit for bit"
        );
        assert_eq!(
            inf.prediction,
            argmax(&float),
            "top-1 must equal the float model"
        );
        assert_eq!(
            report.relus,
            models::count::count(&model).expect("count").relus
        );
    }
}

#[test]
fn the_client_follows_the_servers_he_link_setting_and_stays_bit_exact() {
    // 1 Mbit/s packs replies as deep as the keys allow; 100 Gbit/s avoids key switches. The client
    // learns the setting from the public model; a mismatch would fail the ciphertext counts.
    let model = all_relu_resnet(5);
    for mbps in [1, 100_000] {
        let served = Arc::new(
            ServedModel::with_he_link(model.clone(), FixedConfig::default(), mbps).expect("serve"),
        );
        let image = random_image(&model, 7);
        let (fixed, _) = references(&model, &image);
        let run = loopback_session(served, &image, 1);
        run.server.expect("server session");
        let report = run.client.expect("client session");
        assert_eq!(report.inferences[0].logits, fixed, "link {mbps} Mbit/s");
    }
}

/// Bound on |PI − reference| for models with local truncation points, relative to the largest logit
/// (each local truncation may add one ulp = 2^-fa; see docs/protocol.md).
const LOCAL_TRUNCATION_TOLERANCE: f32 = 0.02;

#[test]
fn random_resnets_with_removed_and_partial_relus_match_the_reference() {
    for seed in 0..3 {
        let model = models::zoo::random_resnet(seed, [3, 8, 8], 10);
        let served =
            Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
        let image = random_image(&model, 100 + seed);
        let (fixed, float) = references(&model, &image);
        let run = loopback_session(served, &image, 1);
        run.server.expect("server session");
        let report = run.client.expect("client session");
        let logits = &report.inferences[0].logits;
        let scale = fixed.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (p, r) in logits.iter().zip(&fixed) {
            assert!(
                (p - r).abs() <= LOCAL_TRUNCATION_TOLERANCE * scale,
                "seed {seed}: PI {p} vs reference {r}"
            );
        }
        assert_eq!(
            argmax(logits),
            argmax(&fixed),
            "seed {seed}: top-1 differs from the fixed reference"
        );
        let mut sorted = float.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2.0 * LOCAL_TRUNCATION_TOLERANCE * scale {
            assert_eq!(
                argmax(logits),
                argmax(&float),
                "seed {seed}: top-1 differs from the float model"
            );
        }
    }
}

#[test]
fn batch_preprocesses_then_runs_each_inference_once() {
    let model = all_relu_resnet(5);
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    let image = random_image(&model, 9);
    let (fixed, _) = references(&model, &image);
    let run = loopback_session(served, &image, 3);
    let summary = run.server.expect("server session");
    assert_eq!(summary.inferences, 3);
    let report = run.client.expect("client session");
    assert_eq!(report.inferences.len(), 3);
    for inf in &report.inferences {
        assert_eq!(inf.logits, fixed);
        assert!(inf.offline.bytes_sent > 0 && inf.online.bytes_sent > 0);
    }
}

#[test]
fn the_server_never_receives_the_clear_input() {
    let model = all_relu_resnet(7);
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    let image = random_image(&model, 11);
    let plan = models::fixed::plan(&model, &FixedConfig::default()).expect("plan");
    let quantised = models::fixed::quantize_input(&model, &plan, &image).expect("quantise");
    let run = loopback_session(served, &image, 1);
    run.client.expect("client session");
    run.server.expect("server session");
    let transcript = &run.server_received;
    assert!(transcript.len() > 1000);
    // Any two consecutive quantised input values, as they would be serialised, must not occur.
    let mut hits = 0;
    for pair in quantised.windows(2) {
        if pair[0] == 0 && pair[1] == 0 {
            continue;
        }
        let mut needle = pair[0].to_le_bytes().to_vec();
        needle.extend_from_slice(&pair[1].to_le_bytes());
        hits += transcript
            .windows(16)
            .filter(|w| *w == needle.as_slice())
            .count();
    }
    assert_eq!(
        hits, 0,
        "clear input values appear in the server's transcript"
    );
}

fn served_with(model: &Model, relu: ReluChoice) -> Arc<ServedModel> {
    let options = ServeOptions {
        relu,
        ..ServeOptions::default()
    };
    Arc::new(
        ServedModel::with_options(model.clone(), FixedConfig::default(), &options).expect("serve"),
    )
}

#[test]
fn ot_relus_are_bit_exact_on_random_models() {
    // Every ReLU by OT: logits equal the fixed-point reference bit for bit (no local truncation).
    for seed in [3, 11] {
        let model = all_relu_resnet(seed);
        let served = served_with(&model, ReluChoice::Ot);
        assert!(served
            .relu_protocols()
            .iter()
            .all(|p| *p == ReluProtocol::Ot));
        let image = random_image(&model, seed + 40);
        let (fixed, _) = references(&model, &image);
        let run = loopback_session(served, &image, 2);
        run.server.expect("server session");
        let report = run.client.expect("client session");
        for inf in &report.inferences {
            assert_eq!(
                inf.logits, fixed,
                "seed {seed}: OT ReLUs must match the reference bit for bit"
            );
            assert_eq!(inf.offline.relu.ot_relus, report.relus);
            assert_eq!(inf.offline.relu.gc_relus, 0);
            // OT ReLUs cost tens of bytes each, not kilobytes.
            let per = (inf.offline.relu.bytes + inf.online.relu.bytes) as f64 / report.relus as f64;
            assert!(per < 400.0, "seed {seed}: {per} bytes per ReLU");
        }
    }
}

#[test]
fn gc_and_ot_layers_mix_in_one_inference_and_random_models_match_with_ot() {
    let model = all_relu_resnet(5);
    let layers = ServedModel::new(model.clone(), FixedConfig::default())
        .expect("serve")
        .program()
        .relu_layers()
        .len();
    assert!(layers >= 2);
    let plan: Vec<ReluProtocol> = (0..layers)
        .map(|i| {
            if i % 2 == 0 {
                ReluProtocol::Ot
            } else {
                ReluProtocol::Gc
            }
        })
        .collect();
    let image = random_image(&model, 21);
    let (fixed, _) = references(&model, &image);
    let run = loopback_session(served_with(&model, ReluChoice::PerLayer(plan)), &image, 1);
    run.server.expect("server session");
    let report = run.client.expect("client session");
    let inf = &report.inferences[0];
    assert_eq!(inf.logits, fixed);
    assert!(inf.offline.relu.gc_relus > 0 && inf.offline.relu.ot_relus > 0);

    // Models with removed and partial ReLUs (local truncation elsewhere): as close as with GC,
    // and the OT ReLUs themselves exact (same output as the GC session on the same image).
    for seed in 0..2 {
        let model = models::zoo::random_resnet(seed, [3, 8, 8], 10);
        let image = random_image(&model, 300 + seed);
        let (fixed, _) = references(&model, &image);
        let ot = loopback_session(served_with(&model, ReluChoice::Ot), &image, 1);
        ot.server.expect("server session");
        let logits = ot.client.expect("client session").inferences[0]
            .logits
            .clone();
        let scale = fixed.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (p, r) in logits.iter().zip(&fixed) {
            assert!(
                (p - r).abs() <= LOCAL_TRUNCATION_TOLERANCE * scale,
                "seed {seed}: PI {p} vs reference {r}"
            );
        }
    }
}

#[test]
fn garbled_circuits_beyond_the_clients_budget_spill_to_a_file_and_stay_bit_exact() {
    // A server that caches no kernel (transformed in every session) and announces operation costs
    // other than the defaults (the client must plan with them); clients whose garbled material
    // goes wholly, partly (the batch shares one budget) or not at all to a temporary file.
    let model = all_relu_resnet(7);
    let options = ServeOptions {
        kernel_cache_bytes: 0,
        he_costs: HeOpCosts {
            key_switch_ns: 3_000_000,
            ..HeOpCosts::default()
        },
        ..ServeOptions::default()
    };
    let served = Arc::new(
        ServedModel::with_options(model.clone(), FixedConfig::default(), &options).expect("serve"),
    );
    let cache = served.kernel_cache();
    assert!(
        cache.kernels > 0 && cache.cached == 0 && cache.bytes == 0,
        "{cache:?}"
    );
    let stored = served
        .program()
        .cost_profile(0)
        .expect("cost profile")
        .gc_stored_bytes;
    assert!(stored > 0);
    let image = random_image(&model, 1);
    let (fixed, _) = references(&model, &image);
    // One inference's material and some room for chunk headers: the first fits, the second
    // finds the budget (nearly) spent.
    let one = stored + (64 << 10);
    for (budget, want_spilled) in [
        (0, [true, true]),
        (one, [false, true]),
        (u64::MAX, [false, false]),
    ] {
        let client = ClientOptions {
            batch: 2,
            gc_spill: SpillPolicy {
                memory_bytes: budget,
                dir: None,
            },
            ..ClientOptions::default()
        };
        let run = loopback_session_with(served.clone(), &image, &client);
        run.server.expect("server session");
        let report = run.client.expect("client session");
        let spilled: Vec<bool> = report
            .inferences
            .iter()
            .map(|inf| {
                assert_eq!(
                    inf.logits, fixed,
                    "budget {budget}: not the fixed-point reference"
                );
                inf.offline.gc_spilled_bytes > 0
            })
            .collect();
        assert_eq!(spilled, want_spilled, "budget {budget}");
    }
}
