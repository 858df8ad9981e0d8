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
use pi_net::{Channel, Deadlines, NetChannel, NetError, ServerSecurity};

pub use bank::{Banking, TicketLog};
pub use offline::ServerMaterial;

use super::{csprng, secs};
use crate::budget::{SessionBudget, SessionLimits};
use crate::messages::SessionMode;
use crate::nonlinear::{
    plan_layers, plan_layers_banked, Link, ReluChoice, ReluCosts, ReluProtocol,
};
use crate::program::Program;
use crate::public_model::PublicModel;
use crate::ProtocolError;

/// How long a side that ends a session keeps the connection to deliver its reason.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);

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
    budget: SessionBudget,
    /// The public model preprocess sessions announce: its ReLU plan is the banked one.
    bank_public: PublicModel,
    /// What a session costs under the banked plan.
    bank_budget: SessionBudget,
    /// BLAKE3 of the whole model (weights included) and its fixed-point configuration: tickets
    /// are bound to it.
    fingerprint: [u8; 32],
    /// The public model's fingerprint (what a client's banked set names).
    bank_fingerprint: [u8; 32],
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
        public.he_costs = options.he_costs;
        let fingerprint = model_fingerprint(&model, &config)?;
        let bank_fingerprint = public.bank_fingerprint();
        let program = Program::new(model, config)?
            .with_he_link_mbps(mbps)?
            .with_he_costs(options.he_costs)?;
        // Max pooling and ReLU6 layers have no OT protocol: they always run garbled.
        let relu_layers = program.relu_layers();
        public.relu_protocols = program.restrict_plan(&plan_layers(
            &relu_layers,
            &options.relu,
            &options.link,
            &options.costs,
        )?);
        // Banked sets: the plan whose online phase is fastest (their offline phase runs ahead).
        let mut bank_public = public.clone();
        bank_public.relu_protocols = program.restrict_plan(&plan_layers_banked(
            &relu_layers,
            &options.relu,
            &options.link,
            &options.costs,
        )?);
        let layers = program.prepare_he_layers(options.kernel_cache_bytes)?;
        let budget = program.budget_for(&public.relu_protocols)?;
        let bank_budget = program.budget_for(&bank_public.relu_protocols)?;
        Ok(ServedModel {
            program,
            public,
            layers: Arc::new(layers),
            budget,
            bank_public,
            bank_budget,
            fingerprint,
            bank_fingerprint,
        })
    }

    /// Fingerprint of the served model, weights included (tickets are bound to it).
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// The same model with another declared logit bound (default 2^M; clients refuse results
    /// outside it). Must be positive and finite.
    pub fn with_logit_bound(mut self, bound: f32) -> Result<Self, ProtocolError> {
        if !(bound.is_finite() && bound > 0.0) {
            return Err(ProtocolError::BadInput(format!(
                "logit bound {bound} must be positive and finite"
            )));
        }
        self.public.logit_bound = bound;
        Ok(self)
    }

    /// The logit bound clients are told.
    pub fn logit_bound(&self) -> f32 {
        self.public.logit_bound
    }

    /// What each phase of a session costs (frame limits and deadlines derive from it).
    pub fn budget(&self) -> &SessionBudget {
        &self.budget
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

    /// The HE weight kernels and how many of them are cached in NTT form across sessions.
    pub fn kernel_cache(&self) -> KernelCache {
        let mut c = KernelCache::default();
        for l in self.layers.iter() {
            c.kernels += l.kernels();
            c.cached += l.cached_kernels();
            c.bytes += l.cached_bytes();
        }
        c
    }

    /// The protocol of each ReLU layer of the sets preprocess sessions bank (the same as
    /// [`ServedModel::relu_protocols`] unless the choice is `auto`, which then weighs only the
    /// online phase).
    pub fn bank_relu_protocols(&self) -> &[ReluProtocol] {
        &self.bank_public.relu_protocols
    }

    /// The public model a session of `mode` is told (preprocess sessions get the banked plan).
    pub(crate) fn public_for(&self, mode: SessionMode) -> &PublicModel {
        match mode {
            SessionMode::Preprocess => &self.bank_public,
            _ => &self.public,
        }
    }

    /// The online phase's budget under `plan` (a banked set's, which may differ from today's).
    pub(crate) fn online_phase_for(
        &self,
        plan: &[ReluProtocol],
    ) -> Result<crate::budget::Phase, ProtocolError> {
        if plan == self.bank_relu_protocols() {
            Ok(self.bank_budget.online)
        } else if plan == self.relu_protocols() {
            Ok(self.budget.online)
        } else {
            self.program.online_phase_for(plan)
        }
    }
}

/// The NTT-form kernel cache of a served model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCache {
    /// Kernel plaintexts of all linear layers.
    pub kernels: usize,
    /// Of which cached (the others are transformed in every session).
    pub cached: usize,
    /// Bytes the cache holds.
    pub bytes: usize,
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
    /// What each HE operation costs on this host (`pi_he::measure_op_costs`): the HE block
    /// planner weighs them against traffic.
    pub he_costs: pi_he::HeOpCosts,
    /// Bytes of NTT-form weight kernels kept across sessions, all layers together (the others
    /// are transformed again in every session: [`Program::kernel_cache_plan`]).
    pub kernel_cache_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            link: Link::default(),
            relu: ReluChoice::Gc,
            costs: ReluCosts::default(),
            he_costs: pi_he::HeOpCosts::default(),
            kernel_cache_bytes: default_kernel_cache_bytes(),
        }
    }
}

