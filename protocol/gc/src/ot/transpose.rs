use crate::block::Block;

/// Transposes a 128×128 bit matrix in place: afterwards bit r of row c is the old bit c of row r.
pub fn transpose128(a: &mut [Block; 128]) {
    let mut j = 64usize;
    let mut m: Block = u64::MAX as u128;
    while j != 0 {
        let mut k = 0;
        while k < 128 {
            for r in k..k + j {
                let t = ((a[r] >> j) ^ a[r + j]) & m;
                a[r] ^= t << j;
                a[r + j] ^= t;
            }
            k += 2 * j;
        }
        j >>= 1;
        m ^= m << j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_naive_and_is_an_involution() {
        let mut a = [0u128; 128];
        let mut s = 0x1234_5678_9abc_def0u64;
        for row in a.iter_mut() {
            for _ in 0..2 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *row = (*row << 64) | s as u128;
            }
        }
        let orig = a;
        transpose128(&mut a);
        for r in 0..128 {
            for c in 0..128 {
                assert_eq!((a[c] >> r) & 1, (orig[r] >> c) & 1, "r={r} c={c}");
            }
        }
        transpose128(&mut a);
        assert_eq!(a, orig);
    }
}
