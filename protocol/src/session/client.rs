//! Client side: offline (HE correlations, OT + garbled circuits) then online (masked input, GC ReLUs).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pi_gc::ClientRelus;
use pi_he::ClientHe;
use pi_net::{Channel, TcpChannel};
use rand::Rng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::{csprng, secs};
use crate::messages::{
    ClientHello, MaskedInput, OfflineDone, OutputShare, ServerHello, PROTOCOL_VERSION,
};
use crate::program::{Program, Step};
use crate::report::{InferenceReport, OfflineReport, OnlineReport};
use crate::shares::{mask, truncate_client_all};
use crate::ProtocolError;

/// How the client runs a session.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Inferences to preprocess and then run in one session.
    pub batch: u32,
    /// Longest wait for a server message.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            batch: 1,
            read_timeout: Duration::from_secs(300),
        }
    }
}

/// Everything the client reports about one session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionReport {
    pub model: String,
    pub relus: u64,
    pub macs: u64,
    pub inferences: Vec<InferenceReport>,
    pub session_seconds: f64,
}

/// Client material for one inference, produced offline and consumed by exactly one online run.
struct ClientOffline {
    input_mask: Vec<u64>,
    output_share: Vec<u64>,
    relus: ClientRelus,
    report: OfflineReport,
}

impl Drop for ClientOffline {
    fn drop(&mut self) {
        self.input_mask.zeroize();
        self.output_share.zeroize();
    }
}

/// Connects to `addr` and runs `options.batch` private inferences of `image` ([c,h,w] float32).
pub fn run_client(
    addr: &str,
    shape: [usize; 3],
    image: &[f32],
    options: &ClientOptions,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<SessionReport, ProtocolError> {
    let ch = TcpChannel::connect(addr).map_err(pi_net::NetError::from)?;
    ch.set_read_timeout(Some(options.read_timeout))
        .map_err(pi_net::NetError::from)?;
    let mut ch = ch;
    run_client_on(&mut ch, shape, image, options, progress)
}

/// Runs a client session over an already connected channel.
pub fn run_client_on<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    shape: [usize; 3],
    image: &[f32],
    options: &ClientOptions,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<SessionReport, ProtocolError> {
    let session_start = Instant::now();
    if options.batch == 0 {
        return Err(ProtocolError::BadInput("batch must be at least 1".into()));
    }
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION,
        batch: options.batch,
    })?;
    ch.flush()?;
    let public = match ch.recv::<ServerHello>()? {
        ServerHello::Accept { version, model } if version == PROTOCOL_VERSION => model,
        ServerHello::Accept { version, .. } => {
            return Err(ProtocolError::Violation(format!(
                "server speaks version {version}"
            )))
        }
        ServerHello::Reject { reason } => return Err(ProtocolError::PeerAborted(reason)),
    };
    let program = Program::for_client(public.to_model()?, public.config)?
        .with_he_link_mbps(public.he_link_mbps)?;
    if shape != program.input_shape() {
        return Err(ProtocolError::BadInput(format!(
            "image has shape {:?}, the model expects {:?}",
            shape,
            program.input_shape()
        )));
    }
    let input = program.quantize_input(image)?;

    let mut rng = csprng();
    let he = ClientHe::new(program.he_params(), &mut rng)?;
    ch.send_frame(&he.public_setup())?;
    ch.flush()?;

    let mut material = Vec::with_capacity(options.batch as usize);
    for i in 0..options.batch as usize {
        material.push(offline(
            ch,
            &program,
            &he,
            &mut rng,
            i,
            options.batch as usize,
            progress,
        )?);
    }
    let mut inferences = Vec::with_capacity(material.len());
    for (i, m) in material.into_iter().enumerate() {
        progress("online", i, options.batch as usize);
        inferences.push(online(ch, &program, &input, m)?);
    }
    progress("done", options.batch as usize, options.batch as usize);
    Ok(SessionReport {
        model: program.name().to_string(),
        relus: program.relus(),
        macs: program.macs(),
        inferences,
        session_seconds: secs(session_start),
    })
}

