//! Primal-LPN parameters of Ferret (regular noise, local linear code with d = 10 nonzeros per row).
//!
//! The four sets are the ones emp-ot ships (`tuning.h`: ferret_b10 … ferret_b13), selected there
//! for ≈128-bit security against the published regular-LPN attacks (Gaussian elimination, ISD,
//! BJMM, the hybrid and "agb2" attacks) with the lpn-estimator. We take them as published; we do
//! not change them. A round consumes `base()` COTs (k for the LPN secret, t·depth for the trees)
//! and produces t·2^depth.

/// One Ferret parameter set: t trees of depth `depth` (t·2^depth outputs), LPN dimension k = 2^log_k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FerretParams {
    /// Number of GGM trees (noise weight t, one noisy position per tree).
    pub t: usize,
    /// log2 of the LPN dimension k.
    pub log_k: u32,
    /// Depth of each tree (2^depth outputs per tree).
    pub depth: u32,
}

/// Nonzeros per row of the local linear code.
pub const LPN_D: usize = 10;

impl FerretParams {
    /// N = 870,400 outputs per round, k = 2^16.
    pub const B10: FerretParams = FerretParams {
        t: 850,
        log_k: 16,
        depth: 10,
    };
    /// N = 2,396,160 outputs per round, k = 2^17.
    pub const B11: FerretParams = FerretParams {
        t: 1170,
        log_k: 17,
        depth: 11,
    };
    /// N = 6,225,920 outputs per round, k = 2^18.
    pub const B12: FerretParams = FerretParams {
        t: 1520,
        log_k: 18,
        depth: 12,
    };
    /// N = 15,564,800 outputs per round, k = 2^19.
    pub const B13: FerretParams = FerretParams {
        t: 1900,
        log_k: 19,
        depth: 13,
    };

    /// Every published set, smallest first.
    pub const ALL: [FerretParams; 4] = [Self::B10, Self::B11, Self::B12, Self::B13];

    /// LPN dimension k.
    pub fn k(&self) -> usize {
        1 << self.log_k
    }

    /// Outputs per tree.
    pub fn leaves(&self) -> usize {
        1 << self.depth
    }

    /// Outputs per round (N = t·2^depth).
    pub fn n(&self) -> usize {
        self.t << self.depth
    }

    /// Base COTs a round consumes (k + t·depth).
    pub fn base(&self) -> usize {
        self.k() + self.t * self.depth as usize
    }

    /// Bytes the OT sender sends per round (one 16-byte correction per tree level).
    pub fn round_bytes(&self) -> usize {
        self.t * self.depth as usize * 16
    }

    /// Checks the set is one of the published ones (no other set is vetted).
    pub fn validate(&self) -> Result<(), crate::OtError> {
        if Self::ALL.contains(self) {
            Ok(())
        } else {
            Err(crate::OtError::InvalidParams(format!(
                "Ferret parameters {self:?} are not one of the vetted sets b10..b13"
            )))
        }
    }
}

/// Which parameter sets a session runs: one bootstrap round of b10 (from SoftSpoken), then rounds
/// of `main` as long as COTs are taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FerretPlan {
    /// The set after the first round.
    pub main: FerretParams,
}

/// SoftSpoken bits per bootstrap COT (k = 8: 128/8).
const BOOT_BITS: usize = 16;

impl FerretPlan {
    /// The plan with the fewest bytes on the wire for `count` COTs (ties: the smaller set).
    pub fn for_count(count: usize) -> FerretPlan {
        let first = FerretParams::B10;
        let mut best = (usize::MAX, FerretParams::B10);
        for main in FerretParams::ALL {
            let b = Self { main }.bytes_for(count);
            if b < best.0 {
                best = (b, main);
            }
        }
        let _ = first;
        FerretPlan { main: best.1 }
    }

    /// Bytes the plan sends to produce `count` COTs (bootstrap, first round, main rounds).
    pub fn bytes_for(&self, count: usize) -> usize {
        let first = FerretParams::B10;
        let boot = first.base() * BOOT_BITS / 8;
        let mut bytes = boot + first.round_bytes();
        let mut have = first.n() - self.main.base();
        while have < count {
            bytes += self.main.round_bytes();
            have += self.main.n() - self.main.base();
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_published_sets() {
        assert_eq!(FerretParams::B10.n(), 870_400);
        assert_eq!(FerretParams::B11.n(), 2_396_160);
        assert_eq!(FerretParams::B12.n(), 6_225_920);
        assert_eq!(FerretParams::B13.n(), 15_564_800);
        assert_eq!(FerretParams::B12.base(), 262_144 + 1520 * 12);
        for p in FerretParams::ALL {
            assert!(p.n() > 2 * p.base());
            p.validate().unwrap();
        }
        assert!(FerretParams {
            t: 10,
            log_k: 10,
            depth: 5
        }
        .validate()
        .is_err());
    }

    #[test]
    fn plan_grows_with_count_and_minimises_bytes() {
        assert_eq!(FerretPlan::for_count(500_000).main, FerretParams::B10);
        let p = FerretPlan::for_count(5_500_000);
        assert_eq!(p.main, FerretParams::B12);
        for main in FerretParams::ALL {
            assert!(FerretPlan { main }.bytes_for(5_500_000) >= p.bytes_for(5_500_000));
        }
        assert_eq!(FerretPlan::for_count(40_000_000).main, FerretParams::B13);
    }
}
