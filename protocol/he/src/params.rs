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

/// Default link speed the block planner assumes when it weighs compute against traffic (Mbit/s):
/// at 100 Mbit/s packing replies with key switches pays off; on a fast LAN fewer switches do.
pub const DEFAULT_LINK_MBPS: u32 = 100;

/// Default packing exponent L: up to D = 2^L products merge into one reply (lowered
/// automatically when q·P would exceed SEAL's 128-bit bound).
pub const DEFAULT_PACK_BITS: u32 = 3;

/// BFV parameters shared by client and server (N = 8192, plaintext 2^(k+L), chain q, special P).
#[derive(Clone, Debug)]
pub struct HeParams {
    pub(crate) ring_bits: u32,
    pub(crate) flood_bits: u32,
    pub(crate) weight_l1_bits: u32,
    /// L: replies pack up to 2^L products.
    pub(crate) pack_bits: u32,
    /// k + L: the plaintext modulus is t' = 2^plain_bits.
    pub(crate) plain_bits: u32,
    /// Link speed (Mbit/s) the block planner optimises for.
    pub(crate) link_mbps: u32,
    /// This host's HE compute time relative to the machine the planner's constants come from,
    /// in thousandths (1000 = the same).
    pub(crate) compute_milli: u32,
    pub(crate) n: usize,
    pub(crate) primes: Vec<u64>,
    pub(crate) ntt: Arc<Vec<NttTable>>,
    /// Key-switching basis: the chain primes, then the special prime P.
    pub(crate) ks_ntt: Arc<Vec<NttTable>>,
    /// Bits of each reply c0 coefficient (modulus 2^c0_bits after switching).
    pub(crate) c0_bits: u32,
    /// Bits of each reply c1 coefficient.
    pub(crate) c1_bits: u32,
    /// Bit lengths of the chain primes (wire width of input residues).
    pub(crate) prime_bits: Vec<u32>,
    /// Bit lengths of the key-switching basis primes.
    pub(crate) ks_bits: Vec<u32>,
    /// ⌊q/t'⌋ mod q_i and q mod t', for the scaled encoding round(q·m/t').
    pub(crate) delta_shoup: Vec<(u64, u64)>,
    pub(crate) q_mod_t: u128,
    /// (q/q_i)^{-1} mod q_i (CRT for the modulus switch).
    pub(crate) crt_inv: Vec<u64>,
    /// ⌊2^(bits+64)/q_i⌋ for the c0 and c1 switches (fixed-point 2^bits/q_i).
    pub(crate) switch_c0: Vec<u128>,
    pub(crate) switch_c1: Vec<u128>,
    /// P mod q_j and (P^{-1} mod q_j, its Shoup constant) for key switching.
    pub(crate) p_mod: Vec<u64>,
    pub(crate) p_inv: Vec<(u64, u64)>,
    /// NTT-domain Galois permutations (per packing level l, element N/2^l + 1): slot i of τ(a)
    /// is slot perm[i] of a (the same for every prime).
    pub(crate) galois_perm: Vec<Vec<u32>>,
    /// NTT of X^(2^l) per level l, per chain prime (value, Shoup constant), prime-major.
    pub(crate) shift_ntt: Vec<Vec<(u64, u64)>>,
    /// How many leading primes the client's exact c1·s product uses (their product < 2^126).
    pub(crate) dec_primes: usize,
}

impl HeParams {
    /// Parameters for the share ring Z_2^ring_bits with the default flooding, weight budget and packing.
    pub fn for_ring(ring_bits: u32) -> Result<Self, HeError> {
        Self::for_ring_with(ring_bits, DEFAULT_FLOOD_BITS, DEFAULT_WEIGHT_L1_BITS)
    }

    /// Parameters with an explicit flooding exponent and weight-ℓ1 budget (both log2), packing as
    /// deep as 128-bit security allows (L ≤ 3).
    pub fn for_ring_with(
        ring_bits: u32,
        flood_bits: u32,
        weight_l1_bits: u32,
    ) -> Result<Self, HeError> {
        let mut last = None;
        for l in (0..=DEFAULT_PACK_BITS).rev() {
            match Self::for_ring_packed(ring_bits, flood_bits, weight_l1_bits, l) {
                Ok(p) => return Ok(p),
                Err(e @ HeError::Params(_)) if l > 0 => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| HeError::Params("no packing depth fits".into())))
    }

