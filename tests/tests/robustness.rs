//! Bad clients get clear errors and never disturb other sessions; several clients at once all succeed.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use models::fixed::FixedConfig;
use models::zoo::ResNetSpec;
use pi_net::{ConnectOptions, NetChannel, NetError};
use pi_tests::{random_image, references};
use protocol::messages::{ClientHello, MaskedInput, ServerHello, SessionMode, PROTOCOL_VERSION};
use protocol::{ClientOptions, ProtocolError, ServedModel, SessionLimits};

fn small_model() -> models::Model {
    let mut spec = ResNetSpec::new(vec![1], vec![4], 10, [3, 8, 8]);
    spec.seed = 21;
    spec.bias_std = 0.1;
    spec.build().expect("valid spec")
}

/// A listener whose accepted sessions each run on their own thread; returns the address.
fn spawn_server(
    served: Arc<ServedModel>,
    sessions: usize,
) -> (String, thread::JoinHandle<Vec<Result<(), String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let limits = SessionLimits {
        idle_timeout: std::time::Duration::from_secs(20),
        max_frame: 8 << 20,
        max_batch: 4,
        ..SessionLimits::default()
    };
    let handle = thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..sessions {
            let (stream, _) = listener.accept().expect("accept");
            let served = served.clone();
            let limits = limits.clone();
            workers.push(thread::spawn(move || {
                protocol::serve_session(stream, &served, &limits)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }));
        }
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("server thread panicked".into()))
            })
            .collect()
    });
    (addr, handle)
}

/// A plaintext connection of the kind `pi-client --insecure-plaintext` opens.
fn plain(addr: &str) -> NetChannel {
    pi_net::connect(addr, &ConnectOptions::plaintext(Duration::from_secs(20))).expect("connect")
}

fn good_client(addr: &str, image: &[f32]) -> Result<Vec<f32>, ProtocolError> {
    let report = protocol::run_client(
        addr,
        [3, 8, 8],
        image,
        &ClientOptions::default(),
        &|_, _, _| {},
    )?;
    Ok(report.inferences[0].logits.clone())
}

#[test]
fn malformed_messages_are_rejected_and_the_server_keeps_serving() {
    let model = small_model();
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    let image = random_image(&model, 1);
    let (fixed, _) = references(&model, &image);
    let (addr, server) = spawn_server(served, 6);

    // 1. Garbage instead of a hello (a well-framed frame that is not a hello).
    let mut ch = plain(&addr);
    ch.send_frame(&[0xde, 0xad]).expect("send");
    ch.flush().expect("flush");
    let reply = ch.recv_frame();
    assert!(
        matches!(&reply, Err(NetError::Aborted(r)) if r.contains("server")),
        "the server says why: {reply:?}"
    );
    drop(ch);
    // 2. A frame header announcing more than the server accepts.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(&(100u32 << 20).to_le_bytes()).expect("write");
    drop(s);
    // 3. A frame cut short.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.write_all(&100u32.to_le_bytes()).expect("write");
    s.write_all(&[1, 2, 3]).expect("write");
    drop(s);
    // 4. Out of order: the online input before any hello.
    let mut ch = plain(&addr);
    ch.send(&MaskedInput { values: vec![1; 8] }).expect("send");
    ch.flush().expect("flush");
    drop(ch);
    // 5. Wrong protocol version: an explicit reject.
    let mut ch = plain(&addr);
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION + 1,
        batch: 1,
        mode: SessionMode::Inline,
        bank_model: None,
    })
    .expect("send");
    ch.flush().expect("flush");
    match ch.recv::<ServerHello>() {
        Ok(ServerHello::Reject { reason }) => assert!(reason.contains("version"), "{reason}"),
        other => panic!("expected a reject, got {other:?}"),
    }
    drop(ch);
    // 6. A well-behaved client still gets the right answer.
    let logits = good_client(&addr, &image).expect("good client after bad ones");
    assert_eq!(logits, fixed);

    let results = server.join().expect("server");
    assert_eq!(results.len(), 6);
    assert!(
        results[..5].iter().all(|r| r.is_err()),
        "bad sessions must fail: {results:?}"
    );
    assert!(results[5].is_ok(), "good session failed: {:?}", results[5]);
    assert!(
        results[1]
            .as_ref()
            .unwrap_err()
            .contains("exceeds this phase's limit"),
        "{:?}",
        results[1]
    );
}

#[test]
fn a_client_that_vanishes_mid_offline_ends_only_its_session() {
    let model = small_model();
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    let image = random_image(&model, 2);
    let (fixed, _) = references(&model, &image);
    let (addr, server) = spawn_server(served, 2);
    let mut ch = plain(&addr);
    ch.send(&ClientHello {
        version: PROTOCOL_VERSION,
        batch: 1,
        mode: SessionMode::Inline,
        bank_model: None,
    })
    .expect("send");
    ch.flush().expect("flush");
    let hello: Result<ServerHello, NetError> = ch.recv();
    assert!(matches!(hello, Ok(ServerHello::Accept { .. })));
    drop(ch);
    assert_eq!(good_client(&addr, &image).expect("second client"), fixed);
    let results = server.join().expect("server");
    assert!(results[0].is_err() && results[1].is_ok(), "{results:?}");
}

#[test]
fn four_concurrent_clients_all_get_correct_results() {
    let model = small_model();
    let served = Arc::new(ServedModel::new(model.clone(), FixedConfig::default()).expect("serve"));
    let (addr, server) = spawn_server(served, 4);
    let clients: Vec<_> = (0..4u64)
        .map(|i| {
            let addr = addr.clone();
            let model = model.clone();
            thread::spawn(move || {
                let image = random_image(&model, 50 + i);
                let (fixed, _) = references(&model, &image);
                (good_client(&addr, &image).map_err(|e| e.to_string()), fixed)
            })
        })
        .collect();
    for c in clients {
        let (got, want) = c.join().expect("client thread");
        assert_eq!(got.expect("client session"), want);
    }
    assert!(server.join().expect("server").iter().all(|r| r.is_ok()));
}
