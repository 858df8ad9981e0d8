//! Shared by the banked-session tests: a small model, a loopback server for one session, and
//! the client's preprocess and infer against it with the on-disk bank.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use models::fixed::FixedConfig;
use models::Model;
use pi_bank::DirBank;
use protocol::bank::replay::ReplayGuard;
use protocol::bank::ticket::TicketKey;
use protocol::{
    BankedInference, Banking, ProtocolError, ReluChoice, ServeOptions, ServedModel, SessionLimits,
    SessionSummary,
};

/// A small ResNet whose every ReLU is a circuit, so the output is bit-exact.
pub fn model(seed: u64) -> Model {
    pi_tests::tiny_model(seed)
}

pub fn image(seed: u64) -> Vec<f32> {
    (0..3 * 8 * 8)
        .map(|i| (((i as u64 * 31 + seed * 7) % 23) as f32 - 11.0) / 6.0)
        .collect()
}

/// The fixed-point reference logits (what the private protocol computes bit for bit).
pub fn reference(model: &Model, image: &[f32]) -> Vec<f32> {
    pi_tests::references(model, image).0
}

pub fn served(m: &Model) -> Arc<ServedModel> {
    Arc::new(ServedModel::new(m.clone(), FixedConfig::default()).expect("serve"))
}

/// The model served with another ReLU protocol choice.
pub fn served_with(m: &Model, relu: ReluChoice) -> Arc<ServedModel> {
    let options = ServeOptions {
        relu,
        ..ServeOptions::default()
    };
    Arc::new(ServedModel::with_options(m.clone(), FixedConfig::default(), &options).expect("serve"))
}

pub fn banking(key: [u8; 32], ttl: u64, replay: Arc<dyn ReplayGuard>) -> Arc<Banking> {
    Arc::new(Banking::new(
        TicketKey::from_bytes(&key),
        Duration::from_secs(ttl),
        replay,
    ))
}

/// Serves one session on a fresh loopback port; returns the address and the server's outcome.
pub fn server(
    served: Arc<ServedModel>,
    banking: Arc<Banking>,
) -> (
    String,
    thread::JoinHandle<Result<SessionSummary, ProtocolError>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let h = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        protocol::serve_session_with(stream, &served, &SessionLimits::default(), Some(&banking))
    });
    (addr, h)
}

fn connect(addr: &str) -> pi_net::NetChannel {
    pi_net::connect(
        addr,
        &pi_net::ConnectOptions::plaintext(Duration::from_secs(60)),
    )
    .expect("connect")
}

pub fn preprocess(served: &Arc<ServedModel>, b: &Arc<Banking>, store: &Path, count: u32) {
    let (addr, h) = server(served.clone(), b.clone());
    let mut bank = DirBank::open(store).expect("bank");
    let mut ch = connect(&addr);
    let r = protocol::preprocess_on(&mut ch, &addr, count, &mut bank, &|_, _, _| {})
        .expect("preprocess");
    assert_eq!(r.sets.len(), count as usize);
    drop(ch);
    h.join().expect("server").expect("server session");
}

pub fn infer(
    served: &Arc<ServedModel>,
    b: &Arc<Banking>,
    store: &Path,
    img: &[f32],
) -> (
    Result<BankedInference, ProtocolError>,
    Result<SessionSummary, ProtocolError>,
) {
    let (addr, h) = server(served.clone(), b.clone());
    let mut bank = DirBank::open(store).expect("bank");
    let mut ch = connect(&addr);
    let r = protocol::infer_on(
        &mut ch,
        &addr,
        [3, 8, 8],
        img,
        &mut bank,
        &|_, _, _| {},
        std::time::Instant::now(),
    );
    drop(ch);
    (r, h.join().expect("server"))
}

pub fn sets(store: &Path) -> usize {
    DirBank::open(store).unwrap().status().unwrap().sets.len()
}

pub fn set_files(store: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pibank"))
        .collect();
    v.sort();
    v
}
