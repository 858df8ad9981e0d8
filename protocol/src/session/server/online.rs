//! Server online phase of one inference: linear layers on the server's shares in the clear, nonlinear layers by GC.

use std::io::{Read, Write};
use std::time::Instant;

use pi_net::Channel;
use zeroize::Zeroize;

use super::offline::ServerMaterial;
use crate::messages::{MaskedInput, OutputShare};
use crate::program::{Program, Step};
use crate::session::secs;
use crate::shares::{mask, truncate_server_all};
use crate::ProtocolError;

/// Online phase of one inference: linear layers on the server's shares in the clear, nonlinear layers by GC.
pub(crate) fn online<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    mut m: ServerMaterial,
) -> Result<(), ProtocolError> {
    let bits = program.ring_bits();
    let ring = mask(bits);
    let input: MaskedInput = ch.recv()?;
    if input.values.len() != program.input_len() {
        return Err(ProtocolError::Violation(format!(
            "masked input has {} values, expected {}",
            input.values.len(),
            program.input_len()
        )));
    }
    let steps = program.steps();
    let mut shares: Vec<Option<Vec<u64>>> = vec![None; steps.len()];
    let mut linear_seconds = 0.0;
    let mut gc_seconds = 0.0;
    let mut s_iter = m.linear_shares.drain(..);
    let mut input_values = Some(input.values);
    for (id, step) in steps.iter().enumerate() {
        let out = match step {
            Step::Input => input_values
                .take()
                .ok_or(ProtocolError::Violation("second input node".into()))?
                .into_iter()
                .map(|v| v & ring)
                .collect(),
            Step::Linear {
                pre_shift, input, ..
            } => {
                let t = Instant::now();
                let mut x = get(&shares, *input)?.to_vec();
                truncate_server_all(&mut x, *pre_shift, bits);
                let mut y = program.eval_linear(id, &x)?;
                let mut s = s_iter
                    .next()
                    .ok_or(ProtocolError::Exhausted("HE correlations"))?;
                if s.len() != y.len() {
                    return Err(ProtocolError::Violation("HE share length mismatch".into()));
                }
                y.iter_mut()
                    .zip(&s)
                    .for_each(|(v, s)| *v = v.wrapping_add(*s) & ring);
                s.zeroize();
                linear_seconds += secs(t);
                y
            }
            Step::Circuits { input, layer } => {
                let x = get(&shares, *input)?;
                let a = layer.server_words(x)?;
                let t = Instant::now();
                let outs = m.relus.online(ch, &a)?;
                gc_seconds += secs(t);
                layer.server_assemble(x, outs, bits)?
            }
            Step::AddConst { input } => program.add_constants(id, get(&shares, *input)?)?,
            Step::Truncate { input, shift } => {
                let mut x = get(&shares, *input)?.to_vec();
                truncate_server_all(&mut x, *shift, bits);
                x
            }
            Step::Local { inputs } => {
                let t = Instant::now();
                let xs: Vec<&[u64]> = inputs
                    .iter()
                    .map(|&i| get(&shares, i))
                    .collect::<Result<_, _>>()?;
                let y = program.eval_local(id, &xs)?;
                linear_seconds += secs(t);
                y
            }
        };
        shares[id] = Some(out);
        for dead in program.last_uses(id) {
            shares[*dead] = None;
        }
    }
    let values = shares[program.output()]
        .take()
        .ok_or(ProtocolError::Violation("no output".into()))?;
    ch.send(&OutputShare {
        values,
        linear_seconds,
        gc_seconds,
    })?;
    ch.flush()?;
    Ok(())
}

fn get(shares: &[Option<Vec<u64>>], id: usize) -> Result<&[u64], ProtocolError> {
    shares
        .get(id)
        .and_then(|s| s.as_deref())
        .ok_or_else(|| ProtocolError::Violation(format!("share of node {id} missing")))
}
