//! Online phase of the OT ReLU: the ripple-carry comparison and the arithmetic stage, as one
//! alternating exchange per segment (consecutive ReLUs of one run), server first.
//!
//! Messages: the ripple openings (two steps per message once both sides are running), then
//! X (server: c_F's share masked, flip bit of the reverse OT), Y (client: c_F's share masked,
//! flip bit of the mux OT, reverse-OT correction), Z (server: mux-OT correction, lift bit),
//! W (client: lift bit, T). Every frame is `ROUND_S`/`ROUND_C` with a running index and the
//! segment length, and its length is derived from the parameters before it is read.

use std::io::{Read, Write};

use pi_net::Channel;

use super::bits::{field_bytes, mask, put_fields, take_fields, Bits};
use super::carry::{Carry, Role, Schedule, Step, StepTriple};
use super::material::{ClientRun, ServerRun, Triples};
use super::mux::{bit, client_t, product_share, server_output, signed, swap};
use super::shape::Shape;
use crate::msg::{self, In, Out};
use crate::OtError;

const SERVER: usize = 0;
const CLIENT: usize = 1;

/// Which closing parts a message carries.
#[derive(Clone, Copy, Default, Debug)]
struct Closing {
    x: bool,
    y: bool,
    z: bool,
    w: bool,
}

/// Shared bookkeeping of one segment's exchange (identical on both sides).
struct Exchange {
    sched: Schedule,
    closing: Closing,
}

impl Exchange {
    /// The exchange of a segment of shape `s`, before the server's first turn.
    fn new(s: &Shape) -> Self {
        Exchange {
            sched: Schedule::new(s.j),
            closing: Closing::default(),
        }
    }

    /// Decides what party p attaches this turn (after its ripple work).
    fn attach(&mut self, p: usize) -> Closing {
        let mut c = Closing::default();
        if p == SERVER {
            if self.sched.done(SERVER) && !self.closing.x {
                c.x = true;
                self.closing.x = true;
            } else if self.closing.y && !self.closing.z {
                c.z = true;
                self.closing.z = true;
            }
        } else if self.sched.done(CLIENT) && self.closing.x && !self.closing.y {
            c.y = true;
            self.closing.y = true;
        } else if self.closing.z && !self.closing.w {
            c.w = true;
            self.closing.w = true;
        }
        c
    }
}

/// Payload bytes of every message of one segment of `len` ReLUs, in order, with the sender
/// (0 = server, 1 = client).
pub(crate) fn message_sizes(s: &Shape, len: usize) -> Vec<(usize, usize)> {
    if s.trivial {
        return vec![(CLIENT, field_bytes(len, s.k))];
    }
    let mut ex = Exchange::new(s);
    let mut out = Vec::new();
    let mut turn = SERVER;
    loop {
        let steps = ex.sched.turn(turn, |_| {});
        let c = ex.attach(turn);
        out.push((turn, payload_len(s, len, steps, c)));
        if c.w {
            return out;
        }
        turn = 1 - turn;
    }
}

/// Payload bytes of a message: openings of `steps`, then the closing parts.
fn payload_len(s: &Shape, len: usize, steps: std::ops::Range<u32>, c: Closing) -> usize {
    let b = len.div_ceil(8);
    let mut n: usize = steps.map(|st| Carry::planes_of(st as usize) * b).sum();
    if c.x {
        n += b * (1 + s.has_f as usize);
    }
    if c.y {
        n += b * (1 + s.has_f as usize) + field_bytes(len, s.m);
    }
    if c.z {
        n += field_bytes(len, s.m) + if s.lift { b } else { 0 };
    }
    if c.w {
        n += (if s.lift { b } else { 0 }) + field_bytes(len, s.k);
    }
    n
}

/// A round message's length was checked against [`payload_len`] on arrival, so its parts never
/// run short; if they do, this build's sizes and parser disagree.
fn short_round() -> OtError {
    OtError::Desync(
        "an OT ReLU round message ended before its parts (message sizes and parser of this build \
         disagree; please report it)"
            .into(),
    )
}

/// Reads one bit plane of `len` bits from the front of a payload.
fn take_bits(rest: &[u8], len: usize) -> Result<(Vec<u64>, &[u8]), OtError> {
    Bits::take(rest, len).ok_or_else(short_round)
}

/// Reads `len` fields of `bits` bits from the front of a payload.
fn take_ring(rest: &[u8], len: usize, bits: u32) -> Result<(Vec<u64>, &[u8]), OtError> {
    take_fields(rest, len, bits).ok_or_else(short_round)
}

