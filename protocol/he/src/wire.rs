//! Message formats: bit-packed residues and reply coefficients, and the per-layer headers.

use serde::{Deserialize, Serialize};

/// First frame of a layer, client → server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerRequest {
    pub magic: u32,
    pub params: u64,
    pub shape: u64,
    /// Fingerprint of the client's block plan (`Plan::fingerprint`); the server compares its own.
    pub plan: u64,
    pub num_cts: u32,
}

/// First frame of a reply, server → client.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerReply {
    pub magic: u32,
    pub num_cts: u32,
}

pub(crate) const REQUEST_MAGIC: u32 = 0x5049_4845; // "PIHE"
pub(crate) const REPLY_MAGIC: u32 = 0x5049_4852; // "PIHR"

/// Appends fixed-width little-endian bit fields to a byte vector.
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    acc: u128,
    nbits: u32,
}

impl BitWriter {
    pub fn with_capacity(bytes: usize) -> Self {
        BitWriter {
            buf: Vec::with_capacity(bytes),
            acc: 0,
            nbits: 0,
        }
    }

    /// Writes the low `bits` (≤ 96) bits of v.
    #[inline]
    pub fn put(&mut self, v: u128, bits: u32) {
        debug_assert!(bits <= 96);
        let v = if bits == 128 {
            v
        } else {
            v & ((1u128 << bits) - 1)
        };
        self.acc |= v << self.nbits;
        self.nbits += bits;
        while self.nbits >= 8 {
            self.buf.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.nbits > 0 {
            self.buf.push(self.acc as u8);
        }
        self.buf
    }
}

/// Reads fixed-width fields written by `BitWriter`; the caller checks the total length first.
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
    acc: u128,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        BitReader {
            buf,
            pos: 0,
            acc: 0,
            nbits: 0,
        }
    }

    /// Reads `bits` (≤ 96) bits; missing bytes read as zero (lengths are checked up front).
    #[inline]
    pub fn get(&mut self, bits: u32) -> u128 {
        while self.nbits < bits {
            let b = self.buf.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            self.acc |= (b as u128) << self.nbits;
            self.nbits += 8;
        }
        let v = self.acc & ((1u128 << bits) - 1);
        self.acc >>= bits;
        self.nbits -= bits;
        v
    }
}

/// Bytes taken by `count` fields of `bits` bits.
pub(crate) fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_fields_round_trip() {
        let widths = [1u32, 7, 44, 53, 69, 96, 3];
        let vals: Vec<u128> = widths
            .iter()
            .enumerate()
            .map(|(i, &b)| (0x1234_5678_9abc_def0_1122_3344u128 >> i) & ((1u128 << b) - 1))
            .collect();
        let mut w = BitWriter::with_capacity(64);
        for (&v, &b) in vals.iter().zip(&widths) {
            w.put(v, b);
        }
        let bytes = w.finish();
        assert_eq!(bytes.len(), packed_len(1, widths.iter().sum()));
        let mut r = BitReader::new(&bytes);
        for (&v, &b) in vals.iter().zip(&widths) {
            assert_eq!(r.get(b), v);
        }
    }
}
