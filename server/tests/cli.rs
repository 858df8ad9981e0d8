//! The real `pi-server` process: serves a model file over TLS after a bad client, and refuses
//! unusable flags at startup with a message that says what to do.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use pi_net::devcert::DevPki;
use pi_tests::process::{server_command, temp_dir, test_host_costs, ServerProcess};
use pi_tests::{random_image, references, save_model, tiny_model, tls_options};

const BIN: &str = env!("CARGO_BIN_EXE_pi-server");

#[test]
fn serves_a_model_file_after_a_bad_client() {
    let dir = temp_dir("server-cli");
    let model = tiny_model(4);
    let path = save_model(&model, &dir);
    let pki = DevPki::generate(&["127.0.0.1"]).expect("pki");
    let [_, cert, key, _, _] = pki.write(&dir).expect("pki files");
    let p = |x: &Path| x.to_string_lossy().into_owned();
    // Bad and good client: the bad one never reaches a session, so one session is served.
    let mut server = ServerProcess::start(
        Path::new(BIN),
        &[
            "--model",
            &p(&path),
            "--tls-cert",
            &p(&cert),
            "--tls-key",
            &p(&key),
            "--sessions",
            "1",
        ],
    )
    .expect("pi-server");
    // It measured (or read) its host costs in the tests' cache, not the user's.
    assert!(test_host_costs().exists(), "{}", server.log());

    let mut bad = TcpStream::connect(&server.addr).expect("connect");
    bad.write_all(&[0xff; 64]).expect("write garbage");
    drop(bad);

    let image = random_image(&model, 9);
    let report = protocol::run_client(
        &server.addr,
        [3, 8, 8],
        &image,
        &tls_options(&pki, Duration::from_secs(30)),
        &|_, _, _| {},
    )
    .expect("private inference against the real server");
    let (want, _) = references(&model, &image);
    assert_eq!(report.inferences[0].logits, want);

    let status = server.wait(Duration::from_secs(30)).expect("exits");
    assert!(status.success(), "pi-server exited with {status}");
    let log = server.log();
    assert!(
        log.contains("connection refused before a session"),
        "the bad client should be logged: {log}"
    );
    assert!(log.contains("session finished"), "{log}");
    std::fs::remove_dir_all(&dir).ok();
}

fn fails_with(args: &[&str], needle: &str) {
    let out = server_command(Path::new(BIN))
        .args(args)
        .output()
        .expect("run pi-server");
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "{args:?}: {err}");
}

#[test]
fn unusable_flags_are_refused_at_startup_with_what_to_do() {
    fails_with(
        &["--model", "/nonexistent/model.onnx", "--insecure-plaintext"],
        "/nonexistent/model.onnx",
    );
    fails_with(&["--listen", "127.0.0.1:0"], "--tls-cert");
    fails_with(
        &[
            "--tls-cert",
            "/nonexistent/c.pem",
            "--tls-key",
            "/nonexistent/k.pem",
        ],
        "/nonexistent/c.pem",
    );
    fails_with(
        &["--insecure-plaintext", "--max-frame-mib", "1"],
        "below the largest message",
    );
    for bad in [
        ["--max-frame-mib", "0"],
        ["--max-batch", "0"],
        ["--idle-timeout", "0"],
        ["--max-sessions", "0"],
        ["--handshake-timeout", "0"],
        ["--min-rate-kib", "0"],
    ] {
        let mut args = vec!["--insecure-plaintext"];
        args.extend_from_slice(&bad);
        fails_with(&args, bad[0]);
    }
    // The old name of --idle-timeout still works, and is checked the same way.
    fails_with(
        &["--insecure-plaintext", "--read-timeout", "0"],
        "idle-timeout",
    );
    fails_with(
        &["--insecure-plaintext", "--listen", "no-such-host.invalid:1"],
        "--listen",
    );
    fails_with(
        &["--insecure-plaintext", "--logit-bound", "0"],
        "--logit-bound",
    );
}

#[test]
fn host_names_are_accepted_in_listen() {
    let mut server = server_command(Path::new(BIN))
        .args([
            "--insecure-plaintext",
            "--listen",
            "localhost:0",
            "--sessions",
            "1",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = server.stderr.take().expect("stderr");
    let line = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find(|l| l.contains("listening") || l.contains("Error"))
        .unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    assert!(line.contains("listening"), "{line}");
}

#[test]
fn dev_cert_writes_a_usable_pki() {
    let dir = temp_dir("dev-cert");
    let out = server_command(Path::new(BIN))
        .args(["dev-cert", "--dir", &dir.to_string_lossy()])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in pi_net::devcert::FILES {
        assert!(dir.join(f).exists(), "{f}");
    }
    pi_net::ServerTls::from_files(&dir.join("server.pem"), &dir.join("server.key"), None)
        .expect("server pair loads");
    std::fs::remove_dir_all(&dir).ok();
}
