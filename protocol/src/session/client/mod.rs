//! Client side: offline (HE correlations, OT + garbled circuits) then online (masked input, GC ReLUs).
//!
//! A session is [`handshake`] (hello → public model), the HE key setup, `batch` × [`offline`]
//! (each yields one [`ClientMaterial`]), then `batch` × [`online`] (each consumes one).

mod bank;
mod handshake;
mod offline;
mod online;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pi_he::ClientHe;
use pi_net::{Channel, ConnectOptions, NetChannel, NetError};
use serde::{Deserialize, Serialize};

pub use bank::{
    infer, infer_on, preprocess, preprocess_on, BankedInference, BankedSetReport, PreprocessReport,
};
pub use offline::ClientMaterial;

use super::server::phase_name;
use super::{csprng, secs};
use crate::messages::SessionMode;
use crate::program::Program;
use crate::report::InferenceReport;
use crate::ProtocolError;

/// How the client runs a session.
#[derive(Clone)]
pub struct ClientOptions {
    /// Inferences to preprocess and then run in one session.
    pub batch: u32,
    /// TLS or plaintext, connect and idle timeouts.
    pub connect: ConnectOptions,
    /// Longest the whole session may take (`None`: only the idle timeout applies).
    pub session_timeout: Option<Duration>,
    /// How much of the garbled material of the inline offline phases (all of a batch together)
    /// stays in memory; the rest waits in a temporary file until its online phase.
    pub gc_spill: pi_gc::SpillPolicy,
}

impl Default for ClientOptions {
    /// One inference, plaintext, 300 s idle timeout (tests; `pi-client` asks for TLS).
    fn default() -> Self {
        ClientOptions {
            batch: 1,
            connect: ConnectOptions::plaintext(Duration::from_secs(300)),
            session_timeout: None,
            gc_spill: default_gc_spill(),
        }
    }
}

/// Garbled material kept in memory by default: an eighth of the host's memory (2 GiB where it
/// cannot be read), the rest in the system's temporary directory.
pub fn default_gc_spill() -> pi_gc::SpillPolicy {
    pi_gc::SpillPolicy {
        memory_bytes: crate::host_memory_bytes().map_or(2 << 30, |m| m / 8),
        dir: None,
    }
}

/// The largest frame a client accepts in the server's hello (the weightless model).
const HELLO_REPLY_MAX: usize = 16 << 20;

/// Everything the client reports about one session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionReport {
    pub model: String,
    pub relus: u64,
    /// Comparisons beyond ReLU sign tests (max pooling, ReLU6 caps).
    #[serde(default)]
    pub comparisons: u64,
    pub macs: u64,
    pub inferences: Vec<InferenceReport>,
    pub session_seconds: f64,
}

/// Connects to `addr` and runs `options.batch` private inferences of `image` ([c,h,w] float32).
///
/// When the session fails, the server's reason is reported if it sent one; when this side
/// fails, it tells the server why before closing.
pub fn run_client(
    addr: &str,
    shape: [usize; 3],
    image: &[f32],
    options: &ClientOptions,
    progress: &dyn Fn(&str, usize, usize),
) -> Result<SessionReport, ProtocolError> {
    run_on_connection(addr, options, |ch| {
        run_client_on(ch, shape, image, options, progress)
    })
}

fn is_transport(e: &ProtocolError) -> bool {
    matches!(
        e.net(),
        Some(NetError::Io(_) | NetError::Timeout(_) | NetError::Closed)
    )
}

/// After a failed write or a lost connection: the abort frame the server may have sent first.
fn server_reason(ch: &mut NetChannel) -> Option<ProtocolError> {
    ch.begin_phase("closing", None, 64 << 20);
    if let Some(d) = ch.deadlines() {
        // After begin_phase, which would clear it: half a second, whatever the other limits.
        d.closing(Duration::from_millis(500));
    }
    for _ in 0..8 {
        match ch.recv_frame() {
            Ok(_) => continue,
            Err(NetError::Aborted(r)) => return Some(ProtocolError::PeerAborted(r)),
            Err(_) => return None,
        }
    }
    None
}