/// The default kernel cache: a quarter of the host's memory (4 GiB where it cannot be read), so a
/// large model (ResNet-101, DenseNet-161: 12–14 GiB of kernels) leaves room for its sessions and,
/// on a development machine, for the client.
pub fn default_kernel_cache_bytes() -> usize {
    host_memory_bytes().map_or(4 << 30, |m| (m / 4) as usize)
}

/// Physical memory of this host (`MemTotal` of /proc/meminfo).
pub fn host_memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// BLAKE3 of the model (bincode, weights included) and its fixed-point configuration.
fn model_fingerprint(model: &Model, config: &FixedConfig) -> Result<[u8; 32], ProtocolError> {
    let bytes = bincode::serialize(&(model, config))
        .map_err(|e| ProtocolError::Violation(format!("model does not serialise: {e}")))?;
    Ok(blake3::derive_key("pi-bank 2025 served model v1", &bytes))
}

/// Serves one client on a connected plaintext socket until the session ends (tests and tools;
/// `pi-server` accepts TLS and hands over a [`NetChannel`] to [`serve_connection`]); no banking.
pub fn serve_session(
    stream: TcpStream,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    serve_session_with(stream, served, limits, None)
}

/// As [`serve_session`]; `banking` enables preprocess and redeem sessions.
pub fn serve_session_with(
    stream: TcpStream,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: Option<&Banking>,
) -> Result<SessionSummary, ProtocolError> {
    let deadlines = Deadlines::new(limits.idle_timeout);
    let ch = pi_net::accept(
        stream,
        &ServerSecurity::Plaintext,
        deadlines,
        limits.phase_slack,
    )?;
    serve_connection_with(ch, served, limits, banking)
}

/// Serves one client on an accepted connection; on failure tells the client why (abort frame)
/// before closing. No banking.
pub fn serve_connection(
    ch: NetChannel,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    serve_connection_with(ch, served, limits, None)
}

/// As [`serve_connection`]; `banking` enables preprocess and redeem sessions.
pub fn serve_connection_with(
    ch: NetChannel,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: Option<&Banking>,
) -> Result<SessionSummary, ProtocolError> {
    let mut ch = ch.with_frame_cap(limits.max_frame);
    let result = serve_channel_with(&mut ch, served, limits, banking)
        .map_err(ProtocolError::surface_peer_reason);
    if let Err(e) = &result {
        if !from_peer(e) {
            ch.send_abort(&format!("server: {e}"));
        }
    }
    ch.close(CLOSE_LINGER);
    result
}

/// Whether the error is the peer's doing at the transport level (nothing left to tell it).
pub(crate) fn from_peer(e: &ProtocolError) -> bool {
    matches!(e, ProtocolError::PeerAborted(_))
        || matches!(e.net(), Some(NetError::Aborted(_) | NetError::Closed))
}

/// Serves one client over any channel (tests use this with a recording reader): every phase
/// runs under its frame limit and deadline, derived from the model's [`SessionBudget`]. No
/// banking.
pub fn serve_channel<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
) -> Result<SessionSummary, ProtocolError> {
    serve_channel_with(ch, served, limits, None)
}

/// As [`serve_channel`]; `banking` enables preprocess and redeem sessions.
pub fn serve_channel_with<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    served: &ServedModel,
    limits: &SessionLimits,
    banking: Option<&Banking>,
) -> Result<SessionSummary, ProtocolError> {
    let start = Instant::now();
    let budget = served.budget;
    ch.begin_phase("hello", Some(limits.phase_slack), limits.hello_max_frame);
    let hello = handshake::accept(ch, served, limits, banking.is_some())?;
    let mut tickets = TicketLog::default();
    let inferences = match (hello.mode, banking) {
        (SessionMode::Inline, _) => {
            ch.set_session_deadline(limits.session_time(&budget, hello.batch));
            let he = he_setup(ch, served, limits)?;
            let mut rng = csprng();
            let mut material = Vec::with_capacity(hello.batch as usize);
            for i in 0..hello.batch {
                ch.begin_phase(
                    &phase_name("offline", i, hello.batch),
                    Some(limits.phase_time(&budget.offline)),
                    budget.offline.up.max_frame,
                );
                material.push(offline::offline(ch, served, &he, &mut rng, false)?);
            }
            for (i, m) in material.into_iter().enumerate() {
                ch.begin_phase(
                    &phase_name("online", i as u32, hello.batch),
                    Some(limits.phase_time(&budget.online)),
                    budget.online.up.max_frame,
                );
                online::online(ch, &served.program, m)?;
            }
            hello.batch
        }
        (SessionMode::Preprocess, Some(b)) => {
            ch.set_session_deadline(limits.bank_time(&budget, hello.batch));
            let he = he_setup(ch, served, limits)?;
            bank::preprocess(ch, served, limits, &he, b, hello.batch, &mut tickets)?;
            0
        }
        (SessionMode::Redeem, Some(b)) => {
            ch.set_session_deadline(limits.redeem_time(&budget));
            bank::redeem(ch, served, limits, b, &mut tickets)?;
            u32::from(tickets.redeemed.is_some())
        }
        // The handshake refuses banked modes when banking is off.
        (_, None) => 0,
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
    limits: &SessionLimits,
) -> Result<ServerHe, ProtocolError> {
    let budget = served.budget;
    ch.begin_phase(
        "HE key setup",
        Some(limits.phase_time(&budget.setup)),
        budget.setup.up.max_frame,
    );
    let setup = ch.recv_frame()?;
    let he = ServerHe::new(served.program.he_params()?, &setup)?;
    drop(setup);
    Ok(he)
}

/// "offline", or "offline 2/4" in a batch.
pub(crate) fn phase_name(what: &str, i: u32, batch: u32) -> String {
    if batch > 1 {
        format!("{what} {}/{batch}", i + 1)
    } else {
        what.to_string()
    }
}
