//! `pi-bench door`: figures of the server's door (issue 13), each against a real `pi-server`
//! process on loopback, each printing one JSON line:
//! * `mutate`: sessions through a frame-aware mutating proxy and their outcomes;
//! * `slowloris`: time for a legitimate client to be served while hostile connections are open;
//! * `replay`: server CPU seconds spent on a replayed (unauthenticated) client stream;
//! * `tls`: end-to-end time with TLS against --insecure-plaintext, in one run.

mod mutate;
mod replay;
mod slowloris;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use pi_net::devcert::DevPki;
use pi_tests::process::{temp_dir, HostCostCache, ServerProcess};
use protocol::ClientOptions;

/// Options shared by every door figure.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The pi-server binary (default: next to this pi-bench).
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Model to serve (default: server/assets/default.onnx, the embedded default model; `mutate`
    /// defaults to a small 8×8 ResNet so that hundreds of sessions take minutes).
    #[arg(long, value_name = "FILE.onnx")]
    model: Option<PathBuf>,
}

/// The door figures.
#[derive(Subcommand, Debug)]
pub enum DoorCommand {
    /// Sessions through a mutating proxy (flips, truncations, duplicated, dropped and reordered
    /// frames, both directions): outcomes, and that no wrong answer is reported as a success.
    Mutate(mutate::MutateArgs),
    /// Time for a legitimate client to be served while hostile connections are open.
    Slowloris(slowloris::SlowlorisArgs),
    /// Server CPU seconds spent on a replayed client stream: plaintext, TLS, TLS with client certificates.
    Replay(replay::ReplayArgs),
    /// End-to-end time of the same sessions over TLS and over --insecure-plaintext.
    Tls(tls::TlsArgs),
}

/// Runs one door figure.
pub fn run(cmd: &DoorCommand) -> anyhow::Result<()> {
    match cmd {
        DoorCommand::Mutate(a) => mutate::run(a),
        DoorCommand::Slowloris(a) => slowloris::run(a),
        DoorCommand::Replay(a) => replay::run(a),
        DoorCommand::Tls(a) => tls::run(a),
    }
}

/// A test bed: the model, its file, a throwaway PKI and the server binary.
pub(crate) struct Bed {
    pub dir: PathBuf,
    pub model: models::Model,
    pub model_file: PathBuf,
    pub pki: DevPki,
    pub bin: PathBuf,
}

impl Bed {
    /// `tiny`: without --model, serve the small 8×8 test ResNet instead of the default model.
    pub fn new(common: &Common, tag: &str, tiny: bool) -> anyhow::Result<Self> {
        let bin = match &common.server_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?.with_file_name("pi-server"),
        };
        if !bin.exists() {
            bail!(
                "{} not found: build it (cargo build --release -p server) or pass --server-bin",
                bin.display()
            );
        }
        let dir = temp_dir(tag);
        let model_file = match (&common.model, tiny) {
            (Some(m), _) => m.clone(),
            (None, true) => pi_tests::save_model(&pi_tests::tiny_model(31), &dir),
            (None, false) => PathBuf::from("server/assets/default.onnx"),
        };
        let model = models::onnx::load(&model_file)
            .with_context(|| format!("loading {}", model_file.display()))?;
        let pki = DevPki::generate(&["127.0.0.1", "localhost"])?;
        pki.write(&dir)?;
        Ok(Bed {
            dir,
            model,
            model_file,
            pki,
            bin,
        })
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_string_lossy().into_owned()
    }

    /// Starts a server: `tls` true for TLS (with `client_ca` for client certificates).
    pub fn server(
        &self,
        tls: bool,
        client_ca: bool,
        extra: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        let m = self.model_file.to_string_lossy().into_owned();
        let (c, k, ca) = (
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        );
        let mut args: Vec<&str> = vec!["--model", &m];
        if tls {
            args.extend(["--tls-cert", &c, "--tls-key", &k]);
            if client_ca {
                args.extend(["--tls-client-ca", &ca]);
            }
        } else {
            args.push("--insecure-plaintext");
        }
        args.extend_from_slice(extra);
        // A figure: the server plans with this host's costs as a real one would.
        ServerProcess::start_with(&self.bin, &args, HostCostCache::User).map_err(anyhow::Error::msg)
    }

    /// Client options over TLS (optionally with the client certificate) or plaintext.
    pub fn client(
        &self,
        tls: bool,
        identity: bool,
        idle: Duration,
    ) -> anyhow::Result<ClientOptions> {
        let mut o = if tls {
            pi_tests::tls_options(&self.pki, idle)
        } else {
            ClientOptions {
                connect: pi_net::ConnectOptions::plaintext(idle),
                ..ClientOptions::default()
            }
        };
        if identity {
            o.connect.security = pi_net::ClientSecurity::Tls {
                tls: pi_net::ClientTls::from_pem(
                    self.pki.ca_cert.as_bytes(),
                    Some((
                        self.pki.client_cert.as_bytes(),
                        self.pki.client_key.as_bytes(),
                    )),
                    "bench",
                )?,
                server_name: None,
            };
        }
        Ok(o)
    }

    pub fn image(&self, seed: u64) -> Vec<f32> {
        pi_tests::random_image(&self.model, seed)
    }

    pub fn shape(&self) -> [usize; 3] {
        self.model.input
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One client session; returns its logits and wall seconds.
pub(crate) fn session(
    addr: &str,
    shape: [usize; 3],
    image: &[f32],
    opts: &ClientOptions,
) -> (Result<Vec<f32>, protocol::ProtocolError>, f64) {
    let t = std::time::Instant::now();
    let r = protocol::run_client(addr, shape, image, opts, &|_, _, _| {})
        .map(|r| r.inferences[0].logits.clone());
    (r, t.elapsed().as_secs_f64())
}

/// Whether private logits agree with the fixed-point reference: bit for bit on models without
/// local truncation, within the ±1-ulp-per-truncation bound of docs/protocol.md otherwise
/// (2 % of the largest logit, as the end-to-end tests allow).
pub(crate) fn agrees(got: &[f32], want: &[f32]) -> bool {
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-3);
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(a, b)| (a - b).abs() <= 0.02 * scale)
}

/// The CPU model name (to state next to every figure).
pub(crate) fn cpu() -> String {
    protocol::cpu_model().unwrap_or_else(|| "unknown".into())
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}
