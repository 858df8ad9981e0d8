//! End-to-end garbled circuits (ReLUs, maxima, ReLU6) over real loopback TCP: correctness, bad
//! input, tampering.

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use pi_gc::{
    evaluate_offline, garble_offline, garble_offline_with, CircuitSpec, ClientCircuits, GcError,
    MaxParams, OfflineConfig, ReluParams, ServerCircuits,
};
use pi_net::{Channel, NetError};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A reader that can flip one byte of the stream, cut the stream, and hash what it passes on.
struct Tap {
    inner: TcpStream,
    pos: u64,
    flip_at: Option<u64>,
    cut_at: Option<u64>,
    seen: Arc<Mutex<blake3::Hasher>>,
}

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut want = buf.len();
        if let Some(c) = self.cut_at {
            if self.pos >= c {
                return Ok(0);
            }
            want = want.min((c - self.pos) as usize);
        }
        let n = self.inner.read(&mut buf[..want])?;
        if let Some(f) = self.flip_at {
            if f >= self.pos && f < self.pos + n as u64 {
                buf[(f - self.pos) as usize] ^= 0x20;
            }
        }
        self.pos += n as u64;
        self.seen.lock().unwrap().update(&buf[..n]);
        Ok(n)
    }
}

type TapChannel = Channel<Tap, TcpStream>;

struct Taps {
    flip_at: Option<u64>,
    cut_at: Option<u64>,
}

const CLEAN: Taps = Taps {
    flip_at: None,
    cut_at: None,
};

/// A loopback TCP pair whose readers are tapped; also returns the hash of what the client read.
fn pair(server: Taps, client: Taps) -> (TapChannel, TapChannel, Arc<Mutex<blake3::Hasher>>) {
    let (s, c, seen, _) = pair_with_sockets(server, client);
    (s, c, seen)
}

/// Socket handles that close each end the way a failing process would.
struct Kill([TcpStream; 2]);

impl Kill {
    fn server(&self) {
        let _ = self.0[0].shutdown(std::net::Shutdown::Both);
    }
    fn client(&self) {
        let _ = self.0[1].shutdown(std::net::Shutdown::Both);
    }
}

fn pair_with_sockets(
    server: Taps,
    client: Taps,
) -> (TapChannel, TapChannel, Arc<Mutex<blake3::Hasher>>, Kill) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = thread::spawn(move || TcpStream::connect(addr).unwrap());
    let (s, _) = l.accept().unwrap();
    let c = t.join().unwrap();
    for sock in [&s, &c] {
        sock.set_nodelay(true).unwrap();
        // A party whose peer stopped reading fails instead of hanging the test.
        sock.set_write_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
    }
    let kill = Kill([s.try_clone().unwrap(), c.try_clone().unwrap()]);
    let seen = Arc::new(Mutex::new(blake3::Hasher::new()));
    let mk = |st: TcpStream, taps: Taps, seen: Arc<Mutex<blake3::Hasher>>| {
        let r = Tap {
            inner: st.try_clone().unwrap(),
            pos: 0,
            flip_at: taps.flip_at,
            cut_at: taps.cut_at,
            seen,
        };
        Channel::new(r, st)
    };
    let sc = mk(s, server, Arc::new(Mutex::new(blake3::Hasher::new())));
    let cc = mk(c, client, seen.clone());
    (sc, cc, seen, kill)
}

fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

struct Case {
    params: Vec<CircuitSpec>,
    /// Server words per circuit.
    a: Vec<Vec<u64>>,
    /// Client words per circuit (shares, then n).
    inputs: Vec<Vec<u64>>,
}

impl Case {
    fn client_words(&self) -> Vec<u64> {
        self.inputs.concat()
    }
}

fn case(params: Vec<ReluParams>, seed: u64) -> Case {
    spec_case(params.into_iter().map(CircuitSpec::from).collect(), seed)
}

fn spec_case(params: Vec<CircuitSpec>, seed: u64) -> Case {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let a = params
        .iter()
        .map(|p| {
            (0..p.server_words())
                .map(|_| rng.next_u64() & mask(p.in_bits()))
                .collect()
        })
        .collect();
    let inputs = params
        .iter()
        .map(|p| {
            let mut v: Vec<u64> = (0..p.server_words())
                .map(|_| rng.next_u64() & mask(p.in_bits()))
                .collect();
            v.push(rng.next_u64() & mask(p.out_bits()));
            v
        })
        .collect();
    Case { params, a, inputs }
}