/// Reads `count` bit planes from the front of a payload.
fn read_planes(
    mut rest: &[u8],
    count: usize,
    len: usize,
) -> Result<(Vec<Vec<u64>>, &[u8]), OtError> {
    let mut v = Vec::with_capacity(count);
    for _ in 0..count {
        let (w, r) = take_bits(rest, len)?;
        v.push(w);
        rest = r;
    }
    Ok((v, rest))
}

/// Bit planes 0..=j of the low bits of `vals`, plus plane w − 1.
fn planes(vals: &[u64], s: &Shape) -> (Vec<Vec<u64>>, Vec<u64>) {
    let p = (0..=s.j)
        .map(|j| Bits::from_values(vals, j).words().to_vec())
        .collect();
    (p, Bits::from_values(vals, s.w - 1).words().to_vec())
}

/// The carry state of the chunk of `vals.len()` ReLUs starting at `lo`: the bit planes of
/// `vals`, this party's step-0 bits `r0` and product `p0`, and its triples; with plane w − 1.
fn start_carry(
    role: Role,
    vals: &[u64],
    r0: &Bits,
    p0: &Bits,
    triples: &[Triples],
    lo: usize,
    s: &Shape,
) -> (Carry, Vec<u64>) {
    let len = vals.len();
    let (pl, top) = planes(vals, s);
    let triples = triples
        .iter()
        .map(|t| StepTriple::slice(t, lo, len))
        .collect();
    let carry = Carry::new(role, pl, r0.range(lo, len), p0.range(lo, len), triples, s.f);
    (carry, top)
}

fn send<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    tag: u8,
    index: &mut u64,
    len: usize,
    payload: &[u8],
) -> Result<(), OtError> {
    let mut f = Out::new(tag, *index, len as u64, payload.len());
    f.payload().copy_from_slice(payload);
    f.send(ch)?;
    ch.flush()?;
    *index += 1;
    Ok(())
}

fn recv<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    tag: u8,
    index: &mut u64,
    len: usize,
    bytes: usize,
) -> Result<In, OtError> {
    let f = In::recv(ch, tag, *index, len as u64, bytes)?.0;
    *index += 1;
    Ok(f)
}

