//! What the HE phase's operations cost on a host: one core, nanoseconds, measured by
//! [`measure_op_costs`] in well under a second (the best of a few runs of each operation on real
//! keys and ciphertexts). The block planner weighs them against traffic, and `pi-opt count` prices
//! every layer's plan with them (docs/protocol.md, "What a layer costs").

use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::arith::Acc52;
use crate::client::{decrypt_reply, encrypt_frame};
use crate::keyswitch::{self, NttCt};
use crate::server::{finish_reply, kernel_to_ntt, parse_input};
use crate::{ClientHe, HeError, HeParams, Revealed, ServerHe};

/// One-core costs of the HE phase's operations (nanoseconds).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeOpCosts {
    /// Client: encrypt and serialise one input ciphertext.
    pub encrypt_ns: u32,
    /// Server: parse one input ciphertext and expand its seeded half.
    pub parse_ns: u32,
    /// Server: one plaintext–ciphertext product (both halves, lazy accumulation).
    pub product_ns: u32,
    /// Server: reduce one accumulated product (per output group of every tile).
    pub reduce_ns: u32,
    /// Server: one key switch of a packing tree (with its automorphism and shifts).
    pub key_switch_ns: u32,
    /// Server: re-randomise, switch and serialise one reply, without its revealed coefficients.
    pub finish_ns: u32,
    /// Client: decrypt one reply, without its revealed coefficients.
    pub decrypt_ns: u32,
    /// Both: one revealed output coefficient (masking, flooding, switching; CRT and decoding).
    pub reveal_ns: u32,
    /// Server: one kernel plaintext into NTT form (in every session for uncached kernels).
    pub transform_ns: u32,
}

impl Default for HeOpCosts {
    /// The development machine's figures (AMD EPYC Zen 5, AVX-512 IFMA, 2 cores, idle), for hosts
    /// that have not measured theirs.
    fn default() -> Self {
        HeOpCosts {
            encrypt_ns: 310_000,
            parse_ns: 170_000,
            product_ns: 19_000,
            reduce_ns: 45_000,
            key_switch_ns: 700_000,
            finish_ns: 420_000,
            decrypt_ns: 260_000,
            reveal_ns: 110,
            transform_ns: 95_000,
        }
    }
}

impl HeOpCosts {
    /// Every figure is positive and below a second (a cache file could say anything).
    pub fn is_sane(&self) -> bool {
        self.as_array()
            .iter()
            .all(|&v| (1..1_000_000_000).contains(&v))
    }

    fn as_array(&self) -> [u32; 9] {
        [
            self.encrypt_ns,
            self.parse_ns,
            self.product_ns,
            self.reduce_ns,
            self.key_switch_ns,
            self.finish_ns,
            self.decrypt_ns,
            self.reveal_ns,
            self.transform_ns,
        ]
    }

    /// Folded into a fingerprint (both sides must plan with the same figures).
    pub(crate) fn fingerprint_into(&self, f: &mut crate::params::Fnv) {
        for v in self.as_array() {
            f.u64(v as u64);
        }
    }
}

/// The fastest of `reps` runs of `f`, in nanoseconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_nanos() as f64);
    }
    b
}

fn ns(v: f64) -> u32 {
    v.round().clamp(1.0, 999_999_999.0) as u32
}