/// The program the client runs for the server's public model.
fn client_program(public: &crate::PublicModel) -> Result<Program, ProtocolError> {
    Program::for_client(public.to_model()?, public.config)?
        .with_he_link_mbps(public.link_mbps)?
        .with_he_costs(public.he_costs)
}

/// The image as ring elements, after checking its shape against the model's.
fn quantize(
    program: &Program,
    shape: [usize; 3],
    image: &[f32],
) -> Result<Vec<u64>, ProtocolError> {
    if shape != program.input_shape() {
        return Err(ProtocolError::BadInput(format!(
            "image has shape {:?}, the model expects {:?}",
            shape,
            program.input_shape()
        )));
    }
    program.quantize_input(image)
}

/// Fresh HE keys; their public part is sent to the server.
fn he_setup<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    program: &Program,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Result<ClientHe, ProtocolError> {
    let he = ClientHe::new(program.he_params()?, rng)?;
    ch.send_frame(&he.public_setup())?;
    ch.flush()?;
    Ok(he)
}

/// Runs a session over a connected channel with `body`, reporting the server's reason when the
/// session fails on its side and telling the server why when it fails on this side.
fn run_on_connection<T>(
    addr: &str,
    options: &ClientOptions,
    body: impl FnOnce(&mut NetChannel) -> Result<T, ProtocolError>,
) -> Result<T, ProtocolError> {
    let mut ch = pi_net::connect(addr, &options.connect)?;
    if let Some(t) = options.session_timeout {
        ch.set_session_deadline(t);
    }
    let result = body(&mut ch);
    let result = match result.map_err(ProtocolError::surface_peer_reason) {
        Err(e @ ProtocolError::PeerAborted(_)) => Err(e),
        Err(e) if crate::session::server::from_peer(&e) || is_transport(&e) => {
            Err(server_reason(&mut ch).unwrap_or(e))
        }
        Err(e) => {
            ch.send_abort(&format!("client: {e}"));
            Err(e)
        }
        ok => ok,
    };
    ch.close(Duration::from_millis(100));
    result
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
    ch.begin_phase("hello", None, HELLO_REPLY_MAX);
    let public = handshake::hello(ch, options.batch, SessionMode::Inline)?;
    crate::plausible::check_input(&public.config, image)?;
    let program = client_program(&public)?;
    let layers = program.relu_layers().len();
    if public.relu_protocols.len() != layers {
        return Err(ProtocolError::Violation(format!(
            "the server announced {} ReLU protocols for {layers} ReLU layers",
            public.relu_protocols.len()
        )));
    }
    let budget = program.budget_for(&public.relu_protocols)?;
    let input = quantize(&program, shape, image)?;
    let mut rng = csprng();
    let he = he_setup(ch, &program, &mut rng)?;

    let mut material = Vec::with_capacity(options.batch as usize);
    let mut spill = options.gc_spill.clone();
    for i in 0..options.batch as usize {
        ch.begin_phase(
            &phase_name("offline", i as u32, options.batch),
            None,
            budget.offline.down.max_frame,
        );
        let (m, in_memory) = offline::offline(
            ch,
            &program,
            &public.relu_protocols,
            &spill,
            &he,
            &mut rng,
            i,
            options.batch as usize,
            progress,
        )?;
        spill.memory_bytes = spill.memory_bytes.saturating_sub(in_memory);
        material.push(m);
    }
    let mut inferences = Vec::with_capacity(material.len());
    for (i, m) in material.into_iter().enumerate() {
        progress("online", i, options.batch as usize);
        ch.begin_phase(
            &phase_name("online", i as u32, options.batch),
            None,
            budget.online.down.max_frame,
        );
        let inference = online::online(ch, &program, &input, m)?;
        crate::plausible::check_logits(&inference.logits, public.logit_bound)?;
        inferences.push(inference);
    }
    progress("done", options.batch as usize, options.batch as usize);
    Ok(SessionReport {
        model: program.name().to_string(),
        relus: program.relus(),
        comparisons: program.comparisons(),
        macs: program.macs(),
        inferences,
        session_seconds: secs(session_start),
    })
}
