//! `pi-client preprocess / infer / status` as real processes against an in-process server whose
//! only state is a ticket key file and a replay store: banked results equal the reference, a
//! client killed mid-preprocess or mid-infer never reuses material, and a server restarted with
//! the same key accepts the tickets it issued before.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use models::fixed::FixedConfig;
use models::Model;
use protocol::messages::{ServerHello, TicketVerdict, PROTOCOL_VERSION};
use protocol::{Banking, PublicModel, ServedModel, SessionLimits};

const CLIENT: &str = env!("CARGO_BIN_EXE_pi-client");

fn model() -> Model {
    pi_tests::tiny_model(21)
}

fn write_image(dir: &Path, seed: u64) -> (PathBuf, Vec<f32>) {
    let image: Vec<f32> = (0..3 * 8 * 8)
        .map(|i| (((i as u64 * 17 + seed * 5) % 19) as f32 - 9.0) / 4.0)
        .collect();
    let path = dir.join(format!("x{seed}.npy"));
    models::npy::write_f32(&path, &[3, 8, 8], &image).expect("write npy");
    (path, image)
}

/// The fixed-point reference logits (what the private protocol computes bit for bit).
fn reference(m: &Model, image: &[f32]) -> Vec<f32> {
    pi_tests::references(m, image).0
}

/// A server (as `pi-server --ticket-key KEY` would run it) serving `sessions` sessions on a
/// thread; its only state is the key file and the redb replay store beside it.
fn server(m: &Model, key: &Path, sessions: usize) -> (String, std::thread::JoinHandle<()>) {
    let (k, _) = pi_bank::key::load_or_generate(key).expect("ticket key");
    let replay = pi_bank::replay::open(&format!("{}.replay.redb", key.display())).expect("replay");
    let banking = Arc::new(Banking::new(k, Duration::from_secs(3600), replay));
    let served = Arc::new(ServedModel::new(m.clone(), FixedConfig::default()).expect("serve"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let h = std::thread::spawn(move || {
        for _ in 0..sessions {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = protocol::serve_session_with(
                stream,
                &served,
                &SessionLimits::default(),
                Some(&banking),
            );
        }
    });
    (addr, h)
}

fn client(args: &[&str]) -> Output {
    Command::new(CLIENT)
        .args(args)
        .output()
        .expect("run pi-client")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "pi-client failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status(store: &Path) -> serde_json::Value {
    let out = client(&["status", "--store", store.to_str().unwrap(), "--json"]);
    serde_json::from_str(&ok(&out)).expect("status json")
}

fn logits(report: &Path) -> Vec<f32> {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).expect("report")).expect("json");
    json["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

/// `pi-client preprocess` of `count` sets from `addr` into `store`.
fn preprocess(addr: &str, store: &Path, count: usize) -> Output {
    let count = count.to_string();
    let store = store.to_str().expect("utf-8 path");
    client(&[
        "preprocess",
        "--connect",
        addr,
        "--insecure-plaintext",
        "--store",
        store,
        "--count",
        &count,
        "--quiet",
    ])
}

/// `pi-client infer` of image `x` with a set from `store`, writing `report` if given.
fn infer(addr: &str, store: &Path, x: &Path, report: Option<&Path>) -> Output {
    let store = store.to_str().expect("utf-8 path");
    let x = x.to_str().expect("utf-8 path");
    let mut args = vec![
        "infer",
        "--connect",
        addr,
        "--insecure-plaintext",
        "--store",
        store,
        "--input",
        x,
        "--quiet",
    ];
    if let Some(r) = report {
        args.extend(["--report", r.to_str().expect("utf-8 path")]);
    }
    client(&args)
}

/// A banked inference of image `seed` against a fresh server with `key`: its logits equal the
/// reference bit for bit.
fn banked_inference_matches(m: &Model, key: &Path, store: &Path, dir: &Path, seed: u64) {
    let (addr, h) = server(m, key, 1);
    let (x, image) = write_image(dir, seed);
    let report = dir.join(format!("r{seed}.json"));
    let out = ok(&infer(&addr, store, &x, Some(&report)));
    h.join().unwrap();
    assert!(out.contains("prediction") && out.contains("wait"), "{out}");
    assert_eq!(logits(&report), reference(m, &image), "bit for bit");
}

#[test]
fn preprocess_status_infer_and_a_restarted_server_with_the_same_key() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bank");
    let key = dir.path().join("ticket.key");
    let (addr, h) = server(&m, &key, 1);
    let s = store.to_str().unwrap();
    let out = ok(&preprocess(&addr, &store, 2));
    assert!(out.contains("banked") && out.contains("2 set(s)"), "{out}");
    h.join().unwrap();
    let st = status(&store);
    assert_eq!(st["sets"].as_array().unwrap().len(), 2);
    assert!(st["sets"][0]["bytes"].as_u64().unwrap() > 100_000);
    let text = ok(&client(&["status", "--store", s]));
    assert!(
        text.contains("2 set(s)") && text.contains("expires in"),
        "{text}"
    );

    // The server restarts (a new process would load the same two files): tickets stay valid.
    // The oldest set is the one infer uses.
    let set = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pibank"))
        .min()
        .unwrap();
    let copy = dir.path().join("copy");
    std::fs::copy(&set, &copy).unwrap();
    banked_inference_matches(&m, &key, &store, dir.path(), 1);
    assert_eq!(status(&store)["sets"].as_array().unwrap().len(), 1);

    // The used set's copy, replayed after another restart: refused, discarded; the good set is
    // then offered in the same session and runs.
    std::fs::copy(
        &copy,
        store.join("set-00000000000000000000-00000000.pibank"),
    )
    .unwrap();
    let (addr, h) = server(&m, &key, 1);
    let (x, _) = write_image(dir.path(), 1);
    let out = infer(&addr, &store, &x, None);
    h.join().unwrap();
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already used") && err.contains("discarded"),
        "{err}"
    );
    assert_eq!(status(&store)["sets"].as_array().unwrap().len(), 0);

    // A new key (rotation): earlier tickets are refused with the reason.
    let (addr, h) = server(&m, &key, 1);
    ok(&preprocess(&addr, &store, 1));
    h.join().unwrap();
    let (addr, h) = server(&m, &dir.path().join("new.key"), 1);
    let out = infer(&addr, &store, &x, None);
    h.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        err.contains("another key") && err.contains("refused"),
        "{err}"
    );
}

