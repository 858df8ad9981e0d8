//! The architecture the client is allowed to know: the model with its weights removed.

use models::fixed::FixedConfig;
use models::{Model, Op};
use serde::{Deserialize, Serialize};

use crate::nonlinear::ReluProtocol;
use crate::ProtocolError;

/// A model's structure and fixed-point configuration, without weights or biases, the link the
/// server plans for (the HE block planner must plan alike on both sides), the protocol of every
/// ReLU layer (the client follows), and the bound the server declares for every logit (the
/// client refuses results outside it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublicModel {
    model: Model,
    pub config: FixedConfig,
    /// Link bandwidth (Mbit/s) the HE planner and the ReLU choice assume.
    pub link_mbps: u32,
    /// What each HE operation costs on the server's host (the planner weighs compute against
    /// traffic with them; both sides must plan alike).
    pub he_costs: pi_he::HeOpCosts,
    /// Protocol of each ReLU layer, in step order.
    pub relu_protocols: Vec<ReluProtocol>,
    pub logit_bound: f32,
}

impl PublicModel {
    /// Strips every weight and bias from `model` (and the constants of affine maps, which only
    /// the server adds; their count stays, it is structure).
    pub fn new(model: &Model, config: FixedConfig) -> Self {
        let mut model = model.clone();
        for node in &mut model.nodes {
            match &mut node.op {
                Op::Conv2d(c) => {
                    c.weight = Vec::new();
                    c.bias = Vec::new();
                }
                Op::Linear(l) => {
                    l.weight = Vec::new();
                    l.bias = Vec::new();
                }
                Op::Affine(a) => {
                    a.shift.iter_mut().for_each(|v| *v = 0.0);
                    a.scale.iter_mut().for_each(|v| *v = 1.0);
                }
                _ => {}
            }
        }
        PublicModel {
            model,
            config,
            link_mbps: pi_he::DEFAULT_LINK_MBPS,
            he_costs: pi_he::HeOpCosts::default(),
            relu_protocols: Vec::new(),
            logit_bound: crate::plausible::default_logit_bound(&config),
        }
    }

    /// Rebuilds a structurally valid model (zero weights) and checks it, so untrusted input cannot
    /// reach the planner in an inconsistent state.
    pub fn to_model(&self) -> Result<Model, ProtocolError> {
        let mut model = self.model.clone();
        for node in &mut model.nodes {
            match &mut node.op {
                Op::Conv2d(c) => {
                    if c.groups == 0 || c.c_in % c.groups != 0 {
                        return Err(ProtocolError::Violation(format!(
                            "node {}: bad groups",
                            node.name
                        )));
                    }
                    let n = c
                        .c_out
                        .checked_mul(c.c_in / c.groups)
                        .and_then(|n| n.checked_mul(c.kernel[0]))
                        .and_then(|n| n.checked_mul(c.kernel[1]))
                        .filter(|&n| n <= 1 << 28)
                        .ok_or_else(|| {
                            ProtocolError::Violation(format!("node {}: conv too large", node.name))
                        })?;
                    if !c.weight.is_empty() || !c.bias.is_empty() || c.c_out > 1 << 20 {
                        return Err(ProtocolError::Violation(format!(
                            "node {}: weights sent to client",
                            node.name
                        )));
                    }
                    c.weight = vec![0.0; n];
                    c.bias = vec![0.0; c.c_out];
                }
                Op::Linear(l) => {
                    let n = l
                        .in_features
                        .checked_mul(l.out_features)
                        .filter(|&n| n <= 1 << 28)
                        .ok_or_else(|| {
                            ProtocolError::Violation(format!(
                                "node {}: linear too large",
                                node.name
                            ))
                        })?;
                    if !l.weight.is_empty() || !l.bias.is_empty() {
                        return Err(ProtocolError::Violation(format!(
                            "node {}: weights sent to client",
                            node.name
                        )));
                    }
                    l.weight = vec![0.0; n];
                    l.bias = vec![0.0; l.out_features];
                }
                _ => {}
            }
        }
        model.validate()?;
        Ok(model)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Fingerprint of the architecture and fixed-point configuration (not the HE planner's link
    /// speed, which does not change banked material): a banked set is usable with any server
    /// announcing the same fingerprint (the server's ticket check then covers the weights).
    pub fn bank_fingerprint(&self) -> [u8; 32] {
        let bytes = bincode::serialize(&(&self.model, &self.config)).unwrap_or_default();
        blake3::derive_key("pi-bank 2025 public model v1", &bytes)
    }
}
