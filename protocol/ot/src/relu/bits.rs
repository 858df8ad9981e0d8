//! Packed bit vectors (one ReLU per bit, 64 per word) and packed m-bit fields, as sent on the wire.

use zeroize::Zeroize;

/// A packed bit vector: bit i is bit i % 64 of word i / 64; bits past `len` are zero.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Zeroize for Bits {
    fn zeroize(&mut self) {
        self.words.zeroize();
    }
}

impl Drop for Bits {
    fn drop(&mut self) {
        self.words.zeroize();
    }
}

/// Words needed for `len` bits.
pub(crate) fn words_for(len: usize) -> usize {
    len.div_ceil(64)
}

impl Bits {
    /// `len` zero bits.
    pub(crate) fn zeros(len: usize) -> Self {
        Bits {
            words: vec![0; words_for(len)],
            len,
        }
    }

    /// Bits from a word vector (bits past `len` are cleared).
    pub(crate) fn from_words(mut words: Vec<u64>, len: usize) -> Self {
        words.resize(words_for(len), 0);
        if !len.is_multiple_of(64) {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
        Bits { words, len }
    }

    /// Bit i of each value: `(v[i] >> shift) & 1`.
    pub(crate) fn from_values(v: &[u64], shift: u32) -> Self {
        let mut b = Bits::zeros(v.len());
        for (w, chunk) in b.words.iter_mut().zip(v.chunks(64)) {
            *w = chunk
                .iter()
                .enumerate()
                .fold(0u64, |acc, (i, &x)| acc | (((x >> shift) & 1) << i));
        }
        b
    }

    /// The words.
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    /// XORs `other` into the words from word `at` on (bits past `len` must be zero in `other`).
    pub(crate) fn xor_words(&mut self, at: usize, other: &[u64]) {
        for (w, o) in self.words.iter_mut().skip(at).zip(other) {
            *w ^= o;
        }
    }

    /// Bit i.
    pub(crate) fn get(&self, i: usize) -> bool {
        (self.words[i / 64] >> (i % 64)) & 1 == 1
    }

    /// Bits `lo..lo + len` as words starting at bit 0.
    pub(crate) fn range(&self, lo: usize, len: usize) -> Vec<u64> {
        let nw = words_for(len);
        let (w0, sh) = (lo / 64, lo % 64);
        let mut out = Vec::with_capacity(nw);
        for i in 0..nw {
            let a = self.words.get(w0 + i).copied().unwrap_or(0);
            let v = if sh == 0 {
                a
            } else {
                let b = self.words.get(w0 + i + 1).copied().unwrap_or(0);
                (a >> sh) | (b << (64 - sh))
            };
            out.push(v);
        }
        if !len.is_multiple_of(64) {
            if let Some(last) = out.last_mut() {
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
        out
    }

    /// Appends the packed bytes (little-endian bit order, ⌈len/8⌉ bytes).
    pub(crate) fn put(words: &[u64], len: usize, out: &mut Vec<u8>) {
        let nb = len.div_ceil(8);
        let start = out.len();
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.truncate(start + nb);
        out.resize(start + nb, 0);
    }

    /// Reads `len` bits from the front of `bytes`; returns the words and the rest.
    pub(crate) fn take(bytes: &[u8], len: usize) -> Option<(Vec<u64>, &[u8])> {
        let nb = len.div_ceil(8);
        if bytes.len() < nb {
            return None;
        }
        let (head, rest) = bytes.split_at(nb);
        let mut words = vec![0u64; words_for(len)];
        for (i, chunk) in head.chunks(8).enumerate() {
            let mut a = [0u8; 8];
            a[..chunk.len()].copy_from_slice(chunk);
            words[i] = u64::from_le_bytes(a);
        }
        if !len.is_multiple_of(64) {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
        Some((words, rest))
    }
}

/// Bytes of `n` packed `bits`-bit fields.
pub(crate) fn field_bytes(n: usize, bits: u32) -> usize {
    (n * bits as usize).div_ceil(8)
}

/// Appends `vals` (low `bits` bits of each) as a little-endian bit stream.
pub(crate) fn put_fields(vals: &[u64], bits: u32, out: &mut Vec<u8>) {
    let mut acc: u128 = 0;
    let mut have = 0u32;
    let m = mask(bits);
    for &v in vals {
        acc |= ((v & m) as u128) << have;
        have += bits;
        while have >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            have -= 8;
        }
    }
    if have > 0 {
        out.push(acc as u8);
    }
}

/// Reads `n` fields of `bits` bits from the front of `bytes`; returns them and the rest.
pub(crate) fn take_fields(bytes: &[u8], n: usize, bits: u32) -> Option<(Vec<u64>, &[u8])> {
    let nb = field_bytes(n, bits);
    if bytes.len() < nb {
        return None;
    }
    let (head, rest) = bytes.split_at(nb);
    let m = mask(bits);
    let mut out = Vec::with_capacity(n);
    let mut acc: u128 = 0;
    let mut have = 0u32;
    let mut it = head.iter();
    for _ in 0..n {
        while have < bits {
            acc |= (*it.next().unwrap_or(&0) as u128) << have;
            have += 8;
        }
        out.push(acc as u64 & m);
        acc >>= bits;
        have -= bits;
    }
    Some((out, rest))
}

/// Low `n` bits set (n ≥ 64: all ones).
pub(crate) fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_bytes_round_trip() {
        let v: Vec<u64> = (0..300u64).map(|i| (i * 0x9e37_79b9) >> 3).collect();
        let b = Bits::from_values(&v, 5);
        for (i, x) in v.iter().enumerate() {
            assert_eq!(b.get(i), (x >> 5) & 1 == 1);
        }
        for (lo, len) in [
            (0, 300),
            (1, 64),
            (63, 65),
            (64, 1),
            (100, 0),
            (250, 50),
            (3, 190),
        ] {
            let r = b.range(lo, len);
            assert_eq!(r.len(), words_for(len));
            for i in 0..len {
                assert_eq!(
                    (r[i / 64] >> (i % 64)) & 1 == 1,
                    b.get(lo + i),
                    "{lo} {len} {i}"
                );
            }
            let mut bytes = vec![9u8];
            Bits::put(&r, len, &mut bytes);
            assert_eq!(bytes.len(), 1 + len.div_ceil(8));
            let (back, rest) = Bits::take(&bytes[1..], len).unwrap();
            assert_eq!(back, r);
            assert!(rest.is_empty());
        }
        assert!(Bits::take(&[1, 2], 17).is_none());
    }

    #[test]
    fn fields_round_trip_for_every_width() {
        for bits in [1u32, 3, 19, 33, 52, 63, 64] {
            let vals: Vec<u64> = (0..37u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let mut out = vec![];
            put_fields(&vals, bits, &mut out);
            assert_eq!(out.len(), field_bytes(vals.len(), bits));
            out.push(7);
            let (back, rest) = take_fields(&out, vals.len(), bits).unwrap();
            assert_eq!(rest, &[7]);
            for (a, b) in vals.iter().zip(&back) {
                assert_eq!(a & mask(bits), *b, "bits {bits}");
            }
            assert!(take_fields(&out[..2], vals.len(), bits).is_none() || bits * 37 <= 16);
        }
    }
}
