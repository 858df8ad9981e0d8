//! Server side: answers HE queries and garbles offline, evaluates linear layers in the clear online.
//!
//! A session is [`handshake`] (hello → public model), the HE key setup, `batch` × [`offline`]
//! (each yields one [`ServerMaterial`]), then `batch` × [`online`] (each consumes one).

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

pub use offline::ServerMaterial;

use super::{csprng, secs};
use crate::nonlinear::{plan_layers, Link, ReluChoice, ReluCosts, ReluProtocol};
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
        let options = ServeOptions {
            link: Link {
                mbps,
                ..Link::default()
            },
            ..ServeOptions::default()
        };
        Self::with_options(model, config, &options)
    }

    /// Plans the model for `options.link` with the ReLU protocol(s) `options.relu` chooses.
    pub fn with_options(
        model: Model,
        config: FixedConfig,
        options: &ServeOptions,
    ) -> Result<Self, ProtocolError> {
        let mbps = options.link.mbps;
        let mut public = PublicModel::new(&model, config);
        public.link_mbps = mbps;
        public.he_compute_milli = options.he_compute_milli;
        let program = Program::new(model, config)?
            .with_he_link_mbps(mbps)?
            .with_he_compute_milli(options.he_compute_milli)?;
        public.relu_protocols = plan_layers(
            &program.relu_layers(),
            &options.relu,
            &options.link,
            &options.costs,
        )?;
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

    /// The protocol of each ReLU layer (announced to clients).
    pub fn relu_protocols(&self) -> &[ReluProtocol] {
        &self.public.relu_protocols
    }
}

/// How a model is served: the link to plan for and the ReLU protocol choice.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeOptions {
    /// The link both the HE planner and `ReluChoice::Auto` assume.
    pub link: Link,
    /// Garbled circuits, OT, or per layer automatically.
    pub relu: ReluChoice,
    /// Compute costs for `Auto` (measured on the host by the server binary).
    pub costs: ReluCosts,
    /// The host's HE compute speed relative to the HE planner's reference machine, in
    /// thousandths (`pi_he::measure_compute_milli`; 1000 = the reference).
    pub he_compute_milli: u32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            link: Link::default(),
            relu: ReluChoice::Gc,
            costs: ReluCosts::default(),
            he_compute_milli: 1000,
        }
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
    let hello = handshake::accept(ch, served, limits)?;
    let setup = ch.recv_frame()?;
    let he = ServerHe::new(served.program.he_params(), &setup)?;
    let mut rng = csprng();
    let mut material = Vec::with_capacity(hello.batch as usize);
    for _ in 0..hello.batch {
        material.push(offline::offline(ch, served, &he, &mut rng)?);
    }
    for m in material {
        online::online(ch, &served.program, m)?;
    }
    let c = ch.counters();
    Ok(SessionSummary {
        inferences: hello.batch,
        seconds: secs(start),
        bytes_sent: c.sent,
        bytes_received: c.received,
    })
}