/// Measures every operation once on this host at `params` (one thread; ≈ 0.3 s).
pub fn measure_op_costs(params: &HeParams) -> Result<HeOpCosts, HeError> {
    let n = params.n;
    let mut rng = ChaCha20Rng::seed_from_u64(0x5049_4845);
    let client = ClientHe::new(params, &mut rng)?;
    let server = ServerHe::new(params, &client.public_setup())?;
    let mask = params.t_mask();
    let m: Vec<u64> = (0..n).map(|_| rng.next_u64() & mask).collect();
    let seeds = |rng: &mut ChaCha20Rng| {
        let (mut a, mut e) = ([0u8; 32], [0u8; 32]);
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut e);
        (a, e)
    };
    let (sa, se) = seeds(&mut rng);
    let mut frame = Vec::new();
    let encrypt = best(6, || {
        frame = encrypt_frame(params, client.sk(), &m, &sa, &se)
    });
    let mut input = parse_input(params, &frame)?;
    let parse = best(6, || {
        if let Ok(i) = parse_input(params, &frame) {
            input = i;
        }
    });
    // A 3×3 kernel over 64 channels: the taps of a typical block.
    let taps: Vec<(u32, i64)> = (0..576)
        .map(|i| ((i * 13 % n) as u32, (rng.next_u64() % 4001) as i64 - 2000))
        .collect();
    let mut kernel = Vec::new();
    let transform = best(6, || kernel = kernel_to_ntt(params, &taps));
    let tables = &params.ntt[..];
    let ln = n * params.num_primes();
    let mut acc0 = Acc52::new(ln);
    let mut acc1 = Acc52::new(ln);
    let products = 16;
    let product = best(4, || {
        for _ in 0..products {
            acc0.mac(&input.c0, &kernel, tables);
            acc1.mac(&input.a, &kernel, tables);
        }
    }) / products as f64;
    let mut ct = NttCt {
        c0: Vec::new(),
        c1: Vec::new(),
    };
    let reduce = best(6, || {
        ct = NttCt {
            c0: acc0.reduce(tables),
            c1: acc1.reduce(tables),
        }
    });
    let galois = server.galois();
    let mut packed = None;
    let key_switch = if galois.is_empty() {
        // No packing at these parameters: the planner never switches keys.
        1.0
    } else {
        best(4, || {
            packed = keyswitch::pack(params, galois, vec![Some(ct.clone()), Some(ct.clone())])
        })
    };
    // Replies revealing nothing and N coefficients: the per-reply and per-coefficient parts.
    let all: Vec<Revealed> = (0..n).map(|i| Revealed { j: 0, y: i, out: i }).collect();
    let stream: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    let mut reply = (Vec::new(), Vec::new());
    let mut finish = |rev: &[Revealed]| {
        let mut r = ChaCha20Rng::seed_from_u64(7);
        best(4, || {
            reply = finish_reply(params, &server, Some(ct.clone()), rev, &stream, 1, &mut r)
        })
    };
    let (finish0, finish_all) = (finish(&[]), finish(&all));
    let reply_all = finish_reply(
        params,
        &server,
        Some(ct.clone()),
        &all,
        &stream,
        1,
        &mut rng,
    );
    let reply_none = finish_reply(params, &server, Some(ct.clone()), &[], &stream, 1, &mut rng);
    let decrypt0 = best(4, || {
        std::hint::black_box(decrypt_reply(params, client.sk(), &reply_none.0, &[], 1));
    });
    let decrypt_all = best(4, || {
        std::hint::black_box(decrypt_reply(params, client.sk(), &reply_all.0, &all, 1));
    });
    std::hint::black_box((&packed, &reply));
    let reveal = ((finish_all - finish0) + (decrypt_all - decrypt0)).max(0.0) / n as f64;
    Ok(HeOpCosts {
        encrypt_ns: ns(encrypt),
        parse_ns: ns(parse),
        product_ns: ns(product),
        reduce_ns: ns(reduce),
        key_switch_ns: ns(key_switch),
        finish_ns: ns(finish0),
        decrypt_ns: ns(decrypt0),
        reveal_ns: ns(reveal),
        transform_ns: ns(transform),
    })
}

/// One plaintext–ciphertext product whose kernel comes from memory rather than from the cache,
/// as in a session whose kernels the server prepared in advance (each cached kernel is read once
/// per session): products cycling through 64 MiB of kernels (one thread, nanoseconds; ≈ 0.1 s).
/// [`HeOpCosts::product_ns`] is the same product with its kernel in the cache, as right after
/// the kernel was transformed.
pub fn measure_product_stream_ns(params: &HeParams) -> Result<f64, HeError> {
    let n = params.n;
    let mut rng = ChaCha20Rng::seed_from_u64(0x5354_5245);
    let client = ClientHe::new(params, &mut rng)?;
    let mask = params.t_mask();
    let m: Vec<u64> = (0..n).map(|_| rng.next_u64() & mask).collect();
    let frame = encrypt_frame(params, client.sk(), &m, &[1; 32], &[2; 32]);
    let input = parse_input(params, &frame)?;
    let tables = &params.ntt[..];
    let ln = n * params.num_primes();
    let count = ((64usize << 20) / (ln * 8)).clamp(16, 4096);
    let kernels: Vec<Vec<u64>> = (0..count)
        .map(|k| {
            let taps: Vec<(u32, i64)> = (0..576)
                .map(|i| {
                    (
                        ((i * 13 + k) % n) as u32,
                        (rng.next_u64() % 4001) as i64 - 2000,
                    )
                })
                .collect();
            kernel_to_ntt(params, &taps)
        })
        .collect();
    let mut acc0 = Acc52::new(ln);
    let mut acc1 = Acc52::new(ln);
    Ok(best(2, || {
        for k in &kernels {
            acc0.mac(&input.c0, k, tables);
            acc1.mac(&input.a, k, tables);
        }
    }) / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_costs_are_sane_and_ordered() {
        let params = HeParams::for_ring(52).unwrap();
        let c = measure_op_costs(&params).unwrap();
        eprintln!("{c:?}");
        assert!(c.is_sane(), "{c:?}");
        // A product is a few multiply-adds per coefficient; encryption and key switching are NTTs.
        assert!(
            c.product_ns < c.encrypt_ns && c.product_ns < c.key_switch_ns,
            "{c:?}"
        );
        assert!(c.reveal_ns < c.finish_ns, "{c:?}");
        // A kernel read from memory is no cheaper than one in the cache, and not absurdly dearer.
        let stream = measure_product_stream_ns(&params).unwrap();
        eprintln!("product from memory {stream:.0} ns");
        assert!(
            stream > 0.8 * c.product_ns as f64 && stream < 20.0 * c.product_ns as f64,
            "{stream} vs {c:?}"
        );
    }
}
