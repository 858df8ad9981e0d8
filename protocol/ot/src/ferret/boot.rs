//! Ferret's first base: random-choice COTs from SoftSpoken (k = 8, 2 bytes per COT, `pi-gc`),
//! normalised to the lsb convention (sender values lsb 0, receiver lsb = choice).

use std::io::{Read, Write};

use pi_gc::block::{blocks_from_bytes, blocks_to_bytes};
use pi_gc::ot::{CotReceiver, CotSender};
use pi_net::Channel;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::aes::Block;
use crate::msg::{self, In, Out};
use crate::OtError;

/// SoftSpoken parameter of the bootstrap.
const K: u32 = 8;

/// Sender: Δ and `m` values with lsb 0.
pub(super) fn send<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    m: usize,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<(Block, Zeroizing<Vec<Block>>), OtError> {
    let mut snd = CotSender::setup(ch, K, rng)?;
    let words = m.div_ceil(128);
    let frame = In::recv(ch, msg::BOOT, 0, words as u64, snd.correction_bytes(words))?.0;
    let mut corr = Vec::with_capacity(frame.payload().len() / 16);
    blocks_from_bytes(frame.payload(), &mut corr);
    let mut q = snd.extend(&corr, words)?;
    let delta = snd.delta();
    // q ⊕ lsb(q)·Δ has lsb 0 (lsb Δ = 1); the receiver's value is unchanged, its choice becomes lsb.
    for x in q.iter_mut() {
        *x ^= (*x & 1).wrapping_neg() & delta;
    }
    q.truncate(m);
    Ok((delta, q))
}

/// Receiver: `m` values whose lsb is the (random) choice bit.
pub(super) fn receive<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    m: usize,
    rng: &mut (impl CryptoRng + RngCore),
) -> Result<Zeroizing<Vec<Block>>, OtError> {
    let mut rcv = CotReceiver::setup(ch, K, rng)?;
    let words = m.div_ceil(128);
    let mut choices = Zeroizing::new(vec![0 as Block; words]);
    for c in choices.iter_mut() {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        *c = u128::from_le_bytes(b);
    }
    let (mut v, corr) = rcv.extend(&choices);
    let mut frame = Out::new(msg::BOOT, 0, words as u64, corr.len() * 16);
    blocks_to_bytes(frame.payload(), &corr);
    frame.send(ch)?;
    ch.flush()?;
    v.truncate(m);
    Ok(v)
}
