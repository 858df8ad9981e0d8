use super::Builder;

/// Plaintext interpretation, bit-sliced: each wire carries 64 independent evaluations in a `u64`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl Builder for Plain {
    type Wire = u64;

    fn xor(&mut self, a: &u64, b: &u64) -> u64 {
        a ^ b
    }
    fn and(&mut self, a: &u64, b: &u64) -> u64 {
        a & b
    }
    fn not(&mut self, a: &u64) -> u64 {
        !a
    }
    fn zero(&mut self) -> u64 {
        0
    }
}

impl Plain {
    /// Bit-slices up to 64 `bits`-wide words: wire j holds bit j of every word (word i in lane i).
    pub fn slice(words: &[u64], bits: u32) -> Vec<u64> {
        (0..bits)
            .map(|j| {
                words
                    .iter()
                    .enumerate()
                    .fold(0u64, |acc, (i, w)| acc | (((w >> j) & 1) << i))
            })
            .collect()
    }

    /// Inverse of [`Plain::slice`]: reads `lanes` words (first 64 wires) back from bit-sliced wires.
    pub fn unslice(wires: &[u64], lanes: usize) -> Vec<u64> {
        (0..lanes)
            .map(|i| {
                wires
                    .iter()
                    .take(64)
                    .enumerate()
                    .fold(0u64, |acc, (j, w)| acc | (((w >> i) & 1) << j))
            })
            .collect()
    }
}