type Offline = (
    Result<ServerCircuits, GcError>,
    Result<ClientCircuits, GcError>,
);

fn offline(cfg: OfflineConfig, c: &Case, s: &mut TapChannel, cl: &mut TapChannel) -> Offline {
    offline_killable(cfg, c, s, cl, None)
}

/// Runs both offline sides; a side that fails closes its socket (as its process would on exit).
fn offline_killable(
    cfg: OfflineConfig,
    c: &Case,
    s: &mut TapChannel,
    cl: &mut TapChannel,
    kill: Option<&Kill>,
) -> Offline {
    thread::scope(|sc| {
        let ps = c.params.clone();
        let srv = sc.spawn(move || {
            let r = garble_offline_with(s, &ps, &cfg, &mut ChaCha20Rng::seed_from_u64(1));
            if let (Err(_), Some(k)) = (&r, kill) {
                k.server();
            }
            r
        });
        let words = c.client_words();
        let cli = evaluate_offline(cl, &c.params, &words, &mut ChaCha20Rng::seed_from_u64(2));
        if let (Err(_), Some(k)) = (&cli, kill) {
            k.client();
        }
        (srv.join().unwrap(), cli)
    })
}

/// Runs the online phase in the given call sizes and checks every output against the reference.
fn online_and_check(
    c: &Case,
    sizes: &[usize],
    srv: &mut ServerCircuits,
    cli: &mut ClientCircuits,
    s: &mut TapChannel,
    cl: &mut TapChannel,
) {
    let mut at = 0;
    for &n in sizes {
        let a = c.a[at..at + n].concat();
        let (srv, s) = (&mut *srv, &mut *s);
        let (out, r) = thread::scope(|sc| {
            let h = sc.spawn(move || srv.online(s, &a));
            let r = cli.online(cl, n);
            (h.join().unwrap(), r)
        });
        r.unwrap();
        let out = out.unwrap();
        assert_eq!(out.len(), n);
        for (i, got) in out.iter().enumerate() {
            let want = c.params[at + i]
                .reference(&c.a[at + i], &c.inputs[at + i])
                .unwrap();
            assert_eq!(
                *got,
                want,
                "circuit {} params {:?}",
                at + i,
                c.params[at + i]
            );
        }
        at += n;
    }
    assert_eq!(srv.remaining(), c.params.len() - at);
    assert_eq!(cli.remaining(), c.params.len() - at);
}

#[test]
fn garbled_relus_over_tcp_match_the_reference_in_several_online_calls() {
    let c = case(vec![ReluParams::DEFAULT; 5000], 7);
    let (mut s, mut cl, _) = pair(CLEAN, CLEAN);
    let (srv, cli) = offline(
        OfflineConfig {
            ot_k: 4,
            chunk_circuits: 1024,
        },
        &c,
        &mut s,
        &mut cl,
    );
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    // Sizes cross chunk and lane boundaries; an empty call is a no-op.
    online_and_check(
        &c,
        &[1, 0, 13, 2000, 986, 2000],
        &mut srv,
        &mut cli,
        &mut s,
        &mut cl,
    );
    assert_eq!(srv.remaining(), 0);
    // Running out is an error on both sides, never reuse.
    assert!(matches!(
        srv.online(&mut s, &[1]),
        Err(GcError::Exhausted {
            requested: 1,
            remaining: 0
        })
    ));
    assert!(matches!(
        cli.online(&mut cl, 1),
        Err(GcError::Exhausted { .. })
    ));
    // Wire sizes: tables are exactly 32 B per AND plus per-chunk framing.
    let st = srv.stats();
    assert!(
        st.table_bytes as usize >= 5000 * 95 * 32
            && (st.table_bytes as usize) < 5000 * 95 * 32 + 5 * 100
    );
    assert!(cli.stats().ot_bytes > 0 && cli.stats().ot_bytes == st.ot_bytes);
}

