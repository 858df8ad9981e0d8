//! Silent oblivious transfer and the OT-based ReLU.
//!
//! * [`ferret`]: Ferret correlated OT (primal LPN, regular noise, Half-Tree GGM trees),
//!   bootstrapped from `pi-gc`'s SoftSpoken and then from its own stored outputs.
//! * [`relu`]: the OT-based ReLU, computing exactly `pi_gc::relu_reference`.
//! * [`aes`]: AES-128 with a VAES / AES-NI fast path, the CCR hashes and the PRG built on it.

pub mod aes;
mod error;
pub mod ferret;
mod msg;
pub mod relu;

pub use error::OtError;
pub use ferret::{FerretParams, FerretPlan, FerretReceiver, FerretSender};
pub use relu::{
    client_offline, cost, rekey_traffic, server_offline, traffic, OtReluClient, OtReluCost,
    OtReluServer, OtReluStats, OtTraffic,
};
