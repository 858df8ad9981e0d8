//! The arithmetic stage: ReLU(trunc) = d·V with d = 1 − msb(y) and V = (a ≫ F) + (b ≫ F) + c_F
//! in Z_2^m, m = min(w − F, k), then the lift to Z_2^k and the client's share fixed to r.
//!
//! * c_F is converted to arithmetic with a precomputed product of random bits (each side
//!   reveals its share of c_F masked by its random bit; the product's correction was sent offline).
//! * d·V_S (server's part) through the mux OT, server → client, on the client's share of d;
//!   d·V_C through the reverse OT, client → server, on the server's share of d.
//! * z = d·V < 2^(m−1), so the wrap of z_S + z_C over 2^m is msb(z_S) ∨ msb(z_C); its product
//!   term comes from a second precomputed bit product in Z_2^(k−m).
//! * The client sends T = (its share of z, lifted) − r; the server's output is ReLU − r.

use super::bits::mask;

/// Bit i of packed words as 0/1.
#[inline]
pub(crate) fn bit(w: &[u64], i: usize) -> u64 {
    (w[i / 64] >> (i % 64)) & 1
}

/// Shares of the product of two bits revealed as X = x ⊕ ρ_S (server) and Y = y ⊕ ρ_C (client),
/// from the precomputed shares π of ρ_S·ρ_C (mod 2^bits).
///
/// x·y = XY + Y(1 − 2X)ρ_S + X(1 − 2Y)ρ_C + (1 − 2X)(1 − 2Y)ρ_Sρ_C; the public XY goes to the server.
#[inline]
pub(crate) fn product_share(server: bool, x: u64, y: u64, rho: u64, pi: u64, bits: u32) -> u64 {
    let sign = if x ^ y == 1 { pi.wrapping_neg() } else { pi };
    let v = if server {
        (x & y)
            .wrapping_add(if y == 1 {
                sign_of(x).wrapping_mul(rho)
            } else {
                0
            })
            .wrapping_add(sign)
    } else {
        (if x == 1 {
            sign_of(y).wrapping_mul(rho)
        } else {
            0
        })
        .wrapping_add(sign)
    };
    v & mask(bits)
}

/// 1 − 2b as a ring element.
#[inline]
fn sign_of(b: u64) -> u64 {
    1u64.wrapping_sub(b << 1)
}

/// (1 − 2d)·v mod 2^bits.
#[inline]
pub(crate) fn signed(d: u64, v: u64, bits: u32) -> u64 {
    (if d == 1 { v.wrapping_neg() } else { v }) & mask(bits)
}

/// Key pair reordered by a public flip bit: (K_f, K_{1⊕f}).
#[inline]
pub(crate) fn swap(k0: u64, k1: u64, flip: u64) -> (u64, u64) {
    if flip == 1 {
        (k1, k0)
    } else {
        (k0, k1)
    }
}

/// The server's output from its share z_S (mod 2^m), its lift-product share and the client's T.
#[inline]
pub(crate) fn server_output(zs: u64, m: u32, k: u32, lift: bool, pi_lift: u64, t: u64) -> u64 {
    if lift {
        let msb = (zs >> (m - 1)) & 1;
        zs.wrapping_sub(msb << m)
            .wrapping_add(pi_lift << m)
            .wrapping_add(t)
            & mask(k)
    } else {
        zs.wrapping_add(t) & mask(k)
    }
}

/// The client's message T from its share z_C (mod 2^m), its lift-product share and n = −r.
#[inline]
pub(crate) fn client_t(zc: u64, m: u32, k: u32, lift: bool, pi_lift: u64, n: u64) -> u64 {
    if lift {
        let msb = (zc >> (m - 1)) & 1;
        zc.wrapping_sub(msb << m)
            .wrapping_add(pi_lift << m)
            .wrapping_add(n)
            & mask(k)
    } else {
        zc.wrapping_add(n) & mask(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_shares_add_up_for_every_bit_pattern() {
        let bits = 19;
        for x in 0..2u64 {
            for y in 0..2u64 {
                for rs in 0..2u64 {
                    for rc in 0..2u64 {
                        let pis = 0x1234u64;
                        let pic = (rs * rc).wrapping_sub(pis) & mask(bits);
                        let (xx, yy) = (x ^ rs, y ^ rc);
                        let s = product_share(true, xx, yy, rs, pis, bits);
                        let c = product_share(false, xx, yy, rc, pic, bits);
                        assert_eq!((s + c) & mask(bits), x * y, "x={x} y={y} rs={rs} rc={rc}");
                    }
                }
            }
        }
    }

    #[test]
    fn lift_recovers_small_values_from_any_sharing() {
        let (m, k) = (5u32, 12u32);
        for z in 0..16u64 {
            for zs in 0..32u64 {
                let zc = z.wrapping_sub(zs) & mask(m);
                let (ms, mc) = ((zs >> 4) & 1, (zc >> 4) & 1);
                let pis = 77u64;
                let pic = (ms * mc).wrapping_sub(pis) & mask(k - m);
                let n = 1000u64;
                let t = client_t(zc, m, k, true, pic, n);
                let out = server_output(zs, m, k, true, pis, t);
                assert_eq!(out, (z + n) & mask(k), "z={z} zs={zs}");
            }
        }
    }
}
