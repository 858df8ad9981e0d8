//! Client online phase of one inference: masked input, garbled circuits, output share → logits.

use std::io::{Read, Write};
use std::time::Instant;

use pi_net::Channel;

use super::offline::ClientMaterial;
use crate::messages::{MaskedInput, OutputShare};
use crate::program::{Program, Step};
use crate::report::{InferenceReport, OnlineReport, ReluPhase};
use crate::session::secs;
use crate::shares::mask;
use crate::ProtocolError;

/// Online phase of one inference: consumes its offline material.
pub(crate) fn online<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    input: &[u64],
    mut m: ClientMaterial,
) -> Result<InferenceReport, ProtocolError> {
    let start = Instant::now();
    let counters = ch.counters();
    let ring = mask(program.ring_bits());
    let masked: Vec<u64> = input
        .iter()
        .zip(&m.input_mask)
        .map(|(x, r)| x.wrapping_sub(*r) & ring)
        .collect();
    ch.send(&MaskedInput { values: masked })?;
    ch.flush()?;
    let mut gc_seconds = 0.0;
    let mut relu_bytes = 0;
    for step in program.steps() {
        if let Step::Circuits { layer, .. } = step {
            let t = Instant::now();
            let c = ch.counters();
            m.relus.online(ch, layer.circuits())?;
            relu_bytes += ch.counters().since(c).total();
            gc_seconds += secs(t);
        }
    }
    let out: OutputShare = ch.recv()?;
    if out.values.len() != m.output_share.len() {
        return Err(ProtocolError::Violation(format!(
            "output share has {} values, expected {}",
            out.values.len(),
            m.output_share.len()
        )));
    }
    let sum: Vec<u64> = out
        .values
        .iter()
        .zip(&m.output_share)
        .map(|(a, b)| a.wrapping_add(*b) & ring)
        .collect();
    let logits = program.dequantize_output(&sum);
    let prediction = models::float::argmax(&logits).unwrap_or(0);
    let traffic = ch.counters().since(counters);
    let online = OnlineReport {
        seconds: secs(start),
        bytes_sent: traffic.sent,
        bytes_received: traffic.received,
        linear_seconds: out.linear_seconds,
        gc_seconds,
        relu: ReluPhase {
            gc_relus: m.report.relu.gc_relus,
            ot_relus: m.report.relu.ot_relus,
            bytes: relu_bytes,
            seconds: gc_seconds,
        },
    };
    let offline = std::mem::take(&mut m.report);
    Ok(InferenceReport {
        prediction,
        logits,
        total_seconds: offline.seconds + online.seconds,
        offline,
        online,
    })
}