#[test]
fn mixed_parameters_and_every_ot_variant_are_correct() {
    let grid = [
        ReluParams::DEFAULT,
        ReluParams {
            in_bits: 1,
            shift: 0,
            out_bits: 1,
        },
        ReluParams {
            in_bits: 8,
            shift: 7,
            out_bits: 8,
        },
        ReluParams {
            in_bits: 40,
            shift: 12,
            out_bits: 64,
        },
        ReluParams {
            in_bits: 64,
            shift: 0,
            out_bits: 64,
        },
        ReluParams {
            in_bits: 27,
            shift: 8,
            out_bits: 20,
        },
    ];
    let grid: Vec<CircuitSpec> = grid.into_iter().map(CircuitSpec::from).collect();
    for (ot_k, seed) in [(1u32, 1u64), (2, 2), (4, 3), (8, 4)] {
        mixed_runs_match(&grid, 700, 20, ot_k, 300, seed, |n| vec![n / 3, n - n / 3]);
    }
}

/// Runs of random length (1..=`max_run`) of random entries of `grid`, at least `count` circuits
/// (so lane groups are both full and partial), garbled with `ot_k` in chunks of `chunk` and
/// evaluated online in the call sizes `calls(n)`: every output equals the reference.
fn mixed_runs_match(
    grid: &[CircuitSpec],
    count: usize,
    max_run: usize,
    ot_k: u32,
    chunk: usize,
    seed: u64,
    calls: impl Fn(usize) -> Vec<usize>,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut params = Vec::new();
    while params.len() < count {
        let p = grid[(rng.next_u32() as usize) % grid.len()];
        let run = 1 + (rng.next_u32() as usize) % max_run;
        params.extend(std::iter::repeat_n(p, run));
    }
    let c = spec_case(params, seed + 100);
    let (mut s, mut cl, _) = pair(CLEAN, CLEAN);
    let (srv, cli) = offline(
        OfflineConfig {
            ot_k,
            chunk_circuits: chunk,
        },
        &c,
        &mut s,
        &mut cl,
    );
    online_and_check(
        &c,
        &calls(c.params.len()),
        &mut srv.unwrap(),
        &mut cli.unwrap(),
        &mut s,
        &mut cl,
    );
}

#[test]
fn release_1e5_garbled_relus_match_the_reference() {
    let c = case(vec![ReluParams::DEFAULT; 100_000], 11);
    let (mut s, mut cl, _) = pair(CLEAN, CLEAN);
    let (srv, cli) = offline(OfflineConfig::default(), &c, &mut s, &mut cl);
    online_and_check(
        &c,
        &[60_000, 40_000],
        &mut srv.unwrap(),
        &mut cli.unwrap(),
        &mut s,
        &mut cl,
    );
}

#[test]
fn results_are_identical_for_one_and_two_threads() {
    let c = case(vec![ReluParams::DEFAULT; 3000], 5);
    let mut transcripts = Vec::new();
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (mut s, mut cl, seen) = pair(CLEAN, CLEAN);
        pool.install(|| {
            let (srv, cli) = offline(OfflineConfig::default(), &c, &mut s, &mut cl);
            online_and_check(
                &c,
                &[3000],
                &mut srv.unwrap(),
                &mut cli.unwrap(),
                &mut s,
                &mut cl,
            );
        });
        transcripts.push(*seen.lock().unwrap().finalize().as_bytes());
    }
    // Same seeds → byte-identical stream of tables, OT messages and labels.
    assert_eq!(transcripts[0], transcripts[1]);
}

#[test]
fn tampered_table_is_detected_by_the_client() {
    let c = case(vec![ReluParams::DEFAULT; 1500], 3);
    // The client's stream: hello, base-OT points, then a ~4.5 MB table frame.
    let (mut s, mut cl, _, kill) = pair_with_sockets(
        CLEAN,
        Taps {
            flip_at: Some(200_000),
            cut_at: None,
        },
    );
    let (_srv, cli) = offline_killable(OfflineConfig::default(), &c, &mut s, &mut cl, Some(&kill));
    assert!(
        matches!(
            cli,
            Err(GcError::Integrity {
                what: "garbled table chunk",
                index: 0
            })
        ),
        "{:?}",
        cli.err()
    );
}

