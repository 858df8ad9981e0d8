//! Garbled circuits and oblivious transfer for private ReLUs.
//!
//! * [`circuit`]: circuits written once against [`circuit::Builder`], interpreted as plaintext,
//!   gate counter, garbler and evaluator.
//! * [`garble`]: half-gates, free-XOR, point-and-permute over a fixed-key-AES TCCR hash.
//! * [`relu`]: the ReLU circuit for the share ring and its ring-level reference.
//! * [`max`]: the maximum circuit (max pooling with a fused ReLU, ReLU6).
//! * [`spec`]: [`CircuitSpec`], the circuit families behind one type (layout, cost, dispatch).
//! * [`ot`]: Chou–Orlandi base OT and SoftSpoken/IKNP correlated OT extension.
//! * [`session`]: the offline/online protocol (`garble_offline`, `evaluate_offline`, `online`).

pub mod bank;
pub mod block;
pub mod circuit;
#[cfg(test)]
mod collision_tests;
mod error;
pub mod garble;
pub mod max;
pub mod relu;
pub mod spec;
pub mod spill;

pub use error::GcError;
pub use max::{max_circuit, max_reference, MaxParams};
pub use relu::{relu_circuit, relu_edge_cases, relu_reference, ReluParams};
pub use spec::CircuitSpec;
pub use spill::{spill_rates, SpillChunks, SpillPolicy, SpillRates};
mod msg;

/// Whether data-parallel loops should run inline on the calling thread: with a one-thread
/// rayon pool, handing work to the pool would only serialise the two parties of one process
/// (e.g. the benchmark's server and client threads) on that single worker.
pub(crate) fn run_inline() -> bool {
    rayon::current_num_threads() <= 1
}
pub mod ot;
pub mod session;
mod traffic;

pub use bank::{
    offsets_traffic, recv_decode_offsets, ChunkSink, ChunkSource, MemoryChunks, RelusSecrets,
    StoredChunk,
};
pub use session::{
    evaluate_offline, evaluate_offline_into, garble_offline, garble_offline_with, ClientCircuits,
    ClientOffline, ClientRelus, GcStats, OfflineConfig, ServerCircuits, ServerRelus,
};
pub use traffic::{traffic, Flow, GcTraffic};
