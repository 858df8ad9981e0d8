//! Share-local operations: the SecureML truncation used where no ReLU circuit runs.

/// `2^bits − 1`.
#[inline]
pub(crate) fn mask(bits: u32) -> u64 {
    (1u64 << bits) - 1
}

/// The server's half of a local truncation by `shift` bits: `⌊a / 2^shift⌋`.
#[inline]
pub(crate) fn truncate_server(a: u64, shift: u32, bits: u32) -> u64 {
    (a & mask(bits)) >> shift
}

/// The client's half of a local truncation by `shift` bits: `2^k − ⌊(2^k − b) / 2^shift⌋ mod 2^k`.
#[inline]
pub(crate) fn truncate_client(b: u64, shift: u32, bits: u32) -> u64 {
    let modulus = 1u64 << bits;
    let t = (modulus - (b & mask(bits))) >> shift;
    modulus.wrapping_sub(t) & mask(bits)
}

/// Applies the server's truncation to a whole tensor (no-op for `shift == 0`).
pub(crate) fn truncate_server_all(v: &mut [u64], shift: u32, bits: u32) {
    if shift > 0 {
        v.iter_mut()
            .for_each(|x| *x = truncate_server(*x, shift, bits));
    }
}

/// Applies the client's truncation to a whole tensor (no-op for `shift == 0`).
pub(crate) fn truncate_client_all(v: &mut [u64], shift: u32, bits: u32) {
    if shift > 0 {
        v.iter_mut()
            .for_each(|x| *x = truncate_client(*x, shift, bits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Local truncation is off by at most one ulp for values far below the ring size.
    #[test]
    fn local_truncation_is_within_one_ulp() {
        let (bits, shift) = (52u32, 8u32);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let mut exact = 0;
        for _ in 0..100_000 {
            let y: i64 = rng.gen_range(-(1i64 << 26)..(1i64 << 26));
            let b: u64 = rng.gen::<u64>() & mask(bits);
            let a = (y as u64).wrapping_sub(b) & mask(bits);
            let t = truncate_server(a, shift, bits).wrapping_add(truncate_client(b, shift, bits))
                & mask(bits);
            let t = ((t << (64 - bits)) as i64) >> (64 - bits);
            let want = y >> shift;
            assert!(t == want || t == want + 1, "y={y} got {t} want {want}");
            exact += (t == want) as u32;
        }
        assert!(
            exact > 40_000 && exact < 60_000,
            "carry should be ~1/2: {exact}"
        );
    }
}
