//! Banked OT ReLU material: after the server re-keys its material to a PRF, the client stores
//! its part as bytes and the server rebuilds its part from the key alone; the online phase on
//! the restored pair equals `pi_gc::relu_reference` bit for bit. A wrong key, other parameters
//! or damaged bytes never pass for the right material.

use std::thread;

use pi_gc::{relu_reference, ReluParams};
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

/// Runs of mixed parameters (trivial, no truncation, no lift, the defaults), random shares.
fn case(seed: u64, len: usize) -> (Vec<ReluParams>, Vec<u64>, Vec<(u64, u64)>) {
    let p = |w, f, k| ReluParams::new(w, f, k).unwrap();
    let grid = [
        ReluParams::DEFAULT,
        p(27, 26, 52),
        p(40, 0, 20),
        p(8, 3, 8),
        p(20, 4, 64),
        p(22, 6, 52),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut params = Vec::new();
    while params.len() < len {
        let g = grid[(rng.next_u32() as usize) % grid.len()];
        params.extend(std::iter::repeat_n(g, 1 + (rng.next_u32() as usize) % 400));
    }
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
    (params, a, inputs)
}

/// Offline, then re-keying under `key`; returns the client's stored bytes (the server keeps
/// nothing) and the channels.
fn bank(
    params: &[ReluParams],
    inputs: &[(u64, u64)],
    key: &[u8; 32],
) -> (Vec<u8>, TcpChannel, TcpChannel) {
    let (mut s, mut cl) = pi_net::loopback_pair().unwrap();
    let bytes = thread::scope(|sc| {
        let s = &mut s;
        let h = sc.spawn(move || {
            let mut srv = server_offline(s, params, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
            srv.rekey(s, key).unwrap();
            srv.stats()
        });
        let mut cli =
            client_offline(&mut cl, params, inputs, &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
        cli.recv_rekey(&mut cl).unwrap();
        let st = h.join().unwrap();
        assert_eq!(st.rekey_bytes, cli.stats().rekey_bytes);
        let want = pi_ot::rekey_traffic(params);
        assert_eq!(st.rekey_bytes, want.bytes + 4 * want.frames);
        cli.to_bytes().to_vec()
    });
    (bytes, s, cl)
}

/// Online on restored material in calls of `sizes`; the outputs.
fn online(
    srv: &mut OtReluServer,
    cli: &mut OtReluClient,
    a: &[u64],
    sizes: &[usize],
    s: &mut TcpChannel,
    cl: &mut TcpChannel,
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes {
        let part = &a[at..at + n];
        let (srv, s) = (&mut *srv, &mut *s);
        let (o, r) = thread::scope(|sc| {
            let h = sc.spawn(move || srv.online(s, part));
            let r = cli.online(cl, n);
            (h.join().unwrap(), r)
        });
        r.unwrap();
        out.extend(o.unwrap());
        at += n;
    }
    out
}

#[test]
fn restored_material_matches_the_reference_bit_for_bit() {
    let (params, a, inputs) = case(5, 3000);
    let key = [7u8; 32];
    let (bytes, mut s, mut cl) = bank(&params, &inputs, &key);
    let mut srv = OtReluServer::restore(&params, &key).unwrap();
    let mut cli = OtReluClient::from_bytes(&params, &bytes).unwrap();
    let n = params.len();
    let out = online(
        &mut srv,
        &mut cli,
        &a,
        &[n / 3, 1, n - n / 3 - 1],
        &mut s,
        &mut cl,
    );
    for (i, o) in out.iter().enumerate() {
        let (b, nn) = inputs[i];
        assert_eq!(
            *o,
            relu_reference(&params[i], a[i], b, nn),
            "ReLU {i} {:?}",
            params[i]
        );
    }
    assert_eq!(srv.remaining(), 0);
}

#[test]
fn a_large_run_spans_several_rekey_frames() {
    let params = vec![ReluParams::DEFAULT; 70_000];
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let a: Vec<u64> = (0..params.len())
        .map(|_| rng.next_u64() & mask(27))
        .collect();
    let inputs: Vec<(u64, u64)> = (0..params.len())
        .map(|_| (rng.next_u64() & mask(27), rng.next_u64() & mask(52)))
        .collect();
    assert_eq!(pi_ot::rekey_traffic(&params).frames, 2);
    let key = [3u8; 32];
    let (bytes, mut s, mut cl) = bank(&params, &inputs, &key);
    let mut srv = OtReluServer::restore(&params, &key).unwrap();
    let mut cli = OtReluClient::from_bytes(&params, &bytes).unwrap();
    let out = online(&mut srv, &mut cli, &a, &[params.len()], &mut s, &mut cl);
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            *o,
            relu_reference(&params[i], a[i], inputs[i].0, inputs[i].1)
        );
    }
}

#[test]
fn a_wrong_key_or_wrong_parameters_never_pass_for_the_set() {
    let (params, a, inputs) = case(6, 1500);
    let key = [1u8; 32];
    let (bytes, mut s, mut cl) = bank(&params, &inputs, &key);
    // The server rebuilding with another key computes garbage (it is not the set's material).
    let mut srv = OtReluServer::restore(&params, &[2u8; 32]).unwrap();
    let mut cli = OtReluClient::from_bytes(&params, &bytes).unwrap();
    let out = online(&mut srv, &mut cli, &a, &[params.len()], &mut s, &mut cl);
    let right = out
        .iter()
        .enumerate()
        .filter(|(i, o)| **o == relu_reference(&params[*i], a[*i], inputs[*i].0, inputs[*i].1))
        .count();
    assert!(
        right < params.len() / 2,
        "{right} of {} right",
        params.len()
    );
    // Stored bytes for other parameters, truncated or of another version: typed errors.
    let mut other = params.clone();
    other[0] = ReluParams::new(26, 8, 52).unwrap();
    assert!(matches!(
        OtReluClient::from_bytes(&other, &bytes),
        Err(OtError::Length { .. } | OtError::Desync(_))
    ));
    assert!(matches!(
        OtReluClient::from_bytes(&params, &bytes[..bytes.len() - 1]),
        Err(OtError::Length { .. })
    ));
    let mut v = bytes.clone();
    v[0] ^= 1;
    assert!(matches!(
        OtReluClient::from_bytes(&params, &v),
        Err(OtError::Desync(_))
    ));
}

#[test]
fn material_is_rekeyed_only_before_use() {
    let params = vec![ReluParams::DEFAULT; 200];
    let inputs = vec![(5u64, 9u64); 200];
    let (mut s, mut cl) = pi_net::loopback_pair().unwrap();
    let (mut srv, mut cli) = thread::scope(|sc| {
        let s = &mut s;
        let p = &params;
        let h = sc.spawn(move || server_offline(s, p, &mut ChaCha20Rng::seed_from_u64(1)));
        let c = client_offline(
            &mut cl,
            &params,
            &inputs,
            &mut ChaCha20Rng::seed_from_u64(2),
        );
        (h.join().unwrap().unwrap(), c.unwrap())
    });
    let a = vec![1u64; 10];
    thread::scope(|sc| {
        let (srv, s) = (&mut srv, &mut s);
        let h = sc.spawn(move || srv.online(s, &a));
        cli.online(&mut cl, 10).unwrap();
        h.join().unwrap().unwrap();
    });
    assert!(matches!(
        srv.rekey(&mut s, &[0; 32]),
        Err(OtError::Desync(_))
    ));
    assert!(matches!(cli.recv_rekey(&mut cl), Err(OtError::Desync(_))));
}
