//! Malformed input, parameter and serialization tests (crate-internal: they forge wire messages).

use std::thread;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::params::seal_security_check;
use crate::wire::{LayerReply, LayerRequest, REPLY_MAGIC, REQUEST_MAGIC};
use crate::*;

fn conv() -> LinearShape {
    LinearShape::Conv {
        c_in: 4,
        h: 6,
        w: 5,
        c_out: 3,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    }
}

fn setup(seed: u64) -> (HeParams, ClientHe, ServerHe, PreparedLayer) {
    let params = HeParams::for_ring(52).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let client = ClientHe::new(&params, &mut rng).unwrap();
    let server = ServerHe::new(&params, &client.public_setup()).unwrap();
    let w: Vec<i64> = (0..conv().weight_len() as i64).map(|i| i % 7 - 3).collect();
    let layer = prepare_layer(&params, &conv(), &w).unwrap();
    (params, client, server, layer)
}

/// A correct run on a fresh connection: proves the server still serves after a bad peer.
fn good_run(client: &ClientHe, server: &ServerHe, layer: &PreparedLayer) {
    let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
    let x: Vec<u64> = (0..conv().input_len() as u64).collect();
    let (c, s) = thread::scope(|sc| {
        let h = sc.spawn(move || {
            server_linear(&mut sch, server, layer, &mut ChaCha20Rng::seed_from_u64(1)).unwrap()
        });
        (
            client_linear(&mut cch, client, &conv(), &x).unwrap(),
            h.join().unwrap(),
        )
    });
    assert!(c
        .iter()
        .zip(&s)
        .any(|(a, b)| a.wrapping_add(*b) & client.params().t_mask() != 0));
}

/// Sends raw frames to a server and returns its result.
fn server_against(
    server: &ServerHe,
    layer: &PreparedLayer,
    frames: Vec<Vec<u8>>,
) -> Result<Vec<u64>, HeError> {
    let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
    thread::scope(|sc| {
        let h = sc.spawn(move || {
            server_linear(&mut sch, server, layer, &mut ChaCha20Rng::seed_from_u64(2))
        });
        for f in &frames {
            cch.send_frame(f).unwrap();
        }
        cch.flush().unwrap();
        let r = h.join().unwrap();
        drop(cch);
        r
    })
}

fn header(params: &HeParams, shape: &LinearShape, n: u32) -> Vec<u8> {
    let req = LayerRequest {
        magic: REQUEST_MAGIC,
        params: params.fingerprint(),
        shape: shape.fingerprint(),
        plan: plan_for(params, &shape::Canon::new(shape).unwrap())
            .unwrap()
            .fingerprint(),
        num_cts: n,
    };
    bincode::serialize(&req).unwrap()
}

