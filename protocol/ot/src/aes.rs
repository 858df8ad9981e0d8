//! AES-128 with a VAES / AES-NI fast path, the CCR hashes and the PRG built on it; shared with
//! SoftSpoken in `pi-gc` (`pi_gc::ot::aes`).

pub use pi_gc::ot::aes::*;
