//! Range checks on what enters and leaves the protocol: inputs the fixed-point format can hold,
//! logits within the bound the server declares. A value outside either is an error, never a
//! prediction.
//!
//! Why: the protocol computes in the ring Z_2^k. A value that outgrows the fixed-point format
//! (|x| ≥ 2^M at a ReLU input) wraps around inside the ReLU circuit's w-bit window and comes
//! out as a different, plausible-looking number (the fixed-point reference wraps the same way,
//! so no test against it can notice). Refusing inputs outside |x| < 2^M keeps honest inputs
//! inside the format; the logit bound catches most results that overflowed anyway (a model
//! whose weights push activations past 2^M) and every result corrupted into a uniformly random
//! ring element (such a logit lands inside the bound with probability about 2^(M+s+1−k) ≈ 2^−25).

use models::fixed::FixedConfig;

use crate::ProtocolError;

/// The bound a server declares when it is not told otherwise: 2^M, the magnitude the
/// fixed-point format assumes for every activation.
pub fn default_logit_bound(config: &FixedConfig) -> f32 {
    (1u64 << config.magnitude_bits.min(62)) as f32
}

/// Refuses an input with an element outside |x| < 2^M (or not finite).
pub fn check_input(config: &FixedConfig, image: &[f32]) -> Result<(), ProtocolError> {
    let bound = default_logit_bound(config);
    if let Some((i, x)) = image
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_finite() || x.abs() >= bound)
    {
        return Err(ProtocolError::BadInput(format!(
            "input element {i} is {x}, outside the model's fixed-point range |x| < {bound} \
             (2^{}); normalise the image as the model expects",
            config.magnitude_bits
        )));
    }
    Ok(())
}

/// Refuses logits outside the server's declared bound (or not finite).
pub fn check_logits(logits: &[f32], bound: f32) -> Result<(), ProtocolError> {
    if let Some((i, x)) = logits
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_finite() || x.abs() > bound)
    {
        return Err(ProtocolError::Implausible(format!(
            "logit {i} is {x}, outside the bound ±{bound} the server declared: the session was \
             corrupted or the model overflows its fixed-point range; no prediction is given"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_logits_outside_the_range_are_refused() {
        let c = FixedConfig::default();
        assert!(check_input(&c, &[0.5, -3.0, 1023.9]).is_ok());
        for bad in [1e30f32, -1024.0, f32::NAN, f32::INFINITY] {
            let e = check_input(&c, &[0.0, bad]).unwrap_err();
            assert!(e.to_string().contains("input element 1"), "{e}");
        }
        assert!(check_logits(&[3.5, -1024.0], 1024.0).is_ok());
        let e = check_logits(&[3.5, 4.2e9], 1024.0).unwrap_err();
        assert!(matches!(e, ProtocolError::Implausible(_)), "{e}");
        assert!(check_logits(&[f32::NAN], 1024.0).is_err());
    }
}
