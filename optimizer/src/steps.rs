//! Coarse-grained ReLU-optimization steps on an [`Arch`]: culling, thinning, channel scaling and
//! ReLU-reuse (DeepReDuce, DeepReShape Algorithm 2).
//!
//! Stages are numbered from 1; the stem belongs to Stage 1 (as in the paper's tables), so culling or
//! thinning S1 also removes the stem ReLU.
//!
//! *Thin* removes the ReLU after the first convolution of every block (and the stem ReLU in S1) and
//! keeps the post-add ReLU: one ReLU layer in two. This is what the paper's ReLU columns imply: a
//! thinned Stage 1 of ResNet-18 keeps 2 of its 5 ReLU layers (HRN-5x5x3x: 163.3K), and the MACs of
//! the ReLU-reuse rows only fit when reuse replaces square convolutions (the second conv of a block).

use crate::arch::Arch;
use crate::error::OptError;

/// Parses one stage name: `S3`, `s3`, `stage3` or `3`; returns the 0-based index.
pub fn parse_stage(name: &str, stages: usize) -> Result<usize, OptError> {
    let t = name.trim().to_ascii_lowercase();
    let digits = t
        .strip_prefix("stage")
        .or_else(|| t.strip_prefix('s'))
        .unwrap_or(&t);
    match digits.parse::<usize>() {
        Ok(n) if n >= 1 && n <= stages => Ok(n - 1),
        _ => Err(OptError::BadStage(name.to_string(), stages)),
    }
}

/// Parses a list of stage names separated by `,` or `+` (`S2,S3,S4`, `S2+S3+S4`); sorted, unique.
pub fn parse_stages(list: &str, stages: usize) -> Result<Vec<usize>, OptError> {
    let mut out = Vec::new();
    for part in list
        .split([',', '+'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let i = parse_stage(part, stages)?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// `S2+S3+S4` for 0-based indices [1, 2, 3].
pub fn stage_list(stages: &[usize]) -> String {
    stages
        .iter()
        .map(|i| format!("S{}", i + 1))
        .collect::<Vec<_>>()
        .join("+")
}

fn check(arch: &Arch, stages: &[usize]) -> Result<(), OptError> {
    match stages.iter().find(|&&i| i >= arch.stages.len()) {
        Some(&i) => Err(OptError::BadStage(format!("S{}", i + 1), arch.stages.len())),
        None => Ok(()),
    }
}

/// Removes every ReLU of the given stages (ReLU culling); S1 includes the stem.
pub fn cull(arch: &Arch, stages: &[usize]) -> Result<Arch, OptError> {
    check(arch, stages)?;
    let mut a = arch.clone();
    for &i in stages {
        let s = &mut a.stages[i];
        s.relu1 = false;
        s.relu2 = false;
        s.reuse = None;
        s.projection_skip_relu = false;
        s.identity_skip_relu = false;
        if i == 0 {
            a.stem_relu = false;
        }
    }
    if !stages.is_empty() {
        a.steps.push(format!("cull {}", stage_list(stages)));
    }
    Ok(a)
}

/// Removes the ReLUs of alternate layers in the given stages (ReLU thinning): the ReLU after each
/// block's first convolution, and the stem ReLU when S1 is thinned.
pub fn thin(arch: &Arch, stages: &[usize]) -> Result<Arch, OptError> {
    check(arch, stages)?;
    let mut a = arch.clone();
    for &i in stages {
        a.stages[i].relu1 = false;
        if i == 0 {
            a.stem_relu = false;
        }
    }
    if !stages.is_empty() {
        a.steps.push(format!("thin {}", stage_list(stages)));
    }
    Ok(a)
}

/// Scales every channel count (stem and stages) by `factor`, rounding to the nearest integer
/// (at least 1): DeepReDuce's channel scaling, ×0.5 in Algorithm 2.
pub fn scale_channels(arch: &Arch, factor: f64) -> Result<Arch, OptError> {
    if !(factor.is_finite() && factor > 0.0) {
        return Err(OptError::InvalidArch(format!(
            "channel scale must be positive (got {factor})"
        )));
    }
    let sc = |c: usize| ((c as f64 * factor).round() as usize).max(1);
    let mut a = arch.clone();
    a.stem_channels = sc(a.stem_channels);
    for s in &mut a.stages {
        s.channels = sc(s.channels);
    }
    a.steps.push(format!("scale ×{factor}"));
    a.validate()?;
    Ok(a)
}

/// Turns the post-add ReLUs of the given stages into ReLU-reuse sites with factor `n`
/// (only stages that still have post-add ReLUs; culled stages are skipped).
pub fn reuse(arch: &Arch, stages: &[usize], n: usize) -> Result<Arch, OptError> {
    check(arch, stages)?;
    let mut a = arch.clone();
    let mut applied = Vec::new();
    for &i in stages {
        if a.stages[i].relu2 {
            a.stages[i].reuse = Some(n);
            applied.push(i);
        }
    }
    if applied.is_empty() {
        return Err(OptError::InvalidArch(
            "ReLU-reuse needs at least one stage with ReLUs".into(),
        ));
    }
    a.steps.push(format!("reuse {n} {}", stage_list(&applied)));
    a.validate()?;
    Ok(a)
}

/// Stages that still have post-add ReLUs (candidates for ReLU-reuse).
pub fn stages_with_relus(arch: &Arch) -> Vec<usize> {
    (0..arch.stages.len())
        .filter(|&i| arch.stages[i].relu2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stage_names() {
        assert_eq!(parse_stage("S1", 4).unwrap(), 0);
        assert_eq!(parse_stage("stage4", 4).unwrap(), 3);
        assert_eq!(parse_stage("2", 4).unwrap(), 1);
        assert!(parse_stage("S5", 4).is_err());
        assert!(parse_stage("S0", 4).is_err());
        assert!(parse_stage("x", 4).is_err());
        assert_eq!(parse_stages("S4,S2+S3,S2", 4).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn cull_and_thin_stage1_include_the_stem() {
        let a = Arch::hrn(16, &[5, 5, 3], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        let t = thin(&a, &[0]).unwrap();
        assert!(!t.stem_relu);
        assert_eq!(t.count().unwrap().paper_stage_relus()[0], 2 * 16 * 1024);
        let c = cull(&a, &[0]).unwrap();
        assert_eq!(c.count().unwrap().paper_stage_relus()[0], 0);
        assert_eq!(c.steps, vec!["cull S1".to_string()]);
    }

    #[test]
    fn thinning_and_culling_keep_macs() {
        let a = Arch::hrn(16, &[2, 5, 3], &[2, 2, 2, 2], [3, 32, 32], 100).unwrap();
        let b = thin(&cull(&a, &[0]).unwrap(), &[1, 2, 3]).unwrap();
        assert_eq!(a.count().unwrap().macs(), b.count().unwrap().macs());
    }
}
