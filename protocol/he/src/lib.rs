//! BFV linear layers for the offline phase: the client learns L(mask) − s, the server keeps s.
//!
//! Coefficient encoding over Z_q[X]/(X^8192 + 1) with plaintext modulus 2^(k+L): one
//! plaintext–ciphertext product per (input block, output group), no rotations. Products are
//! merged into replies by a PackLWEs-style tree of up to L = 3 automorphism levels (Galois keys,
//! hybrid key switching with a special prime), chosen per layer by a planner that weighs
//! traffic against compute at a link speed both sides agree on. SEAL (via `sealy`) supplies the
//! NTT-friendly primes and its HE-standard 128-bit security check; the ring arithmetic (NTT-form
//! weights prepared once, seeded ciphertexts and keys, key switching, modulus switching to 2^b,
//! partial replies, flooding) is done here in Rust.
//! Parameters, noise analysis and message formats: `docs/protocol.md`, "HE parameters".
//! The NTT runs on AVX-512 IFMA, AVX2 + FMA or scalar code, whichever the CPU has ([`kernel_path`]);
//! `PI_HE_NO_IFMA=1` forces the portable path (AVX2 where present), `PI_HE_NO_SIMD=1` the scalar one.

#![warn(missing_docs)]

mod arith;
mod bfv;
mod client;
mod costs;
mod error;
mod keyswitch;
mod params;
mod reference;
mod sample;
mod server;
mod shape;
#[cfg(test)]
mod tests;
mod wire;

pub use client::{client_linear, ClientHe};
pub use costs::{measure_op_costs, measure_product_stream_ns, HeOpCosts};
pub use error::HeError;
pub use params::{
    HeParams, CBD_ETA, DEFAULT_FLOOD_BITS, DEFAULT_LINK_MBPS, DEFAULT_PACK_BITS,
    DEFAULT_WEIGHT_L1_BITS, MAX_PRIME_BITS, POLY_DEGREE,
};
pub use reference::plain_layer;
pub use server::{
    kernel_bytes, prepare_layer, prepare_layer_with_cache, server_linear, server_linear_seeded,
    server_masks, setup_len, PreparedLayer, ServerHe, PREPARED_CACHE_BYTES,
};
pub use shape::{LinearShape, PlanCost};

use rand_core::SeedableRng;
use shape::{Canon, CostModel, Plan};

pub(crate) const SETUP_MAGIC: u32 = 0x5049_484B; // "PIHK"

/// The block plan both parties derive from the shape and parameters alone.
pub(crate) fn plan_for(params: &HeParams, canon: &Canon) -> Result<Plan, HeError> {
    Plan::choose(canon, params.n, &cost_model(params))
}

/// The cost of `shape`'s HE exchange under `params`, as the block planner counts it (what
/// `pi-opt count` estimates from), its compute at `params`' operation costs with every kernel
/// cached ([`PlanCost::cpu_ns`] and [`PlanCost::wall_ns`] price uncached ones).
pub fn plan_cost(params: &HeParams, shape: &LinearShape) -> Result<PlanCost, HeError> {
    let canon = Canon::new(shape)?;
    let plan = plan_for(params, &canon)?;
    Ok(plan.cost(&canon, &cost_model(params)))
}

/// The planner's exchange rate and wire sizes for `params`.
fn cost_model(params: &HeParams) -> CostModel {
    CostModel {
        in_ct_bits: params
            .prime_bits
            .iter()
            .map(|&b| (b as usize * params.n) as f64)
            .sum::<f64>()
            + 256.0,
        c1_bits: params.c1_bits as f64,
        c0_bits: params.c0_bits as f64,
        max_d: 1 << params.pack_bits,
        bytes_per_ns: params.link_mbps as f64 / 8000.0,
        ops: params.op_costs,
    }
}

/// Key generation (encryption and Galois keys) at the default parameters on the development
/// machine (AMD EPYC, IFMA kernels), nanoseconds.
const REFERENCE_KEYGEN_NS: f64 = 16_000_000.0;

/// This host's HE speed relative to the development machine, in thousandths: the fastest of six
/// key generations at the default parameters (≈ 0.1–0.3 s). A one-number summary for logs; the
/// planner weighs each operation's measured cost ([`measure_op_costs`]).
pub fn measure_compute_milli() -> Result<u32, HeError> {
    let params = HeParams::for_ring(52)?;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x5049);
    let mut best = f64::MAX;
    for _ in 0..6 {
        let t = std::time::Instant::now();
        let c = ClientHe::new(&params, &mut rng)?;
        best = best.min(t.elapsed().as_nanos() as f64);
        drop(c);
    }
    Ok(((best / REFERENCE_KEYGEN_NS) * 1000.0)
        .round()
        .clamp(10.0, 100_000.0) as u32)
}

