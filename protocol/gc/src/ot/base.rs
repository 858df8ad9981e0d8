//! Chou–Orlandi "simplest OT" over Ristretto255, batched, keys hashed with the transcript.
//!
//! Sender: a, A = a·G. Receiver with choice c_i: b_i, B_i = b_i·G + c_i·A. Keys:
//! k0_i = H(A, B_i, i, a·B_i), k1_i = H(A, B_i, i, a·B_i − a·A); the receiver computes
//! k_{c_i} = H(A, B_i, i, b_i·A). Semi-honest security; random OT (the keys are the messages).

use std::io::{Read, Write};

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use subtle::{Choice, ConditionallySelectable};
use zeroize::{Zeroize, Zeroizing};

use crate::block::Block;
use crate::msg::{recv_small, send_small, BASE_A, BASE_B};
use crate::GcError;

fn kdf(a: &RistrettoPoint, b: &[u8], i: usize, p: &RistrettoPoint) -> Block {
    let mut h = blake3::Hasher::new_derive_key("pi-gc 2025 Chou-Orlandi base OT v1");
    h.update(a.compress().as_bytes());
    h.update(b);
    h.update(&(i as u64).to_le_bytes());
    h.update(p.compress().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    u128::from_le_bytes(out)
}

/// Sender side of `n` random OTs: returns both keys of each (wiped when dropped).
pub fn send<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    n: usize,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Zeroizing<Vec<[Block; 2]>>, GcError> {
    let mut a = Zeroizing::new(Scalar::random(rng));
    let big_a = RistrettoPoint::mul_base(&a);
    send_small(ch, BASE_A, big_a.compress().as_bytes())?;
    ch.flush()?;
    let bs = recv_small(ch, BASE_B, 32 * n)?;
    // a·A and every a·B_i determine the keys: wiped on every exit path.
    let a_a = Zeroizing::new(*a * big_a);
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    for (i, bb) in bs.chunks_exact(32).enumerate() {
        let b = CompressedRistretto::from_slice(bb)
            .ok()
            .and_then(|c| c.decompress())
            .ok_or(GcError::BadPoint(i))?;
        let mut ab = *a * b;
        let mut ab1 = ab - *a_a;
        out.push([kdf(&big_a, bb, i, &ab), kdf(&big_a, bb, i, &ab1)]);
        ab.zeroize();
        ab1.zeroize();
    }
    a.zeroize();
    Ok(out)
}

/// Receiver side: returns the key selected by each choice bit (wiped when dropped).
pub fn receive<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    choices: &[bool],
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Zeroizing<Vec<Block>>, GcError> {
    let abytes = recv_small(ch, BASE_A, 32)?;
    let big_a = CompressedRistretto::from_slice(&abytes)
        .ok()
        .and_then(|c| c.decompress())
        .ok_or(GcError::BadPoint(0))?;
    let identity = RistrettoPoint::default();
    let mut scalars = Zeroizing::new(Vec::with_capacity(choices.len()));
    let mut msg = Vec::with_capacity(32 * choices.len());
    for &c in choices {
        let b = Scalar::random(rng);
        // B = b·G + c·A, selecting A in constant time.
        let big_b = RistrettoPoint::mul_base(&b)
            + RistrettoPoint::conditional_select(&identity, &big_a, Choice::from(c as u8));
        msg.extend_from_slice(big_b.compress().as_bytes());
        scalars.push(b);
    }
    send_small(ch, BASE_B, &msg)?;
    ch.flush()?;
    let out = scalars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut p = b * big_a;
            let k = kdf(&big_a, &msg[32 * i..32 * i + 32], i, &p);
            p.zeroize();
            k
        })
        .collect();
    Ok(Zeroizing::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn receiver_gets_exactly_the_chosen_key() {
        let (mut s, mut r) = pi_net::loopback_pair().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let choices: Vec<bool> = (0..64).map(|_| rng.next_u32() & 1 == 1).collect();
        let t = std::thread::spawn(move || {
            send(&mut s, 64, &mut ChaCha20Rng::seed_from_u64(2)).unwrap()
        });
        let got = receive(&mut r, &choices, &mut rng).unwrap();
        let keys = t.join().unwrap();
        for i in 0..64 {
            let c = choices[i] as usize;
            assert_eq!(got[i], keys[i][c]);
            assert_ne!(got[i], keys[i][1 - c]);
            assert_ne!(keys[i][0], keys[i][1]);
        }
    }

    #[test]
    fn invalid_point_is_a_typed_error() {
        let (mut s, mut r) = pi_net::loopback_pair().unwrap();
        // An all-0xff encoding is not a canonical Ristretto point.
        send_small(&mut s, BASE_A, &[0xff; 32]).unwrap();
        s.flush().unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        assert!(matches!(
            receive(&mut r, &[true], &mut rng),
            Err(GcError::BadPoint(0))
        ));
    }
}
