use crate::block::Block;

/// Transposes a 128×128 bit matrix in place: afterwards bit r of row c is the old bit c of row r.
///
/// Eklundh's recursive block swap, done on 64-bit halves so every step is a straight-line loop
/// over contiguous words that the compiler vectorises (SSE2 is baseline on x86-64).
pub fn transpose128(a: &mut [Block; 128]) {
    let mut x = [0u64; 256];
    for (r, v) in a.iter().enumerate() {
        x[2 * r] = *v as u64;
        x[2 * r + 1] = (*v >> 64) as u64;
    }
    // j = 64: swap the high half of row r with the low half of row r + 64.
    for r in 0..64 {
        x.swap(2 * r + 1, 2 * (r + 64));
    }
    const MASKS: [(usize, u64); 6] = [
        (32, 0x0000_0000_ffff_ffff),
        (16, 0x0000_ffff_0000_ffff),
        (8, 0x00ff_00ff_00ff_00ff),
        (4, 0x0f0f_0f0f_0f0f_0f0f),
        (2, 0x3333_3333_3333_3333),
        (1, 0x5555_5555_5555_5555),
    ];
    for (j, m) in MASKS {
        // Rows k..k+j pair with rows k+j..k+2j; in the u64 view both are 2j contiguous words.
        for blk in x.chunks_exact_mut(4 * j) {
            let (lo, hi) = blk.split_at_mut(2 * j);
            for (p, q) in lo.iter_mut().zip(hi.iter_mut()) {
                let t = ((*p >> j) ^ *q) & m;
                *p ^= t << j;
                *q ^= t;
            }
        }
    }
    for (r, v) in a.iter_mut().enumerate() {
        *v = x[2 * r] as u128 | ((x[2 * r + 1] as u128) << 64);
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
        for (r, row) in orig.iter().enumerate() {
            for (c, col) in a.iter().enumerate() {
                assert_eq!((col >> r) & 1, (row >> c) & 1, "r={r} c={c}");
            }
        }
        transpose128(&mut a);
        assert_eq!(a, orig);
    }
}