/// Offline phase of one inference: every client share is fixed here, before any input exists.
fn offline<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    he: &ClientHe,
    rng: &mut rand_chacha::ChaCha20Rng,
    index: usize,
    batch: usize,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<ClientOffline, ProtocolError> {
    let start = Instant::now();
    let counters = ch.counters();
    let bits = program.ring_bits();
    let ring = mask(bits);
    let steps = program.steps();
    let label = if batch > 1 {
        format!("offline {}/{} HE", index + 1, batch)
    } else {
        "offline: HE".into()
    };
    let linear_total = program.linear_count();

    let mut shares: Vec<Option<Vec<u64>>> = vec![None; steps.len()];
    let mut gc_inputs: Vec<(u64, u64)> = Vec::with_capacity(program.relu_elements());
    let mut he_seconds = 0.0;
    let mut linear_done = 0;
    let mut input_mask = Vec::new();
    for (id, step) in steps.iter().enumerate() {
        let out = match step {
            Step::Input => {
                let r: Vec<u64> = (0..program.input_len())
                    .map(|_| rng.gen::<u64>() & ring)
                    .collect();
                input_mask = r.clone();
                r
            }
            Step::Linear {
                shape,
                pre_shift,
                input,
            } => {
                progress(&label, linear_done, linear_total);
                let mut x = take_input(&shares, *input)?;
                truncate_client_all(&mut x, *pre_shift, bits);
                let t = Instant::now();
                let y = pi_he::client_linear(ch, he, shape, &x)?;
                he_seconds += secs(t);
                linear_done += 1;
                y
            }
            Step::Relu {
                input,
                params,
                selected,
                shift,
            } => {
                let x = shares
                    .get(*input)
                    .and_then(|s| s.as_deref())
                    .ok_or_else(|| missing(*input))?;
                let wmask = mask(params.in_bits);
                let mut out = Vec::with_capacity(x.len());
                for (i, &v) in x.iter().enumerate() {
                    if selected.contains(i) {
                        let r = rng.gen::<u64>() & ring;
                        gc_inputs.push((v & wmask, r.wrapping_neg() & ring));
                        out.push(r);
                    } else {
                        out.push(crate::shares::truncate_client(v, *shift, bits));
                    }
                }
                out
            }
            Step::Truncate { input, shift } => {
                let mut x = take_input(&shares, *input)?;
                truncate_client_all(&mut x, *shift, bits);
                x
            }
            Step::Local { inputs } => {
                let xs: Vec<&[u64]> = inputs
                    .iter()
                    .map(|&i| {
                        shares
                            .get(i)
                            .and_then(|s| s.as_deref())
                            .ok_or_else(|| missing(i))
                    })
                    .collect::<Result<_, _>>()?;
                program.eval_local(id, &xs)?
            }
        };
        shares[id] = Some(out);
        for dead in program.last_uses(id) {
            shares[*dead] = None;
        }
    }
    let output_share = shares[program.output()]
        .take()
        .ok_or(ProtocolError::Violation("no output".into()))?;

    progress(
        if batch > 1 {
            "offline: garbled ReLUs"
        } else {
            "offline: OT + garbled ReLUs"
        },
        0,
        1,
    );
    let t = Instant::now();
    let relus = pi_gc::evaluate_offline(ch, program.relu_params(), &gc_inputs, rng)?;
    let gc_seconds = secs(t);
    let done: OfflineDone = ch.recv()?;
    let traffic = ch.counters().since(counters);
    let stats = relus.stats();
    Ok(ClientOffline {
        input_mask,
        output_share,
        relus,
        report: OfflineReport {
            seconds: secs(start),
            bytes_sent: traffic.sent,
            bytes_received: traffic.received,
            he_seconds,
            garble_seconds: (gc_seconds - stats.ot_seconds).max(0.0),
            ot_seconds: stats.ot_seconds,
            server_he_seconds: done.he_seconds,
            server_garble_seconds: done.garble_seconds,
        },
    })
}

/// Online phase of one inference: consumes its offline material.
fn online<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    input: &[u64],
    mut m: ClientOffline,
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
    for step in program.steps() {
        if let Step::Relu { selected, .. } = step {
            let t = Instant::now();
            m.relus.online(ch, selected.len())?;
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

/// A copy of an earlier node's share (the caller may truncate it in place).
fn take_input(shares: &[Option<Vec<u64>>], id: usize) -> Result<Vec<u64>, ProtocolError> {
    shares
        .get(id)
        .and_then(|s| s.clone())
        .ok_or_else(|| missing(id))
}

fn missing(id: usize) -> ProtocolError {
    ProtocolError::Violation(format!("share of node {id} missing"))
}