/// Server side of one segment: ReLUs `lo..lo + a.len()` of a run; returns ReLU − r per element.
pub(crate) fn server<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    s: &Shape,
    mat: Option<&ServerRun>,
    lo: usize,
    a: &[u64],
    index: &mut u64,
) -> Result<Vec<u64>, OtError> {
    let len = a.len();
    let Some(mat) = mat.filter(|_| !s.trivial) else {
        let f = recv(ch, msg::ROUND_C, index, len, field_bytes(len, s.k))?;
        let (t, _) = take_ring(f.payload(), len, s.k)?;
        return Ok(t);
    };
    let a: Vec<u64> = a.iter().map(|x| x & mask(s.w)).collect();
    let (mut carry, top) = start_carry(Role::Server, &a, &mat.rho0, &mat.p0, &mat.triples, lo, s);
    let mut ex = Exchange::new(s);
    let m = s.m;
    let (mut d, mut vs, mut zs) = (Vec::new(), Vec::new(), Vec::new());
    // From Y: the mux-OT flip bits and the reverse-OT outputs K + d_S·y₂.
    let (mut ga, mut s2out) = (Vec::new(), Vec::new());
    let cross_rho = mat.cross_rho.range(lo, len);
    let lift_rho = mat.lift_rho.range(lo, len);
    let mut fx = Vec::new();
    let mut xl = Vec::new();
    let mut turn = SERVER;
    loop {
        if turn == SERVER {
            let mut payload = Vec::new();
            ripple_turn(&mut ex.sched, SERVER, &mut carry, len, &mut payload);
            let c = ex.attach(SERVER);
            if c.x {
                // d_S = 1 ⊕ a_{w−1} ⊕ c^S_{w−1}
                d = Bits::from_words(
                    (0..carry.words())
                        .map(|i| !(top[i] ^ carry.carry()[i]))
                        .collect(),
                    len,
                )
                .words()
                .to_vec();
                let f = carry.low_carry();
                fx = f.iter().zip(&cross_rho).map(|(a, b)| a ^ b).collect();
                if s.has_f {
                    Bits::put(&fx, len, &mut payload);
                }
                let flip: Vec<u64> = d
                    .iter()
                    .zip(mat.rev_e.range(lo, len))
                    .map(|(a, b)| a ^ b)
                    .collect();
                Bits::put(&flip, len, &mut payload);
            }
            if c.z {
                let mut ya = Vec::with_capacity(len);
                zs = Vec::with_capacity(len);
                for i in 0..len {
                    let (k0, k1) = swap(mat.mux.k0[lo + i], mat.mux.k1[lo + i], bit(&ga, i));
                    let di = bit(&d, i);
                    let w = signed(di, vs[i], m);
                    ya.push(k0.wrapping_sub(k1).wrapping_add(w) & mask(m));
                    zs.push(
                        (di.wrapping_mul(vs[i])
                            .wrapping_sub(k0)
                            .wrapping_add(s2out[i]))
                            & mask(m),
                    );
                }
                put_fields(&ya, m, &mut payload);
                if s.lift {
                    xl = (0..len)
                        .map(|i| ((zs[i] >> (m - 1)) & 1) ^ bit(&lift_rho, i))
                        .collect();
                    let xw = Bits::from_values(&xl, 0);
                    Bits::put(xw.words(), len, &mut payload);
                }
            }
            send(ch, msg::ROUND_S, index, len, &payload)?;
        } else {
            let (c, f, at) = receive_turn(ch, s, &mut ex, CLIENT, &mut carry, len, index)?;
            let mut rest = &f.payload()[at..];
            if c.y {
                let yf = if s.has_f {
                    let (w, r) = take_bits(rest, len)?;
                    rest = r;
                    w
                } else {
                    vec![0; carry.words()]
                };
                let (g, r) = take_bits(rest, len)?;
                ga = g;
                let (y2, _) = take_ring(r, len, m)?;
                let f = carry.low_carry();
                vs = (0..len)
                    .map(|i| {
                        let av = (a[i] >> s.f) & mask(m);
                        if s.has_f {
                            let pi = product_share(
                                true,
                                bit(&fx, i),
                                bit(&yf, i),
                                bit(&cross_rho, i),
                                mat.cross_pi[lo + i],
                                m,
                            );
                            av.wrapping_add(bit(f, i)).wrapping_sub(pi << 1) & mask(m)
                        } else {
                            av
                        }
                    })
                    .collect();
                s2out = (0..len)
                    .map(|i| {
                        mat.rev_k[lo + i].wrapping_add(bit(&d, i).wrapping_mul(y2[i])) & mask(m)
                    })
                    .collect();
            }
            if c.w {
                let yl = if s.lift {
                    let (w, r) = take_bits(rest, len)?;
                    rest = r;
                    w
                } else {
                    Vec::new()
                };
                let (t, _) = take_ring(rest, len, s.k)?;
                let out = (0..len)
                    .map(|i| {
                        let pil = if s.lift {
                            product_share(
                                true,
                                xl[i],
                                bit(&yl, i),
                                bit(&lift_rho, i),
                                mat.lift_pi[lo + i],
                                s.k - m,
                            )
                        } else {
                            0
                        };
                        server_output(zs[i], m, s.k, s.lift, pil, t[i])
                    })
                    .collect();
                return Ok(out);
            }
        }
        turn = 1 - turn;
    }
}

/// Receives party `p`'s message of this turn and hands its ripple openings to `carry`; returns
/// the closing parts that follow them, the message, and where in its payload they start.
fn receive_turn<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    s: &Shape,
    ex: &mut Exchange,
    p: usize,
    carry: &mut Carry,
    len: usize,
    index: &mut u64,
) -> Result<(Closing, In, usize), OtError> {
    let steps = ex.sched.turn(p, |_| {});
    let c = ex.attach(p);
    let tag = if p == SERVER {
        msg::ROUND_S
    } else {
        msg::ROUND_C
    };
    let f = recv(ch, tag, index, len, payload_len(s, len, steps.clone(), c))?;
    let mut rest = f.payload();
    for st in steps {
        let (planes, r) = read_planes(rest, Carry::planes_of(st as usize), len)?;
        carry.receive(st as usize, planes);
        rest = r;
    }
    let at = f.payload().len() - rest.len();
    Ok((c, f, at))
}

/// This party's ripple work for its turn; appends its openings to `payload`.
fn ripple_turn(
    sched: &mut Schedule,
    p: usize,
    carry: &mut Carry,
    len: usize,
    payload: &mut Vec<u8>,
) {
    sched.turn(p, |st| match st {
        Step::Process(s) => carry.process(s),
        Step::Open(s) => {
            for plane in carry.open(s) {
                Bits::put(plane, len, payload);
            }
        }
    });
}

