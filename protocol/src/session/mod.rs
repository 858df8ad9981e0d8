//! The two parties' state machines: `server` garbles and answers HE queries, `client` evaluates.

pub mod client;
pub mod server;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// A fresh CSPRNG seeded from the operating system.
pub(crate) fn csprng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

/// Seconds since `t`.
pub(crate) fn secs(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}
