//! The OT ReLU over real loopback TCP equals `pi_gc::relu_reference` bit for bit: on the GC
//! suite's 10^5 cases, on edge cases of every parameter shape, and with mixed parameter runs
//! split across online calls. Damaged or mismatched messages are typed errors.

use std::thread;

use pi_gc::{relu_edge_cases, relu_reference, ReluParams};
use pi_net::TcpChannel;
use pi_ot::{client_offline, server_offline, OtError, OtReluClient, OtReluServer};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

struct Case {
    params: Vec<ReluParams>,
    a: Vec<u64>,
    inputs: Vec<(u64, u64)>,
}

/// The GC suite's case generator (protocol/gc/tests/protocol.rs): a, then (b, n) per ReLU.
fn case(params: Vec<ReluParams>, seed: u64) -> Case {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let a = params
        .iter()
        .map(|p| rng.next_u64() & mask(p.in_bits))
        .collect();
    let inputs = params
        .iter()
        .map(|p| {
            (
                rng.next_u64() & mask(p.in_bits),
                rng.next_u64() & mask(p.out_bits),
            )
        })
        .collect();
    Case { params, a, inputs }
}

/// [`relu_edge_cases`] of `p` appended to `c`.
fn edge_cases(p: &ReluParams, rng: &mut ChaCha20Rng, c: &mut Case) {
    for (a, b, n) in relu_edge_cases(p, rng) {
        c.params.push(*p);
        c.a.push(a);
        c.inputs.push((b, n));
    }
}

type Offline = (Result<OtReluServer, OtError>, Result<OtReluClient, OtError>);

fn offline(c: &Case, s: &mut TcpChannel, cl: &mut TcpChannel) -> Offline {
    thread::scope(|sc| {
        let ps = c.params.clone();
        let srv = sc.spawn(move || server_offline(s, &ps, &mut ChaCha20Rng::seed_from_u64(1)));
        let cli = client_offline(cl, &c.params, &c.inputs, &mut ChaCha20Rng::seed_from_u64(2));
        (srv.join().unwrap(), cli)
    })
}

/// Runs the online phase in calls of the given sizes; checks every output against the reference.
fn online_and_check(
    c: &Case,
    sizes: &[usize],
    srv: &mut OtReluServer,
    cli: &mut OtReluClient,
    s: &mut TcpChannel,
    cl: &mut TcpChannel,
) {
    let mut at = 0;
    for &n in sizes {
        let a = &c.a[at..at + n];
        let (srv, s) = (&mut *srv, &mut *s);
        let (out, r) = thread::scope(|sc| {
            let h = sc.spawn(move || srv.online(s, a));
            let r = cli.online(cl, n);
            (h.join().unwrap(), r)
        });
        r.unwrap();
        let out = out.unwrap();
        assert_eq!(out.len(), n);
        for (i, &o) in out.iter().enumerate() {
            let (b, nn) = c.inputs[at + i];
            let p = &c.params[at + i];
            assert_eq!(
                o,
                relu_reference(p, c.a[at + i], b, nn),
                "ReLU {} params {p:?} a={:#x} b={b:#x} n={nn:#x}",
                at + i,
                c.a[at + i]
            );
        }
        at += n;
    }
    assert_eq!(srv.remaining(), c.params.len() - at);
    assert_eq!(cli.remaining(), c.params.len() - at);
}

#[test]
fn ot_relus_match_the_reference_on_the_gc_suites_1e5_cases() {
    let c = case(vec![ReluParams::DEFAULT; 100_000], 11);
    let (mut s, mut cl) = pi_net::loopback_pair().unwrap();
    let (srv, cli) = offline(&c, &mut s, &mut cl);
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    online_and_check(&c, &[60_000, 40_000], &mut srv, &mut cli, &mut s, &mut cl);
    // Running out is an error on both sides, never reuse.
    assert!(matches!(
        srv.online(&mut s, &[1]),
        Err(OtError::Exhausted {
            requested: 1,
            remaining: 0
        })
    ));
    assert!(matches!(
        cli.online(&mut cl, 1),
        Err(OtError::Exhausted { .. })
    ));
    let st = srv.stats();
    let per_relu = (st.offline_bytes() + st.online_bytes) as f64 / 1e5;
    assert!(per_relu < 60.0, "{per_relu} bytes per ReLU");
    assert_eq!(st.online_bytes, cli.stats().online_bytes);
}