/// Waits up to 60 s for `cond`.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn files(store: &Path, ext: &str) -> usize {
    std::fs::read_dir(store)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_client_killed_mid_preprocess_keeps_its_finished_sets_only() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bank");
    let key = dir.path().join("ticket.key");
    let (addr, h) = server(&m, &key, 1);
    let mut child = Command::new(CLIENT)
        .args([
            "preprocess",
            "--connect",
            &addr,
            "--insecure-plaintext",
            "--store",
        ])
        .arg(&store)
        .args(["--count", "50", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pi-client");
    wait_for("a finished set and the next one started", || {
        files(&store, "pibank") >= 1 && files(&store, "partial") == 1
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
    h.join().unwrap();
    let st = status(&store);
    let kept = st["sets"].as_array().unwrap().len();
    assert!((1..50).contains(&kept));
    assert_eq!(files(&store, "partial"), 0, "the unfinished set is removed");
    // The kept sets work.
    banked_inference_matches(&m, &key, &store, dir.path(), 2);
    assert_eq!(status(&store)["sets"].as_array().unwrap().len(), kept - 1);
}

#[test]
fn a_client_killed_mid_infer_never_reuses_the_set() {
    let m = model();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bank");
    let key = dir.path().join("ticket.key");
    let (addr, h) = server(&m, &key, 1);
    ok(&preprocess(&addr, &store, 2));
    h.join().unwrap();
    // A server that accepts the ticket and then stalls in the online phase.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let public = PublicModel::new(&m, FixedConfig::default());
    let stall = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ch = pi_net::accept(
            stream,
            &pi_net::ServerSecurity::Plaintext,
            pi_net::Deadlines::new(Duration::from_secs(60)),
            Duration::from_secs(60),
        )
        .unwrap();
        let _hello: protocol::messages::ClientHello = ch.recv().unwrap();
        let _offer: protocol::messages::TicketOffer = ch.recv().unwrap();
        ch.send(&ServerHello::Accept {
            version: PROTOCOL_VERSION,
            model: public,
        })
        .unwrap();
        ch.send(&TicketVerdict::Accepted).unwrap();
        ch.flush().unwrap();
        // Hold the connection (the masked input may or may not arrive) until the client is gone.
        while ch.recv_frame().is_ok() {}
    });
    let (x, _) = write_image(dir.path(), 3);
    let mut child = Command::new(CLIENT)
        .args([
            "infer",
            "--connect",
            &addr,
            "--insecure-plaintext",
            "--store",
        ])
        .arg(&store)
        .args(["--input", x.to_str().unwrap(), "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pi-client");
    // Accepted: the set is deleted before the masked input leaves.
    wait_for("the used set to be deleted", || {
        files(&store, "pibank") == 1 && files(&store, "claimed") == 0
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
    stall.join().unwrap();
    let st = status(&store);
    assert_eq!(
        st["sets"].as_array().unwrap().len(),
        1,
        "only the unused set is left"
    );
    // The other set still runs against the real server.
    banked_inference_matches(&m, &key, &store, dir.path(), 4);
}

#[test]
fn status_of_a_missing_bank_and_infer_from_an_empty_one_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let out = client(&["status", "--store", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pi-client preprocess"));
    let m = model();
    let (addr, _h) = server(&m, &dir.path().join("k"), 1);
    let empty = dir.path().join("empty");
    let out = client(&[
        "infer",
        "--connect",
        &addr,
        "--insecure-plaintext",
        "--store",
        empty.to_str().unwrap(),
        "--sample",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no banked set") && err.contains("preprocess"),
        "{err}"
    );
}