#[test]
fn tampered_ot_correction_is_detected_by_the_server() {
    let c = case(vec![ReluParams::DEFAULT; 1500], 3);
    // The server's stream: base-OT point A, GGM sums (~4 KB), then the correction chunk.
    let (mut s, mut cl, _, kill) = pair_with_sockets(
        Taps {
            flip_at: Some(10_000),
            cut_at: None,
        },
        CLEAN,
    );
    let (srv, _cli) = offline_killable(OfflineConfig::default(), &c, &mut s, &mut cl, Some(&kill));
    assert!(
        matches!(
            srv,
            Err(GcError::Integrity {
                what: "OT correction chunk",
                index: 0
            })
        ),
        "{:?}",
        srv.err()
    );
}

#[test]
fn truncated_stream_is_a_closed_error_not_a_panic() {
    let c = case(vec![ReluParams::DEFAULT; 1500], 3);
    let (mut s, mut cl, _, kill) = pair_with_sockets(
        CLEAN,
        Taps {
            flip_at: None,
            cut_at: Some(300_000),
        },
    );
    let (_srv, cli) = offline_killable(OfflineConfig::default(), &c, &mut s, &mut cl, Some(&kill));
    assert!(
        matches!(cli, Err(GcError::Net(NetError::Closed))),
        "{:?}",
        cli.err()
    );
}

#[test]
fn oversized_table_frame_is_refused() {
    let c = case(vec![ReluParams::DEFAULT; 1500], 3);
    let (mut s, cl, _, kill) = pair_with_sockets(CLEAN, CLEAN);
    let mut cl = cl.with_max_frame(1 << 20);
    let (_srv, cli) = offline_killable(OfflineConfig::default(), &c, &mut s, &mut cl, Some(&kill));
    assert!(
        matches!(cli, Err(GcError::Net(NetError::FrameTooLarge { .. }))),
        "{:?}",
        cli.err()
    );
}

#[test]
fn mismatched_parameter_lists_and_counts_are_refused() {
    let c = case(vec![ReluParams::DEFAULT; 100], 3);
    let (mut s, mut cl, _, kill) = pair_with_sockets(CLEAN, CLEAN);
    let other = vec![
        ReluParams {
            in_bits: 26,
            shift: 8,
            out_bits: 52
        };
        100
    ];
    let (srv, cli) = thread::scope(|sc| {
        let ps = c.params.clone();
        let h = sc.spawn(move || garble_offline(&mut s, &ps, &mut ChaCha20Rng::seed_from_u64(1)));
        let other: Vec<CircuitSpec> = other.into_iter().map(CircuitSpec::from).collect();
        let r = evaluate_offline(
            &mut cl,
            &other,
            &c.client_words(),
            &mut ChaCha20Rng::seed_from_u64(2),
        );
        kill.client();
        (h.join().unwrap(), r)
    });
    assert!(matches!(cli, Err(GcError::Desync(_))));
    // The server sees the client leave: a network error, not a hang or a panic.
    assert!(matches!(srv, Err(GcError::Net(_))));
    let (_s, mut cl, _) = pair(CLEAN, CLEAN);
    let r = evaluate_offline(
        &mut cl,
        &c.params,
        &c.client_words()[..199],
        &mut ChaCha20Rng::seed_from_u64(2),
    );
    assert!(matches!(
        r,
        Err(GcError::Length {
            what: "client input words",
            expected: 200,
            got: 199
        })
    ));
    let bad = vec![CircuitSpec::from(ReluParams {
        in_bits: 27,
        shift: 30,
        out_bits: 52,
    })];
    let (mut s, _cl, _) = pair(CLEAN, CLEAN);
    assert!(matches!(
        garble_offline(&mut s, &bad, &mut ChaCha20Rng::seed_from_u64(1)),
        Err(GcError::InvalidParams(_))
    ));
}

