//! The embedded default model and sample image: the advertised ReLU/MAC figures, and a private
//! inference that recognises the sample digit.

use std::sync::Arc;

use models::fixed::FixedConfig;
use pi_tests::{has_local_truncation, loopback_session};
use protocol::ServedModel;

const DEFAULT_MODEL: &[u8] = include_bytes!("../../server/assets/default.onnx");
const SAMPLE_IMAGE: &[u8] = include_bytes!("../../client/assets/sample.npy");
/// The sample is a handwritten 6.
const SAMPLE_LABEL: usize = 6;

#[test]
fn default_model_has_the_advertised_shape_and_cost() {
    let model = models::onnx::from_bytes(DEFAULT_MODEL).expect("embedded model decodes");
    let counts = models::count::count(&model).expect("count");
    assert_eq!(
        counts.relus, 26_112,
        "HRN-2x5x3x m=8, S1 culled, S2–S4 thinned"
    );
    assert!(
        (counts.macs as f64 / 44.6e6 - 1.0).abs() < 0.01,
        "MACs {}",
        counts.macs
    );
    assert_eq!(
        counts.stages.iter().filter(|s| s.relus > 0).count(),
        3,
        "Stage 1 (and stem) culled"
    );
    assert_eq!(model.input, [3, 32, 32]);
    assert!(has_local_truncation(&model));
}

/// The format `pi-opt calibrate --fractions 8,8` stored in the embedded model (MNIST-5k training
/// samples): the default fractions, M = 6 instead of 10, so every ReLU circuit is 23 bits wide
/// instead of 27 (README, "Figures").
fn stored_config() -> FixedConfig {
    let imported = models::onnx::from_bytes_with(DEFAULT_MODEL, &Default::default())
        .expect("embedded model decodes");
    FixedConfig::from_metadata(&imported.metadata)
        .expect("the embedded model carries its calibrated format")
        .expect("the format parses")
}

#[test]
fn default_model_carries_its_calibrated_format() {
    let c = stored_config();
    assert_eq!((c.frac_act, c.frac_weight, c.magnitude_bits), (8, 8, 6));
}

#[test]
fn default_model_privately_recognises_the_sample_digit() {
    let model = models::onnx::from_bytes(DEFAULT_MODEL).expect("embedded model decodes");
    let (shape, image) = models::npy::read_image(SAMPLE_IMAGE).expect("embedded sample decodes");
    assert_eq!(shape, [3, 32, 32]);
    let config = stored_config();
    let plan = models::fixed::plan(&model, &config).expect("plan");
    let fixed = models::fixed::infer(&model, &plan, &image).expect("fixed reference");
    assert_eq!(models::float::argmax(&fixed), Some(SAMPLE_LABEL));
    let served = Arc::new(ServedModel::new(model, config).expect("serve"));
    let run = loopback_session(served, &image, 1);
    run.server.expect("server session");
    let report = run.client.expect("client session");
    assert_eq!(report.inferences[0].prediction, SAMPLE_LABEL);
}