#[test]
fn a_request_for_another_block_plan_is_refused() {
    let (params, client, server, layer) = setup(11);
    let mut req: LayerRequest = bincode::deserialize(&header(&params, &conv(), 1)).unwrap();
    req.plan ^= 1;
    req.num_cts = layer.ciphertexts().0 as u32;
    let r = server_against(&server, &layer, vec![bincode::serialize(&req).unwrap()]);
    match r {
        Err(HeError::Malformed(m)) => assert!(m.contains("planner"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    good_run(&client, &server, &layer);
}

#[test]
fn layer_traffic_is_what_crosses_the_wire() {
    let (params, client, server, layer) = setup(12);
    let want = layer_traffic(&params, &conv()).unwrap();
    let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
    let x: Vec<u64> = (0..conv().input_len() as u64).collect();
    thread::scope(|sc| {
        let h = sc.spawn(|| {
            server_linear(
                &mut sch,
                &server,
                &layer,
                &mut ChaCha20Rng::seed_from_u64(1),
            )
            .unwrap()
        });
        client_linear(&mut cch, &client, &conv(), &x).unwrap();
        h.join().unwrap();
    });
    let c = cch.counters();
    assert_eq!(c.sent, want.request_bytes + 4 * want.request_frames);
    assert_eq!(c.received, want.reply_bytes + 4 * want.reply_frames);
    assert_eq!(setup_len(&params), client.public_setup().len());
}

fn ct_len(params: &HeParams) -> usize {
    32 + params
        .prime_bits
        .iter()
        .map(|&b| wire::packed_len(params.n, b))
        .sum::<usize>()
}

#[test]
fn bad_setups_are_rejected() {
    let (params, client, _, _) = setup(1);
    let good = client.public_setup();
    assert!(matches!(
        ServerHe::new(&params, &[]),
        Err(HeError::Malformed(_))
    ));
    assert!(matches!(
        ServerHe::new(&params, &good[..good.len() - 1]),
        Err(HeError::Malformed(_))
    ));
    assert!(matches!(
        ServerHe::new(&params, &vec![0xab; good.len()]),
        Err(HeError::Malformed(_))
    ));
    let mut unreduced = good.clone();
    for b in &mut unreduced[44..52] {
        *b = 0xff; // first residue = 2^bits − 1 ≥ q_0
    }
    assert!(matches!(
        ServerHe::new(&params, &unreduced),
        Err(HeError::Malformed(_))
    ));
    // The same inside the first Galois key (after p0 and the key's 32-byte seed).
    let pk_len: usize = params
        .prime_bits
        .iter()
        .map(|&b| wire::packed_len(params.n, b))
        .sum();
    assert!(params.pack_bits() > 0);
    let key_start = 44 + pk_len + 32;
    let mut bad_key = good.clone();
    for b in &mut bad_key[key_start..key_start + 8] {
        *b = 0xff;
    }
    assert!(matches!(
        ServerHe::new(&params, &bad_key),
        Err(HeError::Malformed(_))
    ));
    // A flipped bit in a key's seed or body is not detectable here (semi-honest model), but a
    // key of the wrong length is.
    assert!(matches!(
        ServerHe::new(&params, &good[..key_start]),
        Err(HeError::Malformed(_))
    ));
    // A client on another ring: different fingerprint and length.
    let other = HeParams::for_ring(37).unwrap();
    let oc = ClientHe::new(&other, &mut ChaCha20Rng::seed_from_u64(3)).unwrap();
    assert!(ServerHe::new(&params, &oc.public_setup()).is_err());
    let mut wrong_fp = good.clone();
    wrong_fp[4] ^= 1;
    assert!(matches!(
        ServerHe::new(&params, &wrong_fp),
        Err(HeError::Malformed(_))
    ));
}

#[test]
fn bad_requests_are_typed_errors_and_the_server_keeps_serving() {
    let (params, client, server, layer) = setup(4);
    let (n_in, _) = layer.ciphertexts();
    let zero_ct = vec![0u8; ct_len(&params)];
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("garbage header", vec![vec![0xff; 3]]),
        (
            "wrong count",
            vec![header(&params, &conv(), n_in as u32 + 1)],
        ),
        (
            "other layer",
            vec![header(
                &params,
                &LinearShape::Fc {
                    in_features: 3,
                    out_features: 2,
                },
                n_in as u32,
            )],
        ),
        (
            "other parameters",
            vec![header(
                &HeParams::for_ring(37).unwrap(),
                &conv(),
                n_in as u32,
            )],
        ),
        ("short ciphertext", {
            let mut v = vec![header(&params, &conv(), n_in as u32)];
            v.push(vec![1u8; ct_len(&params) - 1]);
            v
        }),
        ("garbage ciphertext", {
            let mut v = vec![header(&params, &conv(), n_in as u32)];
            v.extend((0..n_in).map(|_| vec![0xffu8; ct_len(&params)]));
            v
        }),
    ];
    for (what, frames) in cases {
        let r = server_against(&server, &layer, frames);
        assert!(
            matches!(r, Err(HeError::Malformed(_)) | Err(HeError::Net(_))),
            "{what}: {r:?}"
        );
        good_run(&client, &server, &layer);
    }
    // Well-formed but all-zero ciphertexts are valid input (encryptions of something): no error.
    let mut v = vec![header(&params, &conv(), n_in as u32)];
    v.extend((0..n_in).map(|_| zero_ct.clone()));
    let r = server_against(&server, &layer, v);
    assert!(r.is_ok() || matches!(r, Err(HeError::Net(_))));
}

#[test]
fn bad_replies_are_typed_errors() {
    let (params, client, _, layer) = setup(5);
    let (_, n_out) = layer.ciphertexts();
    for (count, len) in [(n_out as u32 + 1, 10usize), (n_out as u32, 10)] {
        let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
        let x = vec![1u64; conv().input_len()];
        let client = &client;
        let r = thread::scope(|sc| {
            let h = sc.spawn(move || client_linear(&mut cch, client, &conv(), &x));
            let _req: LayerRequest = sch.recv().unwrap();
            for _ in 0..layer.ciphertexts().0 {
                sch.recv_frame().unwrap();
            }
            sch.send(&LayerReply {
                magic: REPLY_MAGIC,
                num_cts: count,
            })
            .unwrap();
            for _ in 0..n_out {
                sch.send_frame(&vec![0u8; len]).unwrap();
            }
            sch.flush().unwrap();
            h.join().unwrap()
        });
        assert!(matches!(r, Err(HeError::Malformed(_))), "{r:?}");
    }
    let _ = params;
}

#[test]
fn parameters_are_checked_and_round_trip() {
    assert!(HeParams::for_ring(19).is_err());
    assert!(HeParams::for_ring(60).is_err());
    assert!(HeParams::for_ring_with(52, 39, 32).is_err());
    let a = HeParams::for_ring(52).unwrap();
    let b = HeParams::for_ring(52).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.primes(), b.primes());
    assert_ne!(
        a.fingerprint(),
        HeParams::for_ring(37).unwrap().fingerprint()
    );
    // 128-bit security: log q must stay below SEAL's HE-standard bound (218 bits at N = 8192).
    assert!(a.log_q() < 218.0 && a.log_q() > 140.0);
    assert!(a
        .primes()
        .iter()
        .all(|&q| q % (2 * POLY_DEGREE as u64) == 1));
    // SEAL's own check refuses 4 × 60-bit primes (240 bits) at N = 8192.
    let big = sealy::CoefficientModulusFactory::build(sealy::DegreeType::D8192, &[60, 60, 60, 60])
        .unwrap();
    let big: Vec<u64> = big.iter().map(|m| m.value()).collect();
    assert!(matches!(seal_security_check(&big), Err(HeError::Params(_))));
    assert!(seal_security_check(a.primes()).is_ok());
    // Setup serialization: a server built from the client's bytes holds the same public key.
    let client = ClientHe::new(&a, &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
    let bytes = client.public_setup();
    let server = ServerHe::new(&b, &bytes).unwrap();
    assert_eq!(server.pk_p0(), client.pk_p0());
}

#[test]
fn shared_objects_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<PreparedLayer>();
    check::<ServerHe>();
    check::<ClientHe>();
    check::<HeParams>();
}

#[test]
fn decryption_noise_stays_within_the_analysed_bound() {
    // Weights at the ℓ1 budget edge (64·9 taps of 2^22 ≈ 2^31.2 < 2^32), one output group.
    let params = HeParams::for_ring(52).unwrap();
    let shape = LinearShape::Conv {
        c_in: 64,
        h: 6,
        w: 6,
        c_out: 1,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let w: Vec<i64> = (0..shape.weight_len() as i64)
        .map(|i| if i % 3 == 0 { -(1 << 22) } else { 1 << 22 })
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let client = ClientHe::new(&params, &mut rng).unwrap();
    let server = ServerHe::new(&params, &client.public_setup()).unwrap();
    let layer = prepare_layer(&params, &shape, &w).unwrap();
    assert!(layer.weight_l1_log2() > 31.0);
    let x: Vec<u64> = (0..shape.input_len() as u64)
        .map(|i| (i * 0x9e37_79b9_7f4a_7c15) & params.t_mask())
        .collect();
    let (mut sch, mut cch) = pi_net::loopback_pair().unwrap();
    client::MAX_NOISE.store(0, std::sync::atomic::Ordering::Relaxed);
    thread::scope(|sc| {
        let h = sc.spawn(|| {
            server_linear(
                &mut sch,
                &server,
                &layer,
                &mut ChaCha20Rng::seed_from_u64(12),
            )
            .unwrap()
        });
        client_linear(&mut cch, &client, &shape, &x).unwrap();
        h.join().unwrap();
    });
    let noise = client::MAX_NOISE.load(std::sync::atomic::Ordering::Relaxed) as f64;
    let (b0, _) = params.reply_bits();
    let half_delta = 2f64.powi((b0 - params.plain_bits - 1) as i32);
    eprintln!(
        "max decryption noise {noise} (log2 {:.1}), Δ/2 = 2^{:.0}",
        noise.log2(),
        half_delta.log2()
    );
    // Worst-case bound 2^12 + 2^14 + 1 (docs/protocol.md); typical values are far lower.
    assert!(
        noise > 0.0 && noise < 20481.0 && noise < half_delta,
        "noise {noise} vs Δ/2 = {half_delta}"
    );
}

#[test]
fn the_reference_conv_packs_replies_and_parameters_fall_back_when_keys_would_be_insecure() {
    let params = HeParams::for_ring(52).unwrap();
    assert_eq!(params.pack_bits(), 3);
    let conv = LinearShape::Conv {
        c_in: 64,
        h: 32,
        w: 32,
        c_out: 64,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    // 64·34·34 inputs fit 10 dense ciphertexts; 65,536 outputs fit 8 replies at best.
    let (cin, cout, d) = plan_summary(&params, &conv).unwrap();
    assert_eq!(d, 8);
    assert!(cin <= 12 && cout <= 12, "{cin} inputs, {cout} replies");
    // Without packing the same layer needs several times more reply ciphertexts.
    let flat = HeParams::for_ring_packed(52, 64, 32, 0).unwrap();
    let (_, cout_flat, d_flat) = plan_summary(&flat, &conv).unwrap();
    assert!(d_flat == 1 && cout_flat > 2 * cout);
    // A fast link makes key switches less worth it: fewer of them, different fingerprint.
    let lan = params.clone().with_link_mbps(10_000).unwrap();
    assert_ne!(lan.fingerprint(), params.fingerprint());
    let ks = |p: &HeParams| crate::plan_cost(p, &conv).unwrap().key_switches;
    assert!(
        ks(&lan) < ks(&params),
        "{} key switches at 10 Gbit/s, {} at 100 Mbit/s",
        ks(&lan),
        ks(&params)
    );
    // So does a slower key switch on the serving host (measured operation costs plan too).
    let slow = params
        .clone()
        .with_op_costs(crate::HeOpCosts {
            key_switch_ns: 10_000_000,
            ..crate::HeOpCosts::default()
        })
        .unwrap();
    assert_ne!(slow.fingerprint(), params.fingerprint());
    assert!(ks(&slow) < ks(&params));
    assert!(params.clone().with_link_mbps(0).is_err());
    // k = 59 with L = 3 would need q·P above SEAL's 218-bit bound: refused, and the default lowers L.
    assert!(matches!(
        HeParams::for_ring_packed(59, 64, 32, 3),
        Err(HeError::Params(_)) | Err(HeError::Seal(_))
    ));
    let p59 = HeParams::for_ring(59).unwrap();
    assert!(p59.pack_bits() < 3);
}

#[test]
fn seal_evaluates_the_interleaved_block_encoding_to_the_convolution() {
    // SEAL's own BFV (encrypt, multiply_plain, add, decrypt) over our primes, with a small
    // plaintext modulus: the products of our interleaved input and kernel polynomials must hold
    // the convolution at d·Y, i.e. the layout is right independently of our ring arithmetic.
    use crate::shape::Canon;
    use sealy::{
        BFVEncryptionParametersBuilder, BFVEvaluator, Context, Decryptor, DegreeType, Encryptor,
        Evaluator, KeyGenerator, Modulus, Plaintext, SecurityLevel,
    };
    let params = HeParams::for_ring_packed(52, 64, 32, 3)
        .unwrap()
        .with_link_mbps(1)
        .unwrap();
    let shape = LinearShape::Conv {
        c_in: 16,
        h: 16,
        w: 16,
        c_out: 16,
        kh: 3,
        kw: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let canon = Canon::new(&shape).unwrap();
    let plan = plan_for(&params, &canon).unwrap();
    let cfg = &plan.cfgs[plan.tiles[0].cfg];
    assert_eq!(cfg.d, 8, "the test needs an interleaved plan");
    let tbits = 20u32;
    let t = 1u64 << tbits;
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let x: Vec<u64> = (0..shape.input_len()).map(|_| rng.next_u64() % t).collect();
    let w: Vec<i64> = (0..shape.weight_len())
        .map(|_| (rng.next_u64() % 17) as i64 - 8)
        .collect();
    let want = plain_layer(&shape, &w, &x, tbits);

    let moduli: Vec<Modulus> = params
        .primes()
        .iter()
        .map(|&p| Modulus::new(p).unwrap())
        .collect();
    let parms = BFVEncryptionParametersBuilder::new()
        .set_poly_modulus_degree(DegreeType::D8192)
        .set_coefficient_modulus(moduli)
        .set_plain_modulus_u64(t)
        .build()
        .unwrap();
    let ctx = Context::new(&parms, false, SecurityLevel::TC128).unwrap();
    let keygen = KeyGenerator::new(&ctx).unwrap();
    let enc = Encryptor::with_public_key(&ctx, &keygen.create_public_key()).unwrap();
    let dec = Decryptor::new(&ctx, &keygen.secret_key()).unwrap();
    let eval = BFVEvaluator::new(&ctx).unwrap();
    let plaintext = |coeffs: &[u64]| {
        let mut p = Plaintext::new().unwrap();
        p.resize(params.n);
        for (i, &c) in coeffs.iter().enumerate() {
            p.set_coefficient(i, c);
        }
        p
    };
    let mut checked = 0;
    for mg in 0..cfg.d.min(cfg.n_mg) {
        let mut acc = None;
        for cb in 0..cfg.n_cb {
            let input = crate::client::input_block(&canon, &plan, &x, t - 1, 0, cb);
            let mut kernel = vec![0u64; params.n];
            for m in 0..cfg.mw {
                let o = mg * cfg.mw + m;
                for cl in 0..cfg.cw {
                    let c = cb * cfg.cw + cl;
                    if o >= canon.cout || c >= canon.cin {
                        continue;
                    }
                    for ky in 0..canon.kh {
                        for kx in 0..canon.kw {
                            let wv = w[canon.weight_index(o, c, ky, kx).unwrap()];
                            let (pos, neg) = cfg.kernel_pos(&plan, m, cl, ky, kx);
                            let v = if neg { -wv } else { wv };
                            kernel[pos] = v.rem_euclid(t as i64) as u64;
                        }
                    }
                }
            }
            let ct = enc.encrypt(&plaintext(&input)).unwrap();
            let prod = eval.multiply_plain(&ct, &plaintext(&kernel)).unwrap();
            acc = Some(match acc {
                None => prod,
                Some(a) => eval.add(&a, &prod).unwrap(),
            });
        }
        let out = dec.decrypt(&acc.unwrap()).unwrap();
        for r in revealed(&canon, &plan, 0, mg / cfg.d)
            .iter()
            .filter(|r| r.j == mg % cfg.d)
        {
            let pos = cfg.d * r.y;
            let got = if pos < out.len() {
                out.get_coefficient(pos)
            } else {
                0
            };
            assert_eq!(got, want[r.out], "output {} (product {mg})", r.out);
            checked += 1;
        }
    }
    assert!(checked >= 256, "checked {checked} outputs");
}

#[test]
#[ignore]
fn time_reference_keygen() {
    let m = crate::measure_compute_milli().unwrap();
    eprintln!("compute scale: {m}/1000 (kernels {})", crate::kernel_path());
}
