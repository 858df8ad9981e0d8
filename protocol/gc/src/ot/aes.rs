//! AES-128 on 128-bit blocks: batched encryption under one key, with a VAES (4 blocks per
//! instruction) or AES-NI fast path chosen at run time and the `aes` crate as the portable path
//! (`PI_OT_PORTABLE_AES=1` forces it). The `aes` crate (0.8) has no VAES path; OT extension spends
//! most of its time in AES, so the OT code carries its own.
//!
//! Blocks are `u128` read as 16 little-endian bytes, the same convention as `pi-gc`, so a block
//! encrypted here equals `aes::Aes128Enc` on `x.to_le_bytes()`.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::Aes128Enc;
use zeroize::Zeroize;

/// A 128-bit block: label, seed, COT value.
pub type Block = u128;

/// AES-128 encryption under one expanded key.
pub struct Aes {
    /// Round keys for the x86-64 fast paths (wiped on drop).
    rk: [Block; 11],
    imp: Impl,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Vaes,
    AesNi,
    Portable,
}

impl Drop for Aes {
    fn drop(&mut self) {
        self.rk.zeroize();
    }
}

fn detect() -> Impl {
    static IMPL: std::sync::OnceLock<Impl> = std::sync::OnceLock::new();
    *IMPL.get_or_init(detect_now)
}

fn detect_now() -> Impl {
    #[cfg(target_arch = "x86_64")]
    {
        if std::env::var_os("PI_OT_PORTABLE_AES").is_some() {
            return Impl::Portable;
        }
        if is_x86_feature_detected!("vaes") && is_x86_feature_detected!("avx512f") {
            return Impl::Vaes;
        }
        if is_x86_feature_detected!("aes") && is_x86_feature_detected!("sse2") {
            return Impl::AesNi;
        }
    }
    Impl::Portable
}

/// The portable key schedule (FIPS-197), used for every path so all agree bit for bit.
fn expand_key(key: Block) -> [Block; 11] {
    const SBOX: [u8; 256] = sbox();
    const RCON: [u8; 10] = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];
    let mut w = [[0u8; 4]; 44];
    let kb = key.to_le_bytes();
    for i in 0..4 {
        w[i].copy_from_slice(&kb[4 * i..4 * i + 4]);
    }
    for i in 4..44 {
        let mut t = w[i - 1];
        if i % 4 == 0 {
            t = [
                SBOX[t[1] as usize] ^ RCON[i / 4 - 1],
                SBOX[t[2] as usize],
                SBOX[t[3] as usize],
                SBOX[t[0] as usize],
            ];
        }
        for j in 0..4 {
            w[i][j] = w[i - 4][j] ^ t[j];
        }
    }
    let mut rk = [0 as Block; 11];
    for (r, k) in rk.iter_mut().enumerate() {
        let mut b = [0u8; 16];
        for j in 0..4 {
            b[4 * j..4 * j + 4].copy_from_slice(&w[4 * r + j]);
        }
        *k = u128::from_le_bytes(b);
    }
    w.zeroize();
    rk
}

/// The AES S-box, computed at compile time (multiplicative inverse in GF(2^8), then the affine map).
const fn sbox() -> [u8; 256] {
    let mut s = [0u8; 256];
    let mut x = 0usize;
    while x < 256 {
        // inverse by exponentiation: x^254
        let mut r: u8 = 1;
        let mut b = x as u8;
        let mut e = 254u32;
        while e > 0 {
            if e & 1 == 1 {
                r = gmul(r, b);
            }
            b = gmul(b, b);
            e >>= 1;
        }
        let inv = if x == 0 { 0 } else { r };
        let a =
            inv ^ inv.rotate_left(1) ^ inv.rotate_left(2) ^ inv.rotate_left(3) ^ inv.rotate_left(4);
        s[x] = a ^ 0x63;
        x += 1;
    }
    s
}

const fn gmul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 == 1 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

impl Aes {
    /// Expands `key`.
    pub fn new(key: Block) -> Self {
        let imp = detect();
        let rk = match imp {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: both fast paths imply AES-NI (checked in `detect`).
            Impl::Vaes | Impl::AesNi => unsafe { x86::expand_key(key) },
            _ => expand_key(key),
        };
        Aes { rk, imp }
    }

