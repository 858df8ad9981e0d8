//! End-to-end: client share + server share == the plaintext layer in Z_2^k, element by element.

use std::thread;

use pi_he::{
    client_linear, plain_layer, prepare_layer, prepare_layer_with_cache, server_linear, ClientHe,
    HeError, HeParams, LinearShape, ServerHe,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Runs one layer between a client and a server thread over loopback TCP.
fn run_layer(
    params: &HeParams,
    shape: &LinearShape,
    w: &[i64],
    x: &[u64],
    seed: u64,
) -> (Vec<u64>, Vec<u64>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let client = ClientHe::new(params, &mut rng).unwrap();
    let server = ServerHe::new(params, &client.public_setup()).unwrap();
    // Seeds ≡ 1 (mod 3) exercise the on-the-fly kernel transform, ≡ 2 a cache holding half the
    // kernels, ≡ 0 the whole NTT-form cache.
    let kb = pi_he::kernel_bytes(params);
    let all = prepare_layer_with_cache(params, shape, w, 0)
        .unwrap()
        .kernels();
    let cache = match seed % 3 {
        1 => 0,
        2 => all / 2 * kb + kb / 2,
        _ => usize::MAX,
    };
    let layer = prepare_layer_with_cache(params, shape, w, cache).unwrap();
    assert_eq!(layer.cached_kernels(), all.min(cache / kb));
    assert!(layer.is_cached() || !seed.is_multiple_of(3));
    let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
    thread::scope(|s| {
        let srv = s.spawn(move || {
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0xdead);
            server_linear(&mut sch, &server, &layer, &mut rng).unwrap()
        });
        let c = client_linear(&mut cch, &client, shape, x).unwrap();
        (c, srv.join().unwrap())
    })
}

fn check(params: &HeParams, shape: LinearShape, wbits: u32, seed: u64) {
    let k = params.ring_bits();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let w: Vec<i64> = (0..shape.weight_len())
        .map(|_| (rng.next_u64() % (2 << wbits)) as i64 - (1 << wbits))
        .collect();
    let x: Vec<u64> = (0..shape.input_len())
        .map(|_| rng.next_u64() & ((1 << k) - 1))
        .collect();
    let (c, s) = run_layer(params, &shape, &w, &x, seed);
    let want = plain_layer(&shape, &w, &x, k);
    assert_eq!(c.len(), want.len());
    assert_eq!(s.len(), want.len());
    let mask = (1u64 << k) - 1;
    let bad = (0..want.len())
        .filter(|&i| c[i].wrapping_add(s[i]) & mask != want[i])
        .count();
    assert_eq!(bad, 0, "{shape:?}: {bad} of {} outputs wrong", want.len());
    // The client's share alone must not be the answer (s is a real mask).
    assert!(want.iter().zip(&c).filter(|(a, b)| a == b).count() <= 1 + want.len() / 1000);
}