/// The arithmetic kernels this process runs: `"ifma"`, `"avx2"` or `"scalar"` (figures should name it).
pub fn kernel_path() -> &'static str {
    arith::SimdPath::detect(1 << 49).name()
}

/// The CPU model as the kernel names it (`/proc/cpuinfo`: model name, family, model), for figures
/// and host-cost caches; `None` where the kernel does not say.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    let name = field("model name")?;
    // Virtual machines often name only the brand ("AMD EPYC"): the family and model tell the
    // generation (family 25: Zen 3/4, 26: Zen 5; 6: Intel Core/Xeon).
    Some(match (field("cpu family"), field("model")) {
        (Some(f), Some(m)) => format!("{name} (family {f}, model {m})"),
        _ => name,
    })
}

/// One revealed output of a reply: product j of the pack group, its Y index, the output element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Revealed {
    pub j: usize,
    pub y: usize,
    pub out: usize,
}

/// Revealed outputs of reply ciphertext (tile t, pack group pg), in wire order; output (j, y)
/// sits at coefficient d·y + j of the packed reply.
pub(crate) fn revealed(canon: &Canon, plan: &Plan, t: usize, pg: usize) -> Vec<Revealed> {
    let tile = &plan.tiles[t];
    let cfg = &plan.cfgs[tile.cfg];
    let mut v = Vec::with_capacity(cfg.d * cfg.mw * tile.rows * canon.wout);
    for j in 0..cfg.d {
        let mg = pg * cfg.d + j;
        for m in 0..cfg.mw {
            let o = mg * cfg.mw + m;
            if o >= canon.cout {
                break;
            }
            for y in 0..tile.rows {
                for x in 0..canon.wout {
                    v.push(Revealed {
                        j,
                        y: cfg.out_y(plan, m, y, x),
                        out: (o * canon.hout + tile.y0 + y) * canon.wout + x,
                    });
                }
            }
        }
    }
    v
}

/// Bytes on the wire of one layer's exchange, from the block plan both sides derive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LayerTraffic {
    /// Client → server: the request header and every input ciphertext (payload bytes).
    pub request_bytes: u64,
    /// Server → client: the reply header and every reply ciphertext (payload bytes).
    pub reply_bytes: u64,
    /// Frames client → server.
    pub request_frames: u64,
    /// Frames server → client.
    pub reply_frames: u64,
    /// The largest single frame client → server.
    pub max_request_frame: usize,
    /// The largest single frame server → client.
    pub max_reply_frame: usize,
}

/// What one layer's exchange puts on the wire (exact payload sizes; frame headers excluded).
pub fn layer_traffic(params: &HeParams, shape: &LinearShape) -> Result<LayerTraffic, HeError> {
    let c = Canon::new(shape)?;
    let p = plan_for(params, &c)?;
    let n = params.n;
    let ct = 32
        + params
            .prime_bits
            .iter()
            .map(|&b| wire::packed_len(n, b))
            .sum::<usize>();
    // bincode fixint sizes of LayerRequest and LayerReply.
    let (req_hdr, reply_hdr) = (4 + 8 + 8 + 8 + 4, 4 + 4);
    let mut t = LayerTraffic {
        request_bytes: (req_hdr + p.num_inputs() * ct) as u64,
        request_frames: 1 + p.num_inputs() as u64,
        max_request_frame: if p.num_inputs() > 0 { ct } else { req_hdr },
        reply_bytes: reply_hdr as u64,
        reply_frames: 1 + p.num_outputs() as u64,
        max_reply_frame: reply_hdr,
    };
    for (ti, tile) in p.tiles.iter().enumerate() {
        for pg in 0..p.cfgs[tile.cfg].n_pack {
            let rev = revealed(&c, &p, ti, pg).len();
            let len = wire::packed_len(n, params.c1_bits) + wire::packed_len(rev, params.c0_bits);
            t.reply_bytes += len as u64;
            t.max_reply_frame = t.max_reply_frame.max(len);
        }
    }
    Ok(t)
}

/// Block plan summary of a layer: (input ciphertexts, reply ciphertexts, largest packing factor).
pub fn plan_summary(
    params: &HeParams,
    shape: &LinearShape,
) -> Result<(usize, usize, usize), HeError> {
    let c = Canon::new(shape)?;
    let p = plan_for(params, &c)?;
    let d = p.cfgs.iter().map(|c| c.d).max().unwrap_or(1);
    Ok((p.num_inputs(), p.num_outputs(), d))
}