    /// Parameters with explicit flooding, weight budget and packing exponent L (0..=3; 0 = no packing).
    pub fn for_ring_packed(
        ring_bits: u32,
        flood_bits: u32,
        weight_l1_bits: u32,
        pack_bits: u32,
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
        if pack_bits > 3 {
            return Err(HeError::Params(format!(
                "pack_bits {pack_bits} not in 0..=3"
            )));
        }
        let n = POLY_DEGREE;
        let log_n = n.trailing_zeros();
        let plain_bits = ring_bits + pack_bits;
        let eta = CBD_ETA as f64;
        // Noise at q before the switch (docs/protocol.md, "Noise analysis"): each product ≤ B_pub
        // = 2^W·(η+½) + 1; packing grows the ∞-norm by 4^L and adds key-switch noise ≤ B_ks per
        // merge; flooding is 2^σ times that; re-randomisation ≤ 2ηN + η. q ≥ 2^(k+L+4)·(sum).
        // B_ks ≤ L_q·(q_i/2)·N·η/P + (N+1)/2 ≤ 2^20 for P ≥ q_i/2 (checked below).
        let b_ks_bound = (1u64 << 20) as f64;
        let b_pub = 2f64.powi(weight_l1_bits as i32) * (eta + 0.5) + 1.0;
        let b_packed = 4f64.powi(pack_bits as i32) * (b_pub + b_ks_bound);
        let b_total = b_packed * (1.0 + 2f64.powi(flood_bits as i32)) + 2.0 * eta * n as f64 + eta;
        if (b_packed * 2f64.powi(flood_bits as i32)).log2() > 125.0 {
            return Err(HeError::Params(format!(
                "flooding bound 2^{:.1} exceeds 2^125",
                (b_packed * 2f64.powi(flood_bits as i32)).log2()
            )));
        }
        let need = plain_bits as f64 + 4.0 + b_total.log2() + 0.01;
        let total = need.ceil() as i32 + 1;
        let count = (total as usize).div_ceil(MAX_PRIME_BITS as usize).max(2);
        let mut sizes: Vec<i32> = (0..count)
            .map(|i| total / count as i32 + i32::from((i as i32) < total % count as i32))
            .collect();
        let special_bits = if pack_bits > 0 {
            (sizes[0] + 1).min(MAX_PRIME_BITS)
        } else {
            sizes[0]
        };
        sizes.push(special_bits);
        let mut all = seal_primes(&sizes)?;
        // seal_primes returns one prime per entry of `sizes`, whose last entry is the special one.
        let special = all.pop().expect("sizes has the special prime");
        let primes = all;
        seal_security_check(&primes)?;
        let log_q: f64 = primes.iter().map(|&p| (p as f64).log2()).sum();
        if log_q < need {
            return Err(HeError::Params(format!(
                "q has {log_q:.1} bits, need {need:.1}"
            )));
        }
        let mut ks_primes = primes.clone();
        ks_primes.push(special);
        if pack_bits > 0 {
            // Galois keys live modulo q·P: SEAL's check must accept that modulus too.
            seal_security_check(&ks_primes)?;
            let qmax = primes.iter().copied().max().unwrap_or(0) as f64;
            let b_ks = primes.len() as f64 * qmax / 2.0 * n as f64 * eta / special as f64
                + (n as f64 + 1.0) / 2.0;
            if b_ks > b_ks_bound {
                return Err(HeError::Params(format!(
                    "key-switch noise 2^{:.1} too large",
                    b_ks.log2()
                )));
            }
        }
        // Reply noise ≤ 2^(c0−k−L−4) (switched flood) + ρ + ρ·2^(c0−c1)·N with ρ = ½ + 2^−12:
        // with c0 = k+L+16, c1 = k+L+14 that is ≤ 2^12 + 2^14 + 1 < 2^15 = Δ/2.
        let c0_bits = plain_bits + log_n + 3;
        let c1_bits = plain_bits + log_n + 1;
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
        let table = |q: u64| {
            NttTable::new(q, n)
                .ok_or_else(|| HeError::Params(format!("prime {q} not NTT-friendly")))
        };
        let ntt: Vec<NttTable> = primes.iter().map(|&q| table(q)).collect::<Result<_, _>>()?;
        let ks_ntt: Vec<NttTable> = ks_primes
            .iter()
            .map(|&q| table(q))
            .collect::<Result<_, _>>()?;
        // ⌊q/t'⌋ mod q_i and q mod t' from the big product, computed limb-wise.
        let (delta_mod, q_mod_t) = scaling_constants(&ntt, plain_bits);
        let delta_shoup = ntt
            .iter()
            .zip(&delta_mod)
            .map(|(t, &d)| (d, t.p.shoup(d)))
            .collect();
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
        let p_mod: Vec<u64> = ntt.iter().map(|t| special % t.p.q).collect();
        let p_inv = ntt
            .iter()
            .zip(&p_mod)
            .map(|(t, &m)| {
                let w = t.p.inv(m);
                (w, t.p.shoup(w))
            })
            .collect();
        let galois_perm = (0..pack_bits)
            .map(|l| galois_permutation(&ntt[0], n / (1 << l) + 1))
            .collect();
        let shift_ntt = (0..pack_bits)
            .map(|l| {
                ntt.iter()
                    .flat_map(|t| {
                        let mut x = vec![0u64; n];
                        x[1 << l] = 1;
                        t.forward(&mut x);
                        x.into_iter().map(move |v| (v, t.p.shoup(v)))
                    })
                    .collect()
            })
            .collect();
        let prime_bits = primes.iter().map(|&p| 64 - p.leading_zeros()).collect();
        let ks_bits = ks_primes.iter().map(|&p| 64 - p.leading_zeros()).collect();
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
            pack_bits,
            plain_bits,
            link_mbps: DEFAULT_LINK_MBPS,
            compute_milli: 1000,
            n,
            primes,
            ntt: Arc::new(ntt),
            ks_ntt: Arc::new(ks_ntt),
            c0_bits,
            c1_bits,
            prime_bits,
            ks_bits,
            delta_shoup,
            q_mod_t,
            crt_inv,
            switch_c0,
            switch_c1,
            p_mod,
            p_inv,
            galois_perm,
            shift_ntt,
            dec_primes,
        })
    }

    /// The same parameters with the block planner tuned for a link of `mbps` Mbit/s (1..=100000);
    /// both parties must use the same value (it is part of the fingerprint).
    pub fn with_link_mbps(mut self, mbps: u32) -> Result<Self, HeError> {
        if !(1..=100_000).contains(&mbps) {
            return Err(HeError::Params(format!(
                "link speed {mbps} Mbit/s not in 1..=100000"
            )));
        }
        self.link_mbps = mbps;
        Ok(self)
    }

    /// Link speed (Mbit/s) the block planner optimises for.
    pub fn link_mbps(&self) -> u32 {
        self.link_mbps
    }

    /// The same parameters with the planner's compute constants scaled by `milli`/1000 (the
    /// host's measured HE speed relative to the reference machine, see [`crate::measure_compute_milli`]);
    /// both parties must use the same value (it is part of the fingerprint).
    pub fn with_compute_milli(mut self, milli: u32) -> Result<Self, HeError> {
        if !(10..=100_000).contains(&milli) {
            return Err(HeError::Params(format!(
                "HE compute scale {milli}/1000 not in 10..=100000"
            )));
        }
        self.compute_milli = milli;
        Ok(self)
    }

    /// The planner's compute scale, in thousandths.
    pub fn compute_milli(&self) -> u32 {
        self.compute_milli
    }

    /// Share ring exponent k (t = 2^k).
    pub fn ring_bits(&self) -> u32 {
        self.ring_bits
    }

    /// Packing exponent L (replies merge up to 2^L products).
    pub fn pack_bits(&self) -> u32 {
        self.pack_bits
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
        h.u64(self.pack_bits as u64);
        h.u64(self.link_mbps as u64);
        h.u64(self.compute_milli as u64);
        h.u64(self.n as u64);
        for &p in self.primes.iter().chain(self.ks_ntt.iter().map(|t| &t.p.q)) {
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

    /// Galois elements of the packing tree: level l (shift 2^l) uses N/2^l + 1.
    pub(crate) fn galois_elements(&self) -> Vec<usize> {
        (0..self.pack_bits).map(|l| self.n / (1 << l) + 1).collect()
    }
}

/// The NTT-slot permutation of τ_g: NTT(τ_g(a))[i] = NTT(a)[perm[i]], found by matching
/// NTT(X^g) against NTT(X) (slot i holds ζ_i, the slots' evaluation points are distinct).
fn galois_permutation(t: &NttTable, g: usize) -> Vec<u32> {
    let n = POLY_DEGREE;
    let mut x = vec![0u64; n];
    x[1] = 1;
    t.forward(&mut x);
    let mut xg = vec![0u64; n];
    let k = g % (2 * n);
    if k < n {
        xg[k] = 1;
    } else {
        xg[k - n] = t.p.q - 1;
    }
    t.forward(&mut xg);
    let slot: std::collections::HashMap<u64, u32> =
        x.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
    xg.iter().map(|v| slot[v]).collect()
}

/// Distinct primes of the given sizes, 1 mod 2N, from SEAL.
fn seal_primes(sizes: &[i32]) -> Result<Vec<u64>, HeError> {
    use sealy::{CoefficientModulusFactory, DegreeType};
    let seal = |e: sealy::Error| HeError::Seal(e.to_string());
    let moduli = CoefficientModulusFactory::build(DegreeType::D8192, sizes).map_err(seal)?;
    Ok(moduli.iter().map(|m| m.value()).collect())
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
