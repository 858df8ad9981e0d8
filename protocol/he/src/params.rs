//! BFV parameters: ring degree, RNS primes (from SEAL), reply precisions and noise budget.

use std::sync::Arc;

use crate::arith::NttTable;
use crate::HeError;

/// Ring degree N (SEAL's `DegreeType::D8192`).
pub const POLY_DEGREE: usize = 8192;
/// Largest RNS prime size: 4q < 2^52 keeps every NTT value inside AVX-512 IFMA's 52-bit lanes.
pub const MAX_PRIME_BITS: i32 = 49;
/// Bound on the client's fresh encryption noise: centred binomial with η = 21 (σ ≈ 3.24).
pub const CBD_ETA: u32 = 21;
/// Default flooding exponent: per revealed coefficient the statistical distance is ≤ 2^−64,
/// so a session revealing up to 2^24 coefficients stays within 2^−40 overall.
pub const DEFAULT_FLOOD_BITS: u32 = 64;
/// Default budget for Σ|w| over the kernel polynomial of one output group (log2).
pub const DEFAULT_WEIGHT_L1_BITS: u32 = 32;

/// BFV parameters shared by client and server (t = 2^ring_bits, N = 8192, q = three primes).
#[derive(Clone, Debug)]
pub struct HeParams {
    pub(crate) ring_bits: u32,
    pub(crate) flood_bits: u32,
    pub(crate) weight_l1_bits: u32,
    pub(crate) n: usize,
    pub(crate) primes: Vec<u64>,
    pub(crate) ntt: Arc<Vec<NttTable>>,
    /// Bits of each reply c0 coefficient (modulus 2^reply_bits after switching).
    pub(crate) c0_bits: u32,
    /// Bits of each reply c1 coefficient.
    pub(crate) c1_bits: u32,
    /// Bit lengths of the primes (wire width of input residues).
    pub(crate) prime_bits: Vec<u32>,
    /// ⌊q/t⌋ mod q_i and q mod t, for the scaled encoding round(q·m/t).
    pub(crate) delta_mod: Vec<u64>,
    pub(crate) q_mod_t: u128,
    /// (q/q_i)^{-1} mod q_i (CRT for the modulus switch).
    pub(crate) crt_inv: Vec<u64>,
    /// ⌊2^(bits+64)/q_i⌋ for the c0 and c1 switches (fixed-point 2^bits/q_i).
    pub(crate) switch_c0: Vec<u128>,
    pub(crate) switch_c1: Vec<u128>,
    /// How many leading primes the client's exact c1·s product uses (their product < 2^126).
    pub(crate) dec_primes: usize,
}

impl HeParams {
    /// Parameters for the share ring Z_2^ring_bits with the default flooding and weight budget.
    pub fn for_ring(ring_bits: u32) -> Result<Self, HeError> {
        Self::for_ring_with(ring_bits, DEFAULT_FLOOD_BITS, DEFAULT_WEIGHT_L1_BITS)
    }

