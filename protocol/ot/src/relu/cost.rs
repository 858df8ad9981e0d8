//! Exact traffic and work of one OT ReLU, derived from its parameters (for planners and docs).

use pi_gc::ReluParams;

use super::carry::Schedule;
use super::shape::Shape;

/// What one OT ReLU with given parameters costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtReluCost {
    /// Online bits, both directions (ripple openings, mux corrections, T).
    pub online_bits: u64,
    /// Offline bits beyond the COTs themselves: product corrections and the reverse SoftSpoken.
    pub offline_bits: u64,
    /// Forward (Ferret) COTs.
    pub forward_cots: u64,
    /// Reverse (SoftSpoken k = 8) COTs.
    pub reverse_cots: u64,
    /// Online messages of one layer (alternating, so about half as many round trips).
    pub online_messages: u64,
}

/// The cost of one ReLU with parameters `p` (which must be valid).
pub fn cost(p: &ReluParams) -> OtReluCost {
    let s = Shape::new(p);
    if s.trivial {
        return OtReluCost {
            online_bits: s.k as u64,
            offline_bits: 0,
            forward_cots: 0,
            reverse_cots: 0,
            online_messages: 1,
        };
    }
    let (hf, lift) = (s.has_f as u64, s.lift as u64);
    let (m, k, j) = (s.m as u64, s.k as u64, s.j as u64);
    let ripple = 2 + 4 * j;
    let closing = (1 + hf) + (hf + 1 + m) + (m + lift) + (lift + k);
    let mut sched = Schedule::new(s.j);
    let mut turns = 0u64;
    let mut p = 0;
    while !(sched.done(0) && sched.done(1)) {
        sched.turn(p, |_| {});
        turns += 1;
        p = 1 - p;
    }
    // The turn that finishes the ripple carries the closing X (server) or Y (client, X having
    // ridden on the server's turn before); the remaining closing messages follow.
    let last_was_client = turns.is_multiple_of(2);
    OtReluCost {
        online_bits: ripple + closing,
        offline_bits: hf * m + lift * (k - m) + 16,
        forward_cots: s.forward_cots() as u64,
        reverse_cots: s.reverse_cots() as u64,
        online_messages: turns + if last_was_client { 2 } else { 3 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cost_matches_the_documented_count() {
        let c = cost(&ReluParams::DEFAULT);
        assert_eq!(c.online_bits, 102 + 2 + 21 + 20 + 53);
        assert_eq!(c.offline_bits, 19 + 33 + 16);
        assert_eq!(c.forward_cots, 54);
        assert_eq!(c.online_messages, 30);
    }
}
