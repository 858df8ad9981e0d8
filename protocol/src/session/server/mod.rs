//! Server side: answers HE queries and garbles offline, evaluates linear layers in the clear online.
//!
//! A session is [`handshake`] (hello → public model), then by the client's mode:
//! * inline: the HE key setup, `batch` × [`offline`] (each yields one [`ServerMaterial`]), then
//!   `batch` × [`online`] (each consumes one);
//! * preprocess: the HE key setup, `batch` × [`offline`], each sealed into a ticket ([`bank`]);
//! * redeem: a ticket is opened and recorded as used, then one [`online`] phase ([`bank`]).

mod bank;
mod handshake;
mod offline;
mod online;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use models::fixed::FixedConfig;
use models::Model;
use pi_he::{PreparedLayer, ServerHe};
use pi_net::{Channel, TcpChannel};

pub use bank::{Banking, TicketLog};
pub use offline::ServerMaterial;

use super::{csprng, secs};
use crate::messages::SessionMode;
use crate::program::Program;
use crate::public_model::PublicModel;
use crate::ProtocolError;

/// Limits applied to every client session.
#[derive(Clone, Debug)]
pub struct SessionLimits {
    /// Longest wait for a client message before the session is dropped.
    pub read_timeout: Duration,
    /// Largest frame accepted from a client.
    pub max_frame: usize,
    /// Most inferences one inline session may preprocess.
    pub max_batch: u32,
    /// Most sets one preprocess session may bank.
    pub max_bank: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            read_timeout: Duration::from_secs(120),
            max_frame: 64 << 20,
            max_batch: 16,
            max_bank: 256,
        }
    }
}

/// What the server logs about a finished session.
#[derive(Clone, Debug, Default)]
pub struct SessionSummary {
    pub mode: Option<SessionMode>,
    pub inferences: u32,
    /// Tickets issued, redeemed and refused.
    pub tickets: TicketLog,
    pub seconds: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// A model prepared once for serving: fixed-point plan and HE weight plaintexts, shared by all sessions.
pub struct ServedModel {
    program: Program,
    public: PublicModel,
    layers: Arc<Vec<PreparedLayer>>,
    /// BLAKE3 of the whole model (weights included) and its fixed-point configuration: tickets
    /// are bound to it.
    fingerprint: [u8; 32],
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
        let fingerprint = model_fingerprint(&model, &config)?;
        let program = Program::new(model, config)?.with_he_link_mbps(mbps)?;
        let layers = program.prepare_he_layers()?;
        Ok(ServedModel {
            program,
            public,
            layers: Arc::new(layers),
            fingerprint,
        })
    }

    /// Fingerprint of the served model, weights included (tickets are bound to it).
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
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

/// BLAKE3 of the model (bincode, weights included) and its fixed-point configuration.
fn model_fingerprint(model: &Model, config: &FixedConfig) -> Result<[u8; 32], ProtocolError> {
    let bytes = bincode::serialize(&(model, config))
        .map_err(|e| ProtocolError::Violation(format!("model does not serialise: {e}")))?;
    Ok(blake3::derive_key("pi-bank 2025 served model v1", &bytes))
}

/// Serves one client on a connected socket until the session ends (no banking).
pub fn serve_session(
    stream: TcpStream,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    serve_session_with(stream, served, limits, None)
}

/// Serves one client on a connected socket; `banking` enables preprocess and redeem sessions.
pub fn serve_session_with(
    stream: TcpStream,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: Option<&Banking>,
) -> Result<SessionSummary, ProtocolError> {
    stream
        .set_read_timeout(Some(limits.read_timeout))
        .map_err(pi_net::NetError::from)?;
    let ch = TcpChannel::from_tcp(stream).map_err(pi_net::NetError::from)?;
    let mut ch = ch.with_max_frame(limits.max_frame);
    serve_channel_with(&mut ch, served, limits, banking)
}

/// Serves one client over any channel (tests use this with a recording reader); no banking.
pub fn serve_channel<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    serve_channel_with(ch, served, limits, None)
}

/// Serves one client over any channel; `banking` enables preprocess and redeem sessions.
pub fn serve_channel_with<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: Option<&Banking>,
) -> Result<SessionSummary, ProtocolError> {
    let start = Instant::now();
    let hello = handshake::accept(ch, served, limits, banking.is_some())?;
    let mut tickets = TicketLog::default();
    let inferences = match hello.mode {
        SessionMode::Inline => {
            let he = he_setup(ch, served)?;
            let mut rng = csprng();
            let mut material = Vec::with_capacity(hello.batch as usize);
            for _ in 0..hello.batch {
                material.push(offline::offline(ch, served, &he, &mut rng)?);
            }
            for m in material {
                online::online(ch, &served.program, m)?;
            }
            hello.batch
        }
        // The handshake refused banked modes when banking is off.
        SessionMode::Preprocess => match banking {
            Some(b) => {
                let he = he_setup(ch, served)?;
                bank::preprocess(ch, served, &he, b, hello.batch, &mut tickets)?;
                0
            }
            None => 0,
        },
        SessionMode::Redeem => match banking {
            Some(b) => {
                bank::redeem(ch, served, b, &mut tickets)?;
                u32::from(tickets.redeemed.is_some())
            }
            None => 0,
        },
    };
    let c = ch.counters();
    Ok(SessionSummary {
        mode: Some(hello.mode),
        inferences,
        tickets,
        seconds: secs(start),
        bytes_sent: c.sent,
        bytes_received: c.received,
    })
}

/// Reads the client's HE public setup.
fn he_setup<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
) -> Result<ServerHe, ProtocolError> {
    let setup = ch.recv_frame()?;
    Ok(ServerHe::new(served.program.he_params()?, &setup)?)
}
