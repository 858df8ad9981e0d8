//! Shared helpers for the end-to-end tests: loopback sessions and the reference to compare with.

use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread;

use models::fixed::{self, FixedConfig};
use models::Model;
use pi_net::Channel;
use protocol::{
    ClientOptions, ProtocolError, ServedModel, SessionLimits, SessionReport, SessionSummary,
};
use rand::{Rng, SeedableRng};

pub mod hostile;
pub mod process;
pub mod proxy;

/// A reader that keeps a copy of every byte it reads (the server's view of the session).
pub struct Recorder<R> {
    inner: R,
    /// Everything read so far.
    pub log: Arc<Mutex<Vec<u8>>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut log) = self.log.lock() {
            log.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// A seeded normalised-looking random image for `model`.
pub fn random_image(model: &Model, seed: u64) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..model.input.iter().product::<usize>())
        .map(|_| rng.gen_range(-2.0f32..2.0))
        .collect()
}

/// The result of one loopback session: the client's report, the server's outcome and its transcript.
pub struct Loopback {
    pub client: Result<SessionReport, ProtocolError>,
    pub server: Result<SessionSummary, ProtocolError>,
    /// Every byte the server received.
    pub server_received: Vec<u8>,
}

/// Runs one full session between a server thread and a client over a real loopback TCP socket.
pub fn loopback_session(served: Arc<ServedModel>, image: &[f32], batch: u32) -> Loopback {
    let options = ClientOptions {
        batch,
        ..Default::default()
    };
    loopback_session_with(served, image, &options)
}

/// [`loopback_session`] with the client's options.
pub fn loopback_session_with(
    served: Arc<ServedModel>,
    image: &[f32],
    options: &ClientOptions,
) -> Loopback {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let server_log = log.clone();
    let shape = served.program().input_shape();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream.set_nodelay(true).ok();
        let reader = Recorder {
            inner: stream.try_clone().expect("clone"),
            log: server_log,
        };
        let mut ch = Channel::new(reader, stream);
        protocol::serve_channel(&mut ch, &served, &SessionLimits::default())
    });
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).ok();
    let mut ch = Channel::new(stream.try_clone().expect("clone"), stream);
    let client = protocol::run_client_on(&mut ch, shape, image, options, &|_, _, _| {});
    drop(ch);
    let server = server.join().expect("server thread");
    let server_received = log.lock().map(|l| l.clone()).unwrap_or_default();
    Loopback {
        client,
        server,
        server_received,
    }
}

/// The fixed-point reference logits and the float logits of `model` on `image`.
pub fn references(model: &Model, image: &[f32]) -> (Vec<f32>, Vec<f32>) {
    references_with(model, &FixedConfig::default(), image)
}

/// [`references`] under a given fixed-point format.
pub fn references_with(model: &Model, config: &FixedConfig, image: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let plan = fixed::plan(model, config).expect("plan");
    let fixed = fixed::infer(model, &plan, image).expect("fixed reference");
    let float = models::float::infer(model, image).expect("float reference");
    (fixed, float)
}

/// Whether the model has a point where shares are truncated locally (±1 ulp, docs/protocol.md):
/// a removed ReLU, an implicit truncation before a linear layer, or a channel-subset ReLU.
pub fn has_local_truncation(model: &Model) -> bool {
    has_local_truncation_with(model, &FixedConfig::default())
}

/// [`has_local_truncation`] under a given fixed-point format.
pub fn has_local_truncation_with(model: &Model, config: &FixedConfig) -> bool {
    let plan = fixed::plan(model, config).expect("plan");
    model.nodes.iter().zip(&plan.nodes).any(|(node, np)| {
        let partial =
            matches!(&node.op, models::Op::Relu(r) if r.channels.is_some() || r.elements.is_some());
        let truncates = np.local_truncation().is_some_and(|t| t.shift > 0);
        truncates && (partial || np.relu().is_none())
    })
}

/// The small ResNet (8×8×3 input, 10 classes) the process-level tests serve.
pub fn tiny_model(seed: u64) -> Model {
    let mut spec = models::zoo::ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = seed;
    spec.bias_std = 0.1;
    spec.build().expect("valid spec")
}

/// Writes `model` as ONNX into `dir` and returns the path.
pub fn save_model(model: &Model, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("model.onnx");
    models::onnx::save(model, &path).expect("save model");
    path
}

/// Client options for TLS against a server certificate from `pki`.
pub fn tls_options(pki: &pi_net::devcert::DevPki, idle: std::time::Duration) -> ClientOptions {
    let tls = pi_net::ClientTls::from_pem(pki.ca_cert.as_bytes(), None, "test CA").expect("CA");
    ClientOptions {
        connect: pi_net::ConnectOptions {
            security: pi_net::ClientSecurity::Tls {
                tls,
                server_name: None,
            },
            connect_timeout: std::time::Duration::from_secs(5),
            idle_timeout: idle,
        },
        ..ClientOptions::default()
    }
}