    /// Parameters with an explicit flooding exponent and weight-ℓ1 budget (both log2).
    pub fn for_ring_with(
        ring_bits: u32,
        flood_bits: u32,
        weight_l1_bits: u32,
    ) -> Result<Self, HeError> {
        if !(20..=59).contains(&ring_bits) {
            return Err(HeError::Params(format!(
                "ring_bits {ring_bits} not in 20..=59"
            )));
        }
        if !(40..=80).contains(&flood_bits) {
            return Err(HeError::Params(format!(
                "flood_bits {flood_bits} not in 40..=80"
            )));
        }
        if !(8..=40).contains(&weight_l1_bits) {
            return Err(HeError::Params(format!(
                "weight_l1_bits {weight_l1_bits} not in 8..=40"
            )));
        }
        let k = ring_bits as f64;
        let n = POLY_DEGREE;
        let log_n = n.trailing_zeros();
        // Noise at q before switching: computation ≤ B = 2^W·(η+½) + 1, flooding ≤ 2^σ·B,
        // re-randomisation ≤ 2·η·N + η. We need q ≥ 2^(k+4)·(that sum): see docs/protocol.md.
        let comp = (weight_l1_bits as f64) + (CBD_ETA as f64 + 0.5).log2() + 1e-9;
        let need = k + 4.0 + (flood_bits as f64) + comp + 0.01;
        // As few primes as fit under MAX_PRIME_BITS, sizes split evenly (SEAL picks the largest
        // NTT-friendly prime below each 2^b, so one spare bit keeps Σ log2 q_i ≥ need).
        let total = need.ceil() as i32 + 1;
        let count = (total as usize).div_ceil(MAX_PRIME_BITS as usize).max(2);
        let sizes: Vec<i32> = (0..count)
            .map(|i| total / count as i32 + i32::from((i as i32) < total % count as i32))
            .collect();
        let primes = seal_primes(&sizes)?;
        let log_q: f64 = primes.iter().map(|&p| (p as f64).log2()).sum();
        if log_q < need {
            return Err(HeError::Params(format!(
                "q has {log_q:.1} bits, need {need:.1}"
            )));
        }
        // Reply noise ≤ 2^(c0−k−4) (switched flood) + ρ + ρ·2^(c0−c1)·N with ρ = ½ + 2^−12 (our
        // switch rounds to nearest up to a 2^−12 fixed-point slack): with c0 = k+16, c1 = k+14
        // that is ≤ 2^12 + 2^14 + 1 < 2^15 = Δ/2 (see docs/protocol.md).
        let c0_bits = ring_bits + log_n + 3;
        let c1_bits = ring_bits + log_n + 1;
        // Client CRT over the leading primes must hold |c1·s| < N·2^c1_bits exactly, inside a u128.
        let mut dec_primes = 0;
        let mut bits = 0f64;
        while bits < (log_n + c1_bits + 2) as f64 {
            bits += primes
                .get(dec_primes)
                .map_or(f64::INFINITY, |&p| (p as f64).log2());
            dec_primes += 1;
        }
        if bits > 126.0 || dec_primes > primes.len() {
            return Err(HeError::Params(
                "no prime subset holds c1·s exactly in 126 bits".into(),
            ));
        }
        let ntt: Vec<NttTable> = primes
            .iter()
            .map(|&q| {
                NttTable::new(q, n)
                    .ok_or_else(|| HeError::Params(format!("prime {q} not NTT-friendly")))
            })
            .collect::<Result<_, _>>()?;
        // ⌊q/t⌋ mod q_i and q mod t from the big product, computed limb-wise.
        let (delta_mod, q_mod_t) = scaling_constants(&ntt, ring_bits);
        let crt_inv = ntt
            .iter()
            .enumerate()
            .map(|(i, ti)| {
                let mut prod = 1u64;
                for (j, tj) in ntt.iter().enumerate() {
                    if j != i {
                        prod = ti.p.mul(prod, tj.p.q % ti.p.q);
                    }
                }
                ti.p.inv(prod)
            })
            .collect();
        let prime_bits = primes.iter().map(|&p| 64 - p.leading_zeros()).collect();
        // ⌊2^(b+64)/p⌋ = ⌊2^b/p⌋·2^64 + ⌊(2^b mod p)·2^64/p⌋ (b < 128 − 64 + log p keeps it in a u128).
        let fixed = |b: u32| -> Vec<u128> {
            primes
                .iter()
                .map(|&p| {
                    let (hi, r) = ((1u128 << b) / p as u128, (1u128 << b) % p as u128);
                    (hi << 64) + ((r << 64) / p as u128)
                })
                .collect()
        };
        let (switch_c0, switch_c1) = (fixed(c0_bits), fixed(c1_bits));
        Ok(HeParams {
            ring_bits,
            flood_bits,
            weight_l1_bits,
            n,
            primes,
            ntt: Arc::new(ntt),
            c0_bits,
            c1_bits,
            prime_bits,
            delta_mod,
            q_mod_t,
            crt_inv,
            switch_c0,
            switch_c1,
            dec_primes,
        })
    }

    /// Share ring exponent k (t = 2^k).
    pub fn ring_bits(&self) -> u32 {
        self.ring_bits
    }

    /// Ring degree N.
    pub fn poly_degree(&self) -> usize {
        self.n
    }

    /// The RNS primes of q.
    pub fn primes(&self) -> &[u64] {
        &self.primes
    }

    /// log2 of the ciphertext modulus q.
    pub fn log_q(&self) -> f64 {
        self.primes.iter().map(|&p| (p as f64).log2()).sum()
    }

    /// Flooding exponent σ: per revealed coefficient the statistical distance is ≤ 2^−σ.
    pub fn flood_bits(&self) -> u32 {
        self.flood_bits
    }

