//! ReLU optimization for HybReNets (DeepReShape Algorithm 2).
//!
//! 1. If the least-critical stage dominates, cull it (remove all its ReLUs).
//! 2. Thin the remaining stages (`Net_T`).
//! 3. Scale the channels of `Net_T` by 0.5 (`Net_C`).
//! 4. ReLU-reuse with factors 4, 8 and 16 on `Net_T` (`Net_R4`, `Net_R8`, `Net_R16`).
//!
//! Returns `Net` (after culling), `Net_T`, `Net_C`, `Net_R4`, `Net_R8`, `Net_R16`.
//!
//! "Dominates": the least-critical stage has more ReLUs (stem excluded, as in Algorithm 1) than at
//! least one more-critical stage, i.e. ReLU equalization is broken at the bottom. This reproduces
//! every row of Tables 6, 13 and 14: HRNs with α = 2 (ResNet-18 and ResNet-34 based) and the
//! adapted ConvNeXts are culled, HRN-5x5x3x and HRN-4x6x3x are not. (With the stem counted, or
//! with "largest stage" as the rule, one of those rows would come out differently.)

use serde::Serialize;

use crate::arch::Arch;
use crate::error::OptError;
use crate::steps;

/// The ReLU-reuse factors Algorithm 2 tries.
pub const REUSE_FACTORS: [usize; 3] = [4, 8, 16];

/// One network returned by Algorithm 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// `Net`, `Net_T`, `Net_C`, `Net_R4`, `Net_R8` or `Net_R16`.
    pub label: String,
    /// The network.
    pub arch: Arch,
}

/// Whether the least-critical stage (last of `order`, most → least critical) dominates `arch`'s ReLUs.
pub fn least_critical_dominates(arch: &Arch, order: &[usize]) -> Result<bool, OptError> {
    let relus = arch.stage_relus_without_stem()?;
    let Some((&least, more)) = order.split_last() else {
        return Ok(false);
    };
    let get = |i: usize| {
        relus
            .get(i)
            .copied()
            .ok_or_else(|| OptError::BadStage(format!("S{}", i + 1), relus.len()))
    };
    let l = get(least)?;
    for &s in more {
        if l > get(s)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Runs Algorithm 2 on `net` with criticality `order` (most → least critical, 0-based stages).
pub fn optimize(net: &Arch, order: &[usize]) -> Result<Vec<Candidate>, OptError> {
    if order.len() != net.stages.len() {
        return Err(OptError::InvalidProblem(format!(
            "the criticality order names {} stages, the network has {}",
            order.len(),
            net.stages.len()
        )));
    }
    let least = order[order.len() - 1];
    let base = if least_critical_dominates(net, order)? {
        steps::cull(net, &[least])?
    } else {
        net.clone()
    };
    let remaining: Vec<usize> = (0..net.stages.len())
        .filter(|&i| base.stages[i].relu2 || base.stages[i].relu1)
        .collect();
    let thinned = steps::thin(&base, &remaining)?;
    let mut out = vec![
        Candidate {
            label: "Net".into(),
            arch: base,
        },
        Candidate {
            label: "Net_T".into(),
            arch: thinned.clone(),
        },
        Candidate {
            label: "Net_C".into(),
            arch: steps::scale_channels(&thinned, 0.5)?,
        },
    ];
    let reuse_stages = steps::stages_with_relus(&thinned);
    for n in REUSE_FACTORS {
        out.push(Candidate {
            label: format!("Net_R{n}"),
            arch: steps::reuse(&thinned, &reuse_stages, n)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::equalize::parse_order;

    #[test]
    fn hrn_2x5x3x_gives_table6_rows() {
        let order = parse_order("S3,S2,S4,S1", 4).unwrap();
        let net = Arch::hrn(16, &[2, 5, 3], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        let out = optimize(&net, &order).unwrap();
        let relus: Vec<u64> = out
            .iter()
            .map(|c| c.arch.count().unwrap().relus())
            .collect();
        assert_eq!(relus, vec![104_448, 52_224, 26_112, 13_056, 6_528, 3_264]);
        assert_eq!(out[1].arch.steps, vec!["cull S1", "thin S2+S3+S4"]);
    }

    #[test]
    fn equalized_net_is_not_culled() {
        let order = parse_order("S3,S2,S4,S1", 4).unwrap();
        let net = Arch::hrn(16, &[5, 5, 3], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        assert!(!least_critical_dominates(&net, &order).unwrap());
        let out = optimize(&net, &order).unwrap();
        assert_eq!(out[1].arch.count().unwrap().relus(), 163_328);
        assert_eq!(out[1].arch.steps, vec!["thin S1+S2+S3+S4"]);
    }
}