#[test]
fn tampered_online_labels_are_detected_and_circuits_are_not_reused() {
    let c = case(vec![ReluParams::DEFAULT; 64], 9);
    // Offline traffic to the client is ~200 KB; flip a byte of the first online label frame.
    let (mut s, mut cl, _) = pair(CLEAN, CLEAN);
    let (srv, cli) = offline(OfflineConfig::default(), &c, &mut s, &mut cl);
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    online_and_check(&c, &[10], &mut srv, &mut cli, &mut s, &mut cl);
    // Send a forged label frame: right tag and index but wrong digest.
    let mut forged = vec![0x20u8];
    forged.extend_from_slice(&10u64.to_le_bytes());
    forged.extend_from_slice(&5u64.to_le_bytes());
    forged.extend(std::iter::repeat_n(7u8, 5 * 27 * 16 + 32));
    s.send_frame(&forged).unwrap();
    s.flush().unwrap();
    assert!(matches!(
        cli.online(&mut cl, 5),
        Err(GcError::Integrity { index: 10, .. })
    ));
    // The failed call consumed its circuits: they are never evaluated again.
    assert_eq!(cli.remaining(), 64 - 15);
}

#[test]
fn maxima_relu6_and_relus_mixed_over_tcp_match_the_reference() {
    let grid = [
        CircuitSpec::from(ReluParams::DEFAULT),
        MaxParams::new(9, 27, 8, 52, true, None).unwrap().into(),
        MaxParams::new(4, 19, 0, 52, false, None).unwrap().into(),
        MaxParams::new(6, 27, 8, 52, true, None).unwrap().into(),
        MaxParams::relu_capped(27, 8, 52, 6 << 8).unwrap().into(),
        MaxParams::new(2, 8, 3, 8, false, Some(9)).unwrap().into(),
    ];
    for (ot_k, seed) in [(1u32, 21u64), (4, 22)] {
        mixed_runs_match(&grid, 500, 19, ot_k, 128, seed, |n| {
            vec![7, n / 2, n - n / 2 - 7]
        });
    }
}

#[test]
fn server_words_must_end_on_a_circuit_boundary() {
    let spec: CircuitSpec = MaxParams::new(4, 27, 8, 52, true, None).unwrap().into();
    let c = spec_case(vec![spec; 8], 5);
    let (mut s, mut cl, _) = pair(CLEAN, CLEAN);
    let (srv, _cli) = offline(OfflineConfig::default(), &c, &mut s, &mut cl);
    let mut srv = srv.unwrap();
    // Six words are one and a half windows: refused before anything is sent or consumed.
    assert!(matches!(
        srv.online(&mut s, &[0; 6]),
        Err(GcError::Length { .. })
    ));
    assert_eq!(srv.remaining(), 8);
}

#[test]
fn the_traffic_forecast_is_what_crosses_the_wire() {
    let b = ReluParams {
        in_bits: 20,
        shift: 4,
        out_bits: 52,
    };
    // ReLUs of two widths and 4-element maxima with a fused ReLU, interleaved.
    let max4: CircuitSpec = MaxParams::new(4, 27, 8, 52, true, None).unwrap().into();
    let params: Vec<CircuitSpec> = (0..5000)
        .map(|i| match i {
            i if i % 11 == 0 => max4,
            i if i % 7 == 0 => b.into(),
            _ => ReluParams::DEFAULT.into(),
        })
        .collect();
    let c = spec_case(params, 9);
    for cfg in [
        OfflineConfig {
            ot_k: 4,
            chunk_circuits: 1024,
        },
        OfflineConfig {
            ot_k: 1,
            chunk_circuits: 2048,
        },
    ] {
        let want = pi_gc::traffic(&c.params, &cfg);
        let (mut s, mut cl, _) = pair(CLEAN, CLEAN);
        let (srv, cli) = offline(cfg, &c, &mut s, &mut cl);
        let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
        let sent = cl.counters();
        assert_eq!(
            sent.sent,
            want.offline_up.bytes + 4 * want.offline_up.frames
        );
        assert_eq!(
            sent.received,
            want.offline_down.bytes + 4 * want.offline_down.frames
        );
        online_and_check(&c, &[5000], &mut srv, &mut cli, &mut s, &mut cl);
        let on = cl.counters().since(sent);
        assert_eq!(on.sent, want.online_up.bytes + 4 * want.online_up.frames);
        assert_eq!(
            on.received,
            want.online_down.bytes + 4 * want.online_down.frames
        );
    }
}