    /// Budget (log2) for the ℓ1 norm of one kernel polynomial group.
    pub fn weight_l1_bits(&self) -> u32 {
        self.weight_l1_bits
    }

    /// Bits per reply coefficient (c0, c1).
    pub fn reply_bits(&self) -> (u32, u32) {
        (self.c0_bits, self.c1_bits)
    }

    /// A 64-bit fingerprint of everything both sides must agree on.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        h.u64(self.ring_bits as u64);
        h.u64(self.flood_bits as u64);
        h.u64(self.weight_l1_bits as u64);
        h.u64(self.n as u64);
        for &p in &self.primes {
            h.u64(p);
        }
        h.finish()
    }

    pub(crate) fn t_mask(&self) -> u64 {
        (1u64 << self.ring_bits) - 1
    }

    pub(crate) fn num_primes(&self) -> usize {
        self.primes.len()
    }
}

/// Primes of the given sizes, 1 mod 2N, from SEAL, validated by SEAL at 128-bit security.
fn seal_primes(sizes: &[i32]) -> Result<Vec<u64>, HeError> {
    use sealy::{CoefficientModulusFactory, DegreeType};
    let seal = |e: sealy::Error| HeError::Seal(e.to_string());
    let moduli = CoefficientModulusFactory::build(DegreeType::D8192, sizes).map_err(seal)?;
    let primes: Vec<u64> = moduli.iter().map(|m| m.value()).collect();
    seal_security_check(&primes)?;
    Ok(primes)
}

/// SEAL's HE-standard check: a TC128 context over these primes must accept key generation.
pub(crate) fn seal_security_check(primes: &[u64]) -> Result<(), HeError> {
    use sealy::{
        BFVEncryptionParametersBuilder, Context, DegreeType, KeyGenerator, Modulus, SecurityLevel,
    };
    let seal = |e: sealy::Error| HeError::Seal(e.to_string());
    let moduli: Vec<Modulus> = primes
        .iter()
        .map(|&p| Modulus::new(p))
        .collect::<Result<_, _>>()
        .map_err(seal)?;
    let parms = BFVEncryptionParametersBuilder::new()
        .set_poly_modulus_degree(DegreeType::D8192)
        .set_coefficient_modulus(moduli)
        // SEAL wants a plain modulus to validate against; the share ring's 2^k is coprime to q.
        .set_plain_modulus_u64(1 << 20)
        .build()
        .map_err(seal)?;
    let ctx = Context::new(&parms, false, SecurityLevel::TC128).map_err(seal)?;
    // SEAL flags insecure or malformed parameters as "not set"; key generation then throws.
    KeyGenerator::new(&ctx)
        .map_err(|e| HeError::Params(format!("SEAL rejected the parameters: {e}")))?;
    Ok(())
}

/// ⌊q/t⌋ mod q_i for each prime, and q mod t, with t = 2^k.
fn scaling_constants(ntt: &[NttTable], k: u32) -> (Vec<u64>, u128) {
    // q as a little-endian u64 limb vector.
    let mut q = vec![1u64];
    for t in ntt {
        let mut carry = 0u128;
        for limb in q.iter_mut() {
            let v = *limb as u128 * t.p.q as u128 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            q.push(carry as u64);
        }
    }
    let mask: u128 = (1u128 << k) - 1;
    let q_mod_t = (q[0] as u128 | (q.get(1).copied().unwrap_or(0) as u128) << 64) & mask;
    // Δ = q >> k, as limbs.
    let limb_shift = (k / 64) as usize;
    let bit = k % 64;
    let mut delta = vec![0u64; q.len()];
    for i in 0..q.len().saturating_sub(limb_shift) {
        let lo = q[i + limb_shift] >> bit;
        let hi = if bit > 0 {
            q.get(i + limb_shift + 1).map_or(0, |&h| h << (64 - bit))
        } else {
            0
        };
        delta[i] = lo | hi;
    }
    let delta_mod = ntt
        .iter()
        .map(|t| {
            let mut acc = 0u64;
            for &limb in delta.iter().rev() {
                acc = t.p.reduce_u128(((acc as u128) << 64) | limb as u128);
            }
            acc
        })
        .collect();
    (delta_mod, q_mod_t)
}

/// FNV-1a over 64-bit words (fingerprints of parameters and shapes).
pub(crate) struct Fnv(u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf29ce484222325)
    }
    pub fn u64(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x100000001b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0
    }
}