/// Client side of one segment.
pub(crate) fn client<R: Read, W: Write>(
    ch: &mut Channel<R, W>,
    s: &Shape,
    mat: Option<&ClientRun>,
    n: &[u64],
    lo: usize,
    index: &mut u64,
) -> Result<(), OtError> {
    let len = n.len();
    let Some(mat) = mat.filter(|_| !s.trivial) else {
        let mut payload = Vec::new();
        put_fields(n, s.k, &mut payload);
        return send(ch, msg::ROUND_C, index, len, &payload);
    };
    let b = &mat.b[lo..lo + len];
    let (mut carry, top) = start_carry(Role::Client, b, &mat.e0, &mat.p0, &mat.triples, lo, s);
    let mut ex = Exchange::new(s);
    let m = s.m;
    let cross_rho = mat.cross_rho.range(lo, len);
    let lift_rho = mat.lift_rho.range(lo, len);
    let mux_c = mat.mux.c.range(lo, len);
    let (mut d, mut vc, mut pad2, mut rev_flip) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut fx, mut yl_bits, mut ya) = (Vec::new(), Vec::new(), Vec::new());
    let mut turn = SERVER;
    loop {
        if turn == SERVER {
            let (c, f, at) = receive_turn(ch, s, &mut ex, SERVER, &mut carry, len, index)?;
            let mut rest = &f.payload()[at..];
            if c.x {
                if s.has_f {
                    let (w, r) = take_bits(rest, len)?;
                    fx = w;
                    rest = r;
                }
                let (flip, _) = take_bits(rest, len)?;
                rev_flip = flip;
            }
            if c.z {
                let (y, r) = take_ring(rest, len, m)?;
                ya = y;
                if s.lift {
                    let (w, _) = take_bits(r, len)?;
                    yl_bits = w; // the server's lift bits X_L
                }
            }
        } else {
            let mut payload = Vec::new();
            ripple_turn(&mut ex.sched, CLIENT, &mut carry, len, &mut payload);
            let c = ex.attach(CLIENT);
            if c.y {
                // d_C = b_{w−1} ⊕ c^C_{w−1}
                d = (0..carry.words())
                    .map(|i| top[i] ^ carry.carry()[i])
                    .collect();
                let f = carry.low_carry().to_vec();
                let yf: Vec<u64> = f.iter().zip(&cross_rho).map(|(a, b)| a ^ b).collect();
                if s.has_f {
                    Bits::put(&yf, len, &mut payload);
                }
                let ga: Vec<u64> = d.iter().zip(&mux_c).map(|(a, b)| a ^ b).collect();
                Bits::put(&ga, len, &mut payload);
                let flip = std::mem::take(&mut rev_flip);
                let mut y2 = Vec::with_capacity(len);
                vc = Vec::with_capacity(len);
                pad2 = Vec::with_capacity(len);
                for (i, &bi) in b.iter().enumerate() {
                    let bv = (bi >> s.f) & mask(m);
                    let v = if s.has_f {
                        let pi = product_share(
                            false,
                            bit(&fx, i),
                            bit(&yf, i),
                            bit(&cross_rho, i),
                            mat.cross_pi[lo + i],
                            m,
                        );
                        bv.wrapping_add(bit(&f, i)).wrapping_sub(pi << 1) & mask(m)
                    } else {
                        bv
                    };
                    vc.push(v);
                    let (k0, k1) = swap(mat.rev.k0[lo + i], mat.rev.k1[lo + i], bit(&flip, i));
                    y2.push(k0.wrapping_sub(k1).wrapping_add(signed(bit(&d, i), v, m)) & mask(m));
                    pad2.push(k0);
                }
                put_fields(&y2, m, &mut payload);
            }
            if c.w {
                let zc: Vec<u64> = (0..len)
                    .map(|i| {
                        let di = bit(&d, i);
                        let oa = mat.mux.k[lo + i].wrapping_add(di.wrapping_mul(ya[i]));
                        oa.wrapping_add(di.wrapping_mul(vc[i]))
                            .wrapping_sub(pad2[i])
                            & mask(m)
                    })
                    .collect();
                let mut yl = Vec::new();
                if s.lift {
                    yl = (0..len)
                        .map(|i| ((zc[i] >> (m - 1)) & 1) ^ bit(&lift_rho, i))
                        .collect::<Vec<u64>>();
                    let w = Bits::from_values(&yl, 0);
                    Bits::put(w.words(), len, &mut payload);
                }
                let t: Vec<u64> = (0..len)
                    .map(|i| {
                        let pil = if s.lift {
                            product_share(
                                false,
                                bit(&yl_bits, i),
                                yl[i],
                                bit(&lift_rho, i),
                                mat.lift_pi[lo + i],
                                s.k - m,
                            )
                        } else {
                            0
                        };
                        client_t(zc[i], m, s.k, s.lift, pil, n[i])
                    })
                    .collect();
                put_fields(&t, s.k, &mut payload);
                send(ch, msg::ROUND_C, index, len, &payload)?;
                return Ok(());
            }
            send(ch, msg::ROUND_C, index, len, &payload)?;
        }
        turn = 1 - turn;
    }
}
