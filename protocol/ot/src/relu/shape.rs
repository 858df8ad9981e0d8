//! The per-parameter structure of the OT ReLU: ripple steps, mux ring, which parts exist.

use pi_gc::ReluParams;

/// Derived constants of one ReLU parameter set (docs/protocol.md, "OT-based ReLU").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// w: input share bits.
    pub w: u32,
    /// F: truncation shift.
    pub f: u32,
    /// k: output ring bits.
    pub k: u32,
    /// Ripple steps 1..=j use a bit triple each (step 0 uses one ROT); j = w − 2.
    pub j: u32,
    /// Mux ring bits m = min(w − F, k).
    pub m: u32,
    /// Whether the mux result is lifted from Z_2^m to Z_2^k (m < k).
    pub lift: bool,
    /// Whether the low-bit carry c_F exists (F ≥ 1).
    pub has_f: bool,
    /// w − 1 − F = 0: the truncated positive range is empty, the output is n = −r.
    pub trivial: bool,
}

impl Shape {
    /// The shape of validated parameters.
    pub(crate) fn new(p: &ReluParams) -> Self {
        let (w, f, k) = (p.in_bits, p.shift, p.out_bits);
        let trivial = w < f + 2;
        let m = (w.saturating_sub(f)).min(k);
        Shape {
            w,
            f,
            k,
            j: w.saturating_sub(2),
            m,
            lift: !trivial && m < k,
            has_f: !trivial && f >= 1,
            trivial,
        }
    }

    /// Forward (server → client) COTs one ReLU consumes.
    pub(crate) fn forward_cots(&self) -> usize {
        if self.trivial {
            0
        } else {
            1 + 2 * self.j as usize + self.has_f as usize + 1 + self.lift as usize
        }
    }

    /// Reverse (client → server) COTs one ReLU consumes.
    pub(crate) fn reverse_cots(&self) -> usize {
        usize::from(!self.trivial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shape() {
        let s = Shape::new(&ReluParams::DEFAULT);
        assert_eq!(
            (s.j, s.m, s.lift, s.has_f, s.trivial),
            (25, 19, true, true, false)
        );
        assert_eq!(s.forward_cots(), 1 + 50 + 1 + 1 + 1);
        let t = Shape::new(&ReluParams::new(27, 26, 52).unwrap());
        assert!(t.trivial);
        assert_eq!(t.forward_cots() + t.reverse_cots(), 0);
        let small_k = Shape::new(&ReluParams::new(40, 0, 20).unwrap());
        assert_eq!((small_k.m, small_k.lift, small_k.has_f), (20, false, false));
    }
}
