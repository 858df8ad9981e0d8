//! Server side: answers HE queries and garbles offline, evaluates linear layers in the clear online.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use models::fixed::FixedConfig;
use models::Model;
use pi_gc::ServerRelus;
use pi_he::{PreparedLayer, ServerHe};
use pi_net::{Channel, TcpChannel};
use zeroize::Zeroize;

use super::{csprng, secs};
use crate::messages::{
    ClientHello, MaskedInput, OfflineDone, OutputShare, ServerHello, PROTOCOL_VERSION,
};
use crate::program::{Program, Step};
use crate::public_model::PublicModel;
use crate::shares::{mask, truncate_server, truncate_server_all};
use crate::ProtocolError;

/// Limits applied to every client session.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Longest wait for a client message before the session is dropped.
    pub read_timeout: Duration,
    /// Largest frame accepted from a client.
    pub max_frame: usize,
    /// Most inferences one session may preprocess.
    pub max_batch: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            read_timeout: Duration::from_secs(120),
            max_frame: 64 << 20,
            max_batch: 16,
        }
    }
}

/// What the server logs about a finished session.
#[derive(Clone, Debug, Default)]
pub struct SessionSummary {
    pub inferences: u32,
    pub seconds: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A model prepared once for serving: fixed-point plan and HE weight plaintexts, shared by all sessions.
pub struct ServedModel {
    program: Program,
    public: PublicModel,
    layers: Arc<Vec<PreparedLayer>>,
}

impl ServedModel {
    /// Plans the model in fixed point and transforms every linear layer's weights for HE.
    pub fn new(model: Model, config: FixedConfig) -> Result<Self, ProtocolError> {
        Self::with_he_link(model, config, pi_he::DEFAULT_LINK_MBPS)
    }

    /// As `new`, with the HE block planner tuned for a link of `mbps` Mbit/s (announced to clients).
    pub fn with_he_link(
        model: Model,
        config: FixedConfig,
        mbps: u32,
    ) -> Result<Self, ProtocolError> {
        let mut public = PublicModel::new(&model, config);
        public.he_link_mbps = mbps;
        let program = Program::new(model, config)?.with_he_link_mbps(mbps)?;
        let layers = program.prepare_he_layers()?;
        Ok(ServedModel {
            program,
            public,
            layers: Arc::new(layers),
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        self.program.name()
    }

    /// ReLUs evaluated per inference.
    pub fn relus(&self) -> u64 {
        self.program.relus()
    }

    /// Multiply-accumulates per inference.
    pub fn macs(&self) -> u64 {
        self.program.macs()
    }

    /// The fixed-point program the sessions run.
    pub fn program(&self) -> &Program {
        &self.program
    }
}

/// Server material for one inference.
struct ServerOffline {
    /// The server's HE share `s` for each linear node, in step order.
    linear_shares: Vec<Vec<u64>>,
    relus: ServerRelus,
}

impl Drop for ServerOffline {
    fn drop(&mut self) {
        self.linear_shares.iter_mut().for_each(|s| s.zeroize());
    }
}

/// Serves one client on a connected socket until the session ends.
pub fn serve_session(
    stream: TcpStream,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    stream
        .set_read_timeout(Some(limits.read_timeout))
        .map_err(pi_net::NetError::from)?;
    let ch = TcpChannel::from_tcp(stream).map_err(pi_net::NetError::from)?;
    let mut ch = ch.with_max_frame(limits.max_frame);
    serve_channel(&mut ch, served, limits)
}

/// Serves one client over any channel (tests use this with a recording reader).
pub fn serve_channel<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    let start = Instant::now();
    let hello: ClientHello = ch.recv()?;
    if hello.version != PROTOCOL_VERSION || hello.batch == 0 || hello.batch > limits.max_batch {
        let reason = if hello.version != PROTOCOL_VERSION {
            format!(
                "protocol version {} not supported (server: {PROTOCOL_VERSION})",
                hello.version
            )
        } else {
            format!("batch {} outside 1..={}", hello.batch, limits.max_batch)
        };
        ch.send(&ServerHello::Reject {
            reason: reason.clone(),
        })?;
        ch.flush()?;
        return Err(ProtocolError::Violation(reason));
    }
    ch.send(&ServerHello::Accept {
        version: PROTOCOL_VERSION,
        model: served.public.clone(),
    })?;
    ch.flush()?;

    let program = &served.program;
    let setup = ch.recv_frame()?;
    let he = ServerHe::new(program.he_params(), &setup)?;
    let mut rng = csprng();

    let mut material = Vec::with_capacity(hello.batch as usize);
    for _ in 0..hello.batch {
        let t = Instant::now();
        let mut linear_shares = Vec::with_capacity(program.linear_count());
        for layer in served.layers.iter() {
            linear_shares.push(pi_he::server_linear(ch, &he, layer, &mut rng)?);
        }
        let he_seconds = secs(t);
        let t = Instant::now();
        let relus = pi_gc::garble_offline(ch, program.relu_params(), &mut rng)?;
        ch.send(&OfflineDone {
            he_seconds,
            garble_seconds: secs(t),
        })?;
        ch.flush()?;
        material.push(ServerOffline {
            linear_shares,
            relus,
        });
    }
    for m in material {
        online(ch, program, m)?;
    }
    let c = ch.counters();
    Ok(SessionSummary {
        inferences: hello.batch,
        seconds: secs(start),
        bytes_sent: c.sent,
        bytes_received: c.received,
    })
}

/// Online phase of one inference: linear layers on the server's shares in the clear, ReLUs by GC.
fn online<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    mut m: ServerOffline,
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
                let s = s_iter
                    .next()
                    .ok_or(ProtocolError::Exhausted("HE correlations"))?;
                if s.len() != y.len() {
                    return Err(ProtocolError::Violation("HE share length mismatch".into()));
                }
                y.iter_mut()
                    .zip(&s)
                    .for_each(|(v, s)| *v = v.wrapping_add(*s) & ring);
                linear_seconds += secs(t);
                y
            }
            Step::Relu {
                input,
                params,
                selected,
                shift,
            } => {
                let x = get(&shares, *input)?;
                let wmask = mask(params.in_bits);
                let a: Vec<u64> = x
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| selected.contains(*i))
                    .map(|(_, v)| v & wmask)
                    .collect();
                let t = Instant::now();
                let outs = m.relus.online(ch, &a)?;
                gc_seconds += secs(t);
                let mut outs = outs.into_iter();
                let mut y = Vec::with_capacity(x.len());
                for (i, v) in x.iter().enumerate() {
                    y.push(if selected.contains(i) {
                        outs.next()
                            .ok_or(ProtocolError::Violation("ReLU output count".into()))?
                    } else {
                        truncate_server(*v, *shift, bits)
                    });
                }
                y
            }
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
