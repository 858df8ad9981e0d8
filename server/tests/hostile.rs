//! The real `pi-server` process against hostile clients and a hostile network: a mutating
//! proxy, slow and silent connections, stalled sessions, a shutdown in the middle of a session.

use std::net::IpAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use pi_net::devcert::DevPki;
use pi_net::{ConnectOptions, NetError};
use pi_tests::hostile::Horde;
use pi_tests::process::{temp_dir, ServerProcess};
use pi_tests::proxy::{self, Dir, Framing, Mutation};
use pi_tests::{random_image, references, save_model, tiny_model, tls_options};
use protocol::messages::{ClientHello, ServerHello, SessionMode, PROTOCOL_VERSION};
use protocol::{ClientOptions, ProtocolError};

const BIN: &str = env!("CARGO_BIN_EXE_pi-server");

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

struct Bed {
    dir: std::path::PathBuf,
    model: models::Model,
    pki: DevPki,
}

impl Bed {
    fn new(tag: &str) -> Self {
        let dir = temp_dir(tag);
        let model = tiny_model(31);
        save_model(&model, &dir);
        let pki = DevPki::generate(&["127.0.0.1", "localhost"]).expect("pki");
        pki.write(&dir).expect("pki files");
        Bed { dir, model, pki }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A TLS server on this bed's model with extra flags.
    fn tls_server(&self, extra: &[&str]) -> ServerProcess {
        let (m, c, k) = (
            self.file("model.onnx"),
            self.file("server.pem"),
            self.file("server.key"),
        );
        let mut args = vec!["--model", &m, "--tls-cert", &c, "--tls-key", &k];
        args.extend_from_slice(extra);
        ServerProcess::start(Path::new(BIN), &args).expect("pi-server")
    }

    /// A real TLS client with image `seed` is served by `server` with the reference's logits;
    /// returns how long the session took.
    fn served_over_tls(&self, server: &ServerProcess, seed: u64) -> Duration {
        let image = random_image(&self.model, seed);
        let (want, _) = references(&self.model, &image);
        let start = Instant::now();
        let got = run(
            &server.addr,
            &image,
            &tls_options(&self.pki, Duration::from_secs(10)),
        )
        .expect("served");
        let took = start.elapsed();
        assert_eq!(got, want);
        took
    }

    fn plain_server(&self, extra: &[&str]) -> ServerProcess {
        let m = self.file("model.onnx");
        let mut args = vec!["--model", &m, "--insecure-plaintext"];
        args.extend_from_slice(extra);
        ServerProcess::start(Path::new(BIN), &args).expect("pi-server")
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(addr: &str, image: &[f32], opts: &ClientOptions) -> Result<Vec<f32>, ProtocolError> {
    protocol::run_client(addr, [3, 8, 8], image, opts, &|_, _, _| {})
        .map(|r| r.inferences[0].logits.clone())
}

#[test]
fn slow_and_silent_connections_hold_no_slot_and_a_real_client_is_served_at_once() {
    let bed = Bed::new("loris");
    // Two slots; no per-address limit here, so only the admission stage protects the slots.
    let server = bed.tls_server(&[
        "--max-sessions",
        "2",
        "--max-per-peer",
        "0",
        "--handshake-timeout",
        "2",
    ]);
    let mut horde = Horde::new();
    // 2 × max-sessions trickling and 2 × max-sessions silent connections, from another address.
    horde.trickle(
        &server.addr,
        ip("127.0.0.2"),
        4,
        Duration::from_millis(200),
        true,
    );
    horde.silent(&server.addr, ip("127.0.0.2"), 4);
    assert_eq!(horde.open(), 8);
    thread::sleep(Duration::from_millis(300));
    let took = bed.served_over_tls(&server, 3);
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    // The hostile connections are dropped at the handshake deadline, not kept by each byte.
    thread::sleep(Duration::from_millis(2500));
    let log = server.log();
    assert!(
        log.matches("timed out waiting for the TLS handshake and hello")
            .count()
            >= 8,
        "{log}"
    );
    drop(horde);
}

#[test]
fn one_address_cannot_take_every_slot_and_a_stalled_session_is_cut_at_its_deadline() {
    let bed = Bed::new("perpeer");
    let server = bed.tls_server(&[
        "--max-sessions",
        "2",
        "--max-per-peer",
        "1",
        "--handshake-timeout",
        "1",
    ]);
    let mut horde = Horde::new();
    let stall = tls_options(&bed.pki, Duration::from_secs(30)).connect;
    // Three clients from one address send a valid hello and stall: only one gets in.
    horde.stall_after_hello(&server.addr, ip("127.0.0.3"), 3, &stall);
    thread::sleep(Duration::from_millis(500));
    let took = bed.served_over_tls(&server, 4);
    assert!(took < Duration::from_secs(5), "served after {took:?}");
    // The admitted staller holds its slot only until the key-setup phase's deadline
    // (1 s slack + 2.75 MB at 1 MiB/s + 1 s of compute ≈ 4.7 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server
        .log()
        .contains("phase 'HE key setup' ran past its deadline")
    {
        assert!(Instant::now() < deadline, "{}", server.log());
        thread::sleep(Duration::from_millis(100));
    }
    assert!(server.log().contains("too many from this address"));
    drop(horde);
}

#[test]
fn a_client_waiting_for_a_slot_is_told_the_server_is_busy() {
    let bed = Bed::new("busy");
    let server = bed.tls_server(&["--max-sessions", "1", "--queue-timeout", "1"]);
    let mut horde = Horde::new();
    let stall = tls_options(&bed.pki, Duration::from_secs(30)).connect;
    horde.stall_after_hello(&server.addr, ip("127.0.0.4"), 1, &stall);
    thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let e = run(
        &server.addr,
        &random_image(&bed.model, 1),
        &tls_options(&bed.pki, Duration::from_secs(10)),
    )
    .expect_err("no slot");
    assert!(e.to_string().contains("server busy"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    drop(horde);
}

#[test]
fn a_shutdown_cuts_a_running_session_within_the_grace_and_tells_the_client() {
    let bed = Bed::new("shutdown");
    let mut server = bed.tls_server(&["--shutdown-grace", "1"]);
    let opts = tls_options(&bed.pki, Duration::from_secs(30)).connect;
    let mut ch = pi_net::connect(&server.addr, &opts).expect("connect");
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION,
        batch: 1,
        mode: SessionMode::Inline,
        bank_model: None,
    })
    .expect("hello");
    ch.flush().expect("flush");
    assert!(matches!(
        ch.recv::<ServerHello>(),
        Ok(ServerHello::Accept { .. })
    ));
    // The session now waits for the key setup (deadline ≈ 8 s); the server is told to stop.
    let start = Instant::now();
    server.terminate().expect("SIGTERM");
    match ch.recv_frame() {
        Err(NetError::Aborted(r)) => assert!(r.contains("shutting down"), "{r}"),
        other => panic!("expected the server's reason, got {other:?}"),
    }
    let status = server.wait(Duration::from_secs(8)).expect("exited in time");
    assert!(status.success(), "{status}");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn tls_is_required_and_checked() {
    let bed = Bed::new("tls");
    let server = bed.tls_server(&[]);
    let image = random_image(&bed.model, 5);
    // A plaintext client is told the server requires TLS.
    let plain = ClientOptions {
        connect: ConnectOptions::plaintext(Duration::from_secs(5)),
        ..ClientOptions::default()
    };
    let e = run(&server.addr, &image, &plain).expect_err("plaintext refused");
    assert!(e.to_string().contains("requires TLS"), "{e}");
    // A client that trusts another CA refuses the server.
    let other = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let e = run(
        &server.addr,
        &image,
        &tls_options(&other, Duration::from_secs(5)),
    )
    .expect_err("wrong CA refused");
    assert!(e.to_string().contains("not signed by a CA"), "{e}");
    // The right CA works.
    let (want, _) = references(&bed.model, &image);
    assert_eq!(
        run(
            &server.addr,
            &image,
            &tls_options(&bed.pki, Duration::from_secs(10))
        )
        .expect("served"),
        want
    );
    // A TLS client against a plaintext server is told what to do.
    let plain_server = bed.plain_server(&[]);
    let e = run(
        &plain_server.addr,
        &image,
        &tls_options(&bed.pki, Duration::from_secs(5)),
    )
    .expect_err("refused");
    assert!(e.to_string().contains("--insecure-plaintext"), "{e}");
}

#[test]
fn client_certificates_restrict_who_is_served() {
    let bed = Bed::new("mtls");
    let ca = bed.file("ca.pem");
    let server = bed.tls_server(&["--tls-client-ca", &ca]);
    let image = random_image(&bed.model, 6);
    let e = run(
        &server.addr,
        &image,
        &tls_options(&bed.pki, Duration::from_secs(5)),
    )
    .expect_err("no client certificate");
    assert!(e.to_string().contains("certificate"), "{e}");
    let tls = pi_net::ClientTls::from_pem(
        bed.pki.ca_cert.as_bytes(),
        Some((
            bed.pki.client_cert.as_bytes(),
            bed.pki.client_key.as_bytes(),
        )),
        "test",
    )
    .expect("identity");
    let mut opts = tls_options(&bed.pki, Duration::from_secs(10));
    opts.connect.security = pi_net::ClientSecurity::Tls {
        tls,
        server_name: None,
    };
    let (want, _) = references(&bed.model, &image);
    assert_eq!(run(&server.addr, &image, &opts).expect("served"), want);
}

/// Outcome of one session through the proxy.
#[derive(Debug)]
enum Outcome {
    Correct,
    /// The logits a session wrongly reported (shown when the test fails).
    #[allow(dead_code)]
    Wrong(Vec<f32>),
    Refused(String),
}

/// Runs `mutations` through proxies to `upstream`, `parallel` at a time; every session must
/// end within `bound`.
#[allow(clippy::too_many_arguments)]
fn mutated_sessions(
    upstream: &str,
    framing: Framing,
    mutations: &[Mutation],
    opts: &ClientOptions,
    image: &[f32],
    want: &[f32],
    parallel: usize,
    bound: Duration,
) -> Vec<(Mutation, Outcome)> {
    let mut out = Vec::new();
    for batch in mutations.chunks(parallel) {
        let handles: Vec<_> = batch
            .iter()
            .map(|&m| {
                let (opts, image, want, upstream) = (
                    opts.clone(),
                    image.to_vec(),
                    want.to_vec(),
                    upstream.to_string(),
                );
                thread::spawn(move || {
                    let (addr, proxy) = proxy::spawn(&upstream, framing, m).expect("proxy");
                    let start = Instant::now();
                    let r = run(&addr, &image, &opts);
                    let took = start.elapsed();
                    let _ = proxy.join();
                    assert!(took < bound, "{m:?} took {took:?}");
                    match r {
                        Ok(l) if l == want => Outcome::Correct,
                        Ok(l) => Outcome::Wrong(l),
                        Err(e) => Outcome::Refused(e.to_string()),
                    }
                })
            })
            .collect();
        for (m, h) in batch.iter().zip(handles) {
            out.push((*m, h.join().expect("session thread")));
        }
    }
    out
}

#[test]
fn mutated_plaintext_sessions_never_report_a_wrong_answer() {
    let bed = Bed::new("mutate");
    let server = bed.plain_server(&[
        "--max-sessions",
        "8",
        "--max-per-peer",
        "0",
        "--handshake-timeout",
        "2",
        "--idle-timeout",
        "2",
    ]);
    let image = random_image(&bed.model, 7);
    let (want, _) = references(&bed.model, &image);
    let opts = ClientOptions {
        connect: ConnectOptions {
            connect_timeout: Duration::from_secs(3),
            ..ConnectOptions::plaintext(Duration::from_secs(3))
        },
        session_timeout: Some(Duration::from_secs(20)),
        ..ClientOptions::default()
    };
    // A clean run through the proxy counts the frames of each direction.
    let (addr, p) = proxy::spawn(&server.addr, Framing::PiNet, Mutation::None).expect("proxy");
    assert_eq!(run(&addr, &image, &opts).expect("clean run"), want);
    let frames = p.join().expect("proxy").frames;
    assert!(frames[0] > 10 && frames[1] > 10, "{frames:?}");

    let list = Mutation::list(13, 30, frames);
    let results = mutated_sessions(
        &server.addr,
        Framing::PiNet,
        &list,
        &opts,
        &image,
        &want,
        6,
        Duration::from_secs(15),
    );
    for (m, o) in &results {
        eprintln!("{m:?} -> {o:?}");
    }
    let wrong: Vec<_> = results
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Wrong(_)))
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong answers reported as success: {wrong:?}"
    );
    // Every flip, truncation and drop breaks the session. A duplicate or a reorder may change
    // nothing (a duplicate nobody reads after the result; a reorder with no next frame).
    for (m, o) in &results {
        if matches!(
            m,
            Mutation::Flip { .. } | Mutation::Truncate { .. } | Mutation::Drop { .. }
        ) {
            assert!(matches!(o, Outcome::Refused(_)), "{m:?}: {o:?}");
        }
    }
    // The server survived all of it and still serves.
    let (addr, _p) = proxy::spawn(&server.addr, Framing::PiNet, Mutation::None).expect("proxy");
    assert_eq!(run(&addr, &image, &opts).expect("after the storm"), want);
    let log = server.log();
    assert!(
        !log.contains("panicked") && !log.contains("crashed"),
        "{log}"
    );
}

#[test]
fn tls_records_altered_on_the_way_end_the_session_with_a_clear_error() {
    let bed = Bed::new("tlsmut");
    let server = bed.tls_server(&["--max-per-peer", "0", "--idle-timeout", "2"]);
    let image = random_image(&bed.model, 8);
    let (want, _) = references(&bed.model, &image);
    let mut opts = tls_options(&bed.pki, Duration::from_secs(3));
    opts.session_timeout = Some(Duration::from_secs(20));
    if let pi_net::ClientSecurity::Tls { server_name, .. } = &mut opts.connect.security {
        *server_name = Some("127.0.0.1".into());
    }
    // Records after the handshake (the first few are the handshake itself).
    let list = [
        Mutation::Flip {
            dir: Dir::Up,
            frame: 6,
            offset: 40,
            bit: 3,
        },
        Mutation::Flip {
            dir: Dir::Down,
            frame: 20,
            offset: 100,
            bit: 0,
        },
        Mutation::Duplicate {
            dir: Dir::Down,
            frame: 12,
        },
        Mutation::Drop {
            dir: Dir::Up,
            frame: 8,
        },
    ];
    let results = mutated_sessions(
        &server.addr,
        Framing::TlsRecords,
        &list,
        &opts,
        &image,
        &want,
        4,
        Duration::from_secs(15),
    );
    for (m, o) in &results {
        match o {
            Outcome::Refused(e) => assert!(
                e.contains("TLS") || e.contains("ended the session") || e.contains("closed"),
                "{m:?}: {e}"
            ),
            other => panic!("{m:?}: {other:?}"),
        }
    }
}
