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
use pi_net::{Channel, TcpChannel};
use serde::{Deserialize, Serialize};

pub use bank::{
    infer, infer_on, preprocess, preprocess_on, BankedInference, BankedSetReport, PreprocessReport,
};
pub use offline::ClientMaterial;

use super::{csprng, secs};
use crate::messages::SessionMode;
use crate::program::Program;
use crate::report::InferenceReport;
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

/// The program the client runs for the server's public model.
fn client_program(public: &crate::PublicModel) -> Result<Program, ProtocolError> {
    Program::for_client(public.to_model()?, public.config)?.with_he_link_mbps(public.he_link_mbps)
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
    let public = handshake::hello(ch, options.batch, SessionMode::Inline)?;
    let program = client_program(&public)?;
    let input = quantize(&program, shape, image)?;
    let mut rng = csprng();
    let he = he_setup(ch, &program, &mut rng)?;

    let mut material = Vec::with_capacity(options.batch as usize);
    for i in 0..options.batch as usize {
        material.push(offline::offline(
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
        inferences.push(online::online(ch, &program, &input, m)?);
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