fn grid() -> Vec<ReluParams> {
    let p = |w, f, k| ReluParams::new(w, f, k).unwrap();
    vec![
        ReluParams::DEFAULT,
        p(1, 0, 1),
        p(2, 0, 3),
        p(2, 1, 5),
        p(3, 0, 2),
        p(8, 3, 8),
        p(8, 7, 8),
        p(27, 26, 52),
        p(27, 25, 52),
        p(27, 8, 20),
        p(27, 8, 19),
        p(27, 8, 18),
        p(40, 0, 20),
        p(40, 12, 64),
        p(52, 16, 52),
        p(64, 12, 64),
        p(64, 0, 64),
        p(64, 63, 64),
        p(20, 4, 64),
    ]
}

#[test]
fn edge_cases_of_every_parameter_shape_match_the_reference() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut c = Case {
        params: Vec::new(),
        a: Vec::new(),
        inputs: Vec::new(),
    };
    for p in grid() {
        edge_cases(&p, &mut rng, &mut c);
        for _ in 0..200 {
            c.params.push(p);
            c.a.push(rng.next_u64() & mask(p.in_bits));
            c.inputs.push((
                rng.next_u64() & mask(p.in_bits),
                rng.next_u64() & mask(p.out_bits),
            ));
        }
    }
    let (mut s, mut cl) = pi_net::loopback_pair().unwrap();
    let (srv, cli) = offline(&c, &mut s, &mut cl);
    let n = c.params.len();
    // Calls cut runs in the middle and at odd offsets; an empty call is a no-op.
    let sizes = [1, 0, 100, 777, n / 3, n - 878 - n / 3];
    online_and_check(
        &c,
        &sizes,
        &mut srv.unwrap(),
        &mut cli.unwrap(),
        &mut s,
        &mut cl,
    );
}

#[test]
fn mixed_parameter_runs_split_across_calls_match_the_reference() {
    let g = grid();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut params = Vec::new();
    while params.len() < 2000 {
        let p = g[(rng.next_u32() as usize) % g.len()];
        let run = 1 + (rng.next_u32() as usize) % 70;
        params.extend(std::iter::repeat_n(p, run));
    }
    let c = case(params, 103);
    let (mut s, mut cl) = pi_net::loopback_pair().unwrap();
    let (srv, cli) = offline(&c, &mut s, &mut cl);
    let n = c.params.len();
    online_and_check(
        &c,
        &[n / 2, 1, n - n / 2 - 1],
        &mut srv.unwrap(),
        &mut cli.unwrap(),
        &mut s,
        &mut cl,
    );
}

#[test]
fn traffic_predicts_every_byte_and_frame_of_a_session() {
    let g = grid();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut params = Vec::new();
    while params.len() < 1500 {
        let p = g[(rng.next_u32() as usize) % g.len()];
        params.extend(std::iter::repeat_n(p, 1 + (rng.next_u32() as usize) % 300));
    }
    let c = case(params, 77);
    let want = pi_ot::traffic(&c.params);
    let (mut s, mut cl) = pi_net::loopback_pair().unwrap();
    let (srv, cli) = offline(&c, &mut s, &mut cl);
    let (mut srv, mut cli) = (srv.unwrap(), cli.unwrap());
    let off = cl.counters();
    let wire = |f: pi_gc::Flow| f.bytes + 4 * f.frames;
    assert_eq!(off.sent, wire(want.offline_up));
    assert_eq!(off.received, wire(want.offline_down));
    // One call per run of identical parameters, as `traffic` assumes.
    let mut sizes = Vec::new();
    let mut i = 0;
    while i < c.params.len() {
        let j = (i..c.params.len())
            .find(|&j| c.params[j] != c.params[i])
            .unwrap_or(c.params.len());
        sizes.push(j - i);
        i = j;
    }
    online_and_check(&c, &sizes, &mut srv, &mut cli, &mut s, &mut cl);
    let on = cl.counters().since(off);
    assert_eq!(on.sent, wire(want.online_up));
    assert_eq!(on.received, wire(want.online_down));
    assert!(want.online_down.frames > 0 && want.offline_up.max_frame > 100_000);
}