    /// Encrypts every block of `xs` in place.
    #[inline]
    pub fn encrypt(&self, xs: &mut [Block]) {
        match self.imp {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Impl::Vaes` is only chosen when the CPU reports VAES and AVX-512F.
            Impl::Vaes => unsafe { x86::encrypt_vaes(&self.rk, xs) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Impl::AesNi` is only chosen when the CPU reports AES-NI.
            Impl::AesNi => unsafe { x86::encrypt_aesni(&self.rk, xs) },
            _ => self.encrypt_portable(xs),
        }
    }

    /// Encrypts one block.
    #[inline]
    pub fn encrypt_one(&self, x: Block) -> Block {
        let mut b = [x];
        self.encrypt(&mut b);
        b[0]
    }

    fn encrypt_portable(&self, xs: &mut [Block]) {
        // The `aes` crate keyed from our first round key (= the key itself).
        let c = Aes128Enc::new(&self.rk[0].to_le_bytes().into());
        let mut buf = [aes::Block::default(); 32];
        for chunk in xs.chunks_mut(32) {
            for (b, x) in buf.iter_mut().zip(chunk.iter()) {
                *b = aes::Block::from(x.to_le_bytes());
            }
            c.encrypt_blocks(&mut buf[..chunk.len()]);
            for (x, b) in chunk.iter_mut().zip(buf.iter()) {
                *x = u128::from_le_bytes((*b).into());
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Block;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn ld(p: *const Block) -> __m128i {
        _mm_loadu_si128(p as *const __m128i)
    }

    #[inline(always)]
    unsafe fn st(v: __m128i) -> Block {
        let mut b: Block = 0;
        _mm_storeu_si128(&mut b as *mut Block as *mut __m128i, v);
        b
    }

    /// One AES-128 key-schedule step from the previous round key and AESKEYGENASSIST's output.
    #[inline(always)]
    unsafe fn step(k: __m128i, assist: __m128i) -> __m128i {
        let t = _mm_shuffle_epi32(assist, 0xff);
        let mut k = k;
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
        k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
        _mm_xor_si128(k, t)
    }

    /// The AES-128 key schedule with AESKEYGENASSIST (equal to the portable one; tested).
    #[target_feature(enable = "aes,sse2")]
    pub(super) unsafe fn expand_key(key: Block) -> [Block; 11] {
        let mut rk = [0 as Block; 11];
        let mut k = ld(&key);
        rk[0] = st(k);
        macro_rules! round {
            ($i:expr, $rcon:expr) => {
                k = step(k, _mm_aeskeygenassist_si128(k, $rcon));
                rk[$i] = st(k);
            };
        }
        round!(1, 0x01);
        round!(2, 0x02);
        round!(3, 0x04);
        round!(4, 0x08);
        round!(5, 0x10);
        round!(6, 0x20);
        round!(7, 0x40);
        round!(8, 0x80);
        round!(9, 0x1b);
        round!(10, 0x36);
        rk
    }

    /// AES-NI, 8 blocks in flight.
    #[target_feature(enable = "aes,sse2")]
    pub(super) unsafe fn encrypt_aesni(rk: &[Block; 11], xs: &mut [Block]) {
        let k: [__m128i; 11] = std::array::from_fn(|i| ld(&rk[i]));
        let mut chunks = xs.chunks_exact_mut(8);
        for c in &mut chunks {
            let p = c.as_mut_ptr();
            let mut s: [__m128i; 8] = std::array::from_fn(|i| _mm_xor_si128(ld(p.add(i)), k[0]));
            for r in k.iter().take(10).skip(1) {
                for v in s.iter_mut() {
                    *v = _mm_aesenc_si128(*v, *r);
                }
            }
            for (i, v) in s.iter().enumerate() {
                _mm_storeu_si128(p.add(i) as *mut __m128i, _mm_aesenclast_si128(*v, k[10]));
            }
        }
        for x in chunks.into_remainder() {
            let mut v = _mm_xor_si128(ld(x), k[0]);
            for r in k.iter().take(10).skip(1) {
                v = _mm_aesenc_si128(v, *r);
            }
            _mm_storeu_si128(
                x as *mut Block as *mut __m128i,
                _mm_aesenclast_si128(v, k[10]),
            );
        }
    }

    /// VAES on 512-bit registers: 4 blocks per instruction, 8 registers (32 blocks) in flight.
    #[target_feature(enable = "avx512f,vaes,aes,sse2")]
    pub(super) unsafe fn encrypt_vaes(rk: &[Block; 11], xs: &mut [Block]) {
        let k: [__m512i; 11] = std::array::from_fn(|i| _mm512_broadcast_i32x4(ld(&rk[i])));
        let mut chunks = xs.chunks_exact_mut(32);
        for c in &mut chunks {
            let p = c.as_mut_ptr() as *mut __m512i;
            let mut s: [__m512i; 8] = std::array::from_fn(|i| {
                _mm512_xor_si512(_mm512_loadu_si512(p.add(i) as *const _), k[0])
            });
            for r in k.iter().take(10).skip(1) {
                for v in s.iter_mut() {
                    *v = _mm512_aesenc_epi128(*v, *r);
                }
            }
            for (i, v) in s.iter().enumerate() {
                _mm512_storeu_si512(p.add(i) as *mut _, _mm512_aesenclast_epi128(*v, k[10]));
            }
        }
        let rest = chunks.into_remainder();
        let mut quads = rest.chunks_exact_mut(4);
        for c in &mut quads {
            let p = c.as_mut_ptr() as *mut __m512i;
            let mut v = _mm512_xor_si512(_mm512_loadu_si512(p as *const _), k[0]);
            for r in k.iter().take(10).skip(1) {
                v = _mm512_aesenc_epi128(v, *r);
            }
            _mm512_storeu_si512(p as *mut _, _mm512_aesenclast_epi128(v, k[10]));
        }
        let tail = quads.into_remainder();
        if !tail.is_empty() {
            encrypt_aesni(rk, tail);
        }
    }
}

/// Key of the fixed public permutation π (digits of π, as in `pi-gc`).
const FIXED_KEY: Block = u128::from_le_bytes([
    0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3, 0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44,
]);

/// σ(x_hi, x_lo) = (x_hi ⊕ x_lo, x_hi): the linear orthomorphism of Guo et al. 2020.
#[inline(always)]
pub fn sigma(x: Block) -> Block {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    (((hi ^ lo) as u128) << 64) | hi as u128
}

/// Hashes over the fixed-key permutation π: the circular correlation-robust H(x) = π(σ(x)) ⊕ σ(x)
/// and its tweakable form H(x, i) = π(σ(x) ⊕ i) ⊕ σ(x) ⊕ i (Guo, Katz, Wang, Yu 2020).
pub struct Ccr {
    pi: Aes,
}

impl Default for Ccr {
    fn default() -> Self {
        Self::new()
    }
}

/// Blocks hashed per batch (fills the VAES pipeline, stays in L1).
const BATCH: usize = 64;

impl Ccr {
    /// The hash with the public fixed key.
    pub fn new() -> Self {
        Ccr {
            pi: Aes::new(FIXED_KEY),
        }
    }

    /// The permutation π itself.
    pub fn pi(&self) -> &Aes {
        &self.pi
    }

    /// `out[i] = H(xs[i])` (untweaked).
    pub fn hash(&self, xs: &[Block], out: &mut [Block]) {
        let mut z = [0 as Block; BATCH];
        for (xc, oc) in xs.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let n = xc.len();
            for (zi, &x) in z.iter_mut().zip(xc) {
                *zi = sigma(x);
            }
            oc[..n].copy_from_slice(&z[..n]);
            self.pi.encrypt(&mut oc[..n]);
            for (o, zi) in oc.iter_mut().zip(&z) {
                *o ^= zi;
            }
        }
    }

    /// `out[i] = H(xs[i], tweak + i)`.
    pub fn hash_tweaked(&self, xs: &[Block], tweak: u128, out: &mut [Block]) {
        let mut z = [0 as Block; BATCH];
        for (ci, (xc, oc)) in xs.chunks(BATCH).zip(out.chunks_mut(BATCH)).enumerate() {
            let n = xc.len();
            let base = tweak.wrapping_add((ci * BATCH) as u128);
            for (j, (zi, &x)) in z.iter_mut().zip(xc).enumerate() {
                *zi = sigma(x) ^ base.wrapping_add(j as u128);
            }
            oc[..n].copy_from_slice(&z[..n]);
            self.pi.encrypt(&mut oc[..n]);
            for (o, zi) in oc.iter_mut().zip(&z) {
                *o ^= zi;
            }
        }
    }

    /// H(x) for one block.
    pub fn hash_one(&self, x: Block) -> Block {
        let z = sigma(x);
        self.pi.encrypt_one(z) ^ z
    }
}

/// A counter-mode PRG: block i of stream `s` is AES_K(s ‖ i).
pub struct Prg {
    aes: Aes,
}

impl Prg {
    /// Keys the PRG with a secret or public seed.
    pub fn new(seed: Block) -> Self {
        Prg {
            aes: Aes::new(seed),
        }
    }

    /// Fills `out` with blocks `start..start + out.len()` of stream `stream`.
    pub fn fill(&self, stream: u64, start: u64, out: &mut [Block]) {
        let hi = (stream as u128) << 64;
        for (i, o) in out.iter_mut().enumerate() {
            *o = hi | (start + i as u64) as u128;
        }
        self.aes.encrypt(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(key: Block, x: Block) -> Block {
        let c = Aes128Enc::new(&key.to_le_bytes().into());
        let mut b = aes::Block::from(x.to_le_bytes());
        c.encrypt_block(&mut b);
        u128::from_le_bytes(b.into())
    }

    #[test]
    fn every_path_matches_the_aes_crate() {
        let key = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
        let xs: Vec<Block> = (0..77u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let want: Vec<Block> = xs.iter().map(|&x| reference(key, x)).collect();
        for imp in [Impl::Vaes, Impl::AesNi, Impl::Portable] {
            if imp != Impl::Portable && detect() == Impl::Portable {
                continue;
            }
            if imp == Impl::Vaes && detect() != Impl::Vaes {
                continue;
            }
            let a = Aes {
                rk: expand_key(key),
                imp,
            };
            // Every length exercises the 32-, 4-, 8- and 1-block tails.
            for n in [0, 1, 3, 4, 7, 8, 31, 32, 33, 77] {
                let mut v = xs[..n].to_vec();
                a.encrypt(&mut v);
                assert_eq!(v, want[..n], "{imp:?} n={n}");
            }
        }
    }

    #[test]
    fn hardware_key_schedule_equals_the_portable_one() {
        if detect() == Impl::Portable {
            return;
        }
        for key in [
            0u128,
            1,
            u128::MAX,
            0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100,
            0xdead_beef << 70,
        ] {
            // SAFETY: a fast path was detected, so AES-NI is available.
            assert_eq!(unsafe { x86::expand_key(key) }, expand_key(key));
        }
    }

    #[test]
    fn fips197_vector() {
        // FIPS-197 C.1: key 000102..0f, plaintext 00112233..ff.
        let key = u128::from_le_bytes(std::array::from_fn(|i| i as u8));
        let pt = u128::from_le_bytes(std::array::from_fn(|i| (i as u8) * 0x11));
        let ct = Aes::new(key).encrypt_one(pt);
        let want = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        assert_eq!(ct.to_le_bytes(), want);
    }

    #[test]
    fn hashes_batch_like_single_calls_and_depend_on_tweak() {
        let h = Ccr::new();
        let xs: Vec<Block> = (0..70u128).map(|i| i * 0x1234_5678_9abc_def1).collect();
        let mut out = vec![0; 70];
        h.hash(&xs, &mut out);
        for (x, o) in xs.iter().zip(&out) {
            assert_eq!(*o, h.hash_one(*x));
        }
        let mut tw = vec![0; 70];
        h.hash_tweaked(&xs, 5, &mut tw);
        let z = sigma(xs[3]) ^ 8;
        assert_eq!(tw[3], h.pi().encrypt_one(z) ^ z);
        assert_ne!(tw[3], out[3]);
    }
}