#[allow(clippy::too_many_arguments)]
fn conv(
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> LinearShape {
    LinearShape::Conv {
        c_in,
        h,
        w,
        c_out,
        kh: k,
        kw: k,
        stride,
        pad,
        groups,
    }
}

#[test]
fn fixed_shapes_of_every_kind() {
    let params = HeParams::for_ring(52).unwrap();
    let shapes = [
        conv(3, 7, 9, 5, 3, 1, 1, 1),   // odd sizes
        conv(4, 8, 8, 6, 1, 2, 0, 1),   // 1×1 stride-2 shortcut
        conv(6, 9, 7, 4, 3, 2, 1, 2),   // stride 2, groups
        conv(8, 6, 6, 8, 3, 1, 1, 8),   // depthwise
        conv(2, 11, 11, 3, 5, 1, 2, 1), // 5×5 kernel
        conv(3, 10, 10, 2, 2, 2, 0, 1), // even kernel, stride 2
        conv(5, 3, 3, 7, 3, 1, 0, 1),   // 1×1 output
        conv(1, 1, 1, 3, 1, 1, 0, 1),   // 1×1 everything
        conv(16, 16, 16, 16, 3, 1, 1, 1),
        conv(3, 100, 100, 4, 3, 1, 1, 1), // does not fit one ciphertext: row tiles
        LinearShape::Fc {
            in_features: 37,
            out_features: 11,
        },
        LinearShape::Fc {
            in_features: 600,
            out_features: 70,
        },
    ];
    for (i, s) in shapes.into_iter().enumerate() {
        check(&params, s, 12, 100 + i as u64);
    }
}

#[test]
fn packed_replies_at_every_depth() {
    // A 1 Mbit/s link makes traffic dominate, so the planner packs as deep as the keys allow.
    let shapes = [
        conv(16, 16, 16, 16, 3, 1, 1, 1),
        conv(12, 9, 7, 10, 3, 2, 1, 2), // stride 2, groups
        conv(24, 5, 5, 9, 1, 1, 0, 3),  // 1×1, groups, partial channel blocks
        conv(3, 40, 40, 5, 3, 1, 1, 1), // row tiles of two heights
        LinearShape::Fc {
            in_features: 600,
            out_features: 70,
        },
    ];
    for l in 1..=3u32 {
        let params = HeParams::for_ring_packed(52, 64, 32, l)
            .unwrap()
            .with_link_mbps(1)
            .unwrap();
        let (_, _, d) = pi_he::plan_summary(&params, &shapes[0]).unwrap();
        assert_eq!(d, 1 << l, "depth {l}");
        for (i, s) in shapes.iter().enumerate() {
            check(&params, s.clone(), 12, 500 + 10 * l as u64 + i as u64);
        }
    }
}

#[test]
fn random_shapes() {
    let params = HeParams::for_ring(52).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let mut r = |lo: u64, hi: u64| (lo + rng.next_u64() % (hi - lo + 1)) as usize;
    for i in 0..14 {
        let groups: usize = [1, 1, 1, 2, 3][r(0, 4)];
        let c_in = groups * r(1, 6);
        let c_out = groups * r(1, 6);
        let k: usize = [1, 1, 2, 3, 3, 5][r(0, 5)];
        let stride = r(1, 2);
        let pad = r(0, (k / 2) as u64);
        let h = r(k.saturating_sub(2 * pad).max(1) as u64, 19);
        let w = r(k.saturating_sub(2 * pad).max(1) as u64, 19);
        check(
            &params,
            conv(c_in, h, w, c_out, k, stride, pad, groups),
            10,
            1000 + i,
        );
    }
}

#[test]
fn other_rings_and_edge_weights() {
    for k in [20u32, 37, 59] {
        let params = HeParams::for_ring(k).unwrap();
        check(&params, conv(3, 5, 6, 2, 3, 1, 1, 1), 8, k as u64);
    }
    // Weights at the edge of the ℓ1 budget: 64 channels × 9 taps × |w| ≤ 2^22 ≈ 2^31.2 < 2^32.
    let params = HeParams::for_ring(52).unwrap();
    check(&params, conv(64, 4, 4, 1, 3, 1, 1, 1), 22, 9);
}

#[test]
fn weights_over_budget_are_refused() {
    let params = HeParams::for_ring(52).unwrap();
    let shape = conv(64, 4, 4, 2, 3, 1, 1, 1);
    let w = vec![1i64 << 26; shape.weight_len()];
    assert!(matches!(
        prepare_layer(&params, &shape, &w),
        Err(HeError::WeightsTooLarge { .. })
    ));
    assert!(matches!(
        prepare_layer(&params, &shape, &w[1..]),
        Err(HeError::Length { .. })
    ));
    let bad = conv(3, 4, 4, 2, 3, 1, 1, 2);
    assert!(matches!(
        prepare_layer(&params, &bad, &[]),
        Err(HeError::Shape(_))
    ));
}

/// A layer run with seeded masks: the server's returned shares equal `server_masks` re-derived
/// from the seed alone (what a stateless server does for banked material), the sum is still the
/// layer, and another seed gives other masks.
#[test]
fn seeded_masks_are_re_derived_from_the_seed_alone() {
    let params = HeParams::for_ring(52).unwrap();
    // 16 output channels make the planner pack replies (d > 1), where the ciphertext's masks
    // are wider than the share.
    let shape = LinearShape::Conv {
        c_in: 8,
        h: 8,
        w: 8,
        c_out: 16,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let w: Vec<i64> = (0..shape.weight_len())
        .map(|_| (rng.next_u64() % 64) as i64 - 32)
        .collect();
    let x: Vec<u64> = (0..shape.input_len())
        .map(|_| rng.next_u64() & ((1 << 52) - 1))
        .collect();
    let client = ClientHe::new(&params, &mut rng).unwrap();
    let server = ServerHe::new(&params, &client.public_setup()).unwrap();
    let layer = prepare_layer(&params, &shape, &w).unwrap();
    let seed = [7u8; 32];
    let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
    let (c, s) = thread::scope(|sc| {
        let srv = sc.spawn(|| {
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            pi_he::server_linear_seeded(&mut sch, &server, &layer, &seed, &mut rng).unwrap()
        });
        let c = client_linear(&mut cch, &client, &shape, &x).unwrap();
        (c, srv.join().unwrap())
    });
    assert_eq!(s, pi_he::server_masks(&params, &seed, shape.output_len()));
    assert_ne!(
        s,
        pi_he::server_masks(&params, &[8u8; 32], shape.output_len())
    );
    let want = plain_layer(&shape, &w, &x, 52);
    let mask = (1u64 << 52) - 1;
    assert!(c
        .iter()
        .zip(&s)
        .zip(&want)
        .all(|((c, s), w)| c.wrapping_add(*s) & mask == *w));
}
