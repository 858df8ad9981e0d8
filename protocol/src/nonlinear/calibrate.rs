//! A short measurement of both ReLU protocols on this host (both parties in-process over
//! loopback TCP, one thread each), from which `auto` weighs compute against the link.

use std::thread;
use std::time::Instant;

use pi_gc::ReluParams;
use pi_net::TcpChannel;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::ReluCosts;
use crate::ProtocolError;

/// Wall seconds of `server` and `client` run against each other on two threads over loopback
/// TCP (the time from the first message to the last). A side that fails closes its end, so the
/// other one ends too.
fn pair_seconds(
    server: impl FnOnce(&mut TcpChannel) -> Result<(), ProtocolError> + Send,
    client: impl FnOnce(&mut TcpChannel) -> Result<(), ProtocolError>,
) -> Result<f64, ProtocolError> {
    let (mut s, mut c) = pi_net::loopback_pair().map_err(pi_net::NetError::from)?;
    let t = Instant::now();
    thread::scope(move |sc| -> Result<(), ProtocolError> {
        let h = sc.spawn(move || server(&mut s));
        let mine = client(&mut c);
        drop(c);
        let theirs = h
            .join()
            .map_err(|_| ProtocolError::Violation("calibration thread panicked".into()))?;
        mine.and(theirs)
    })?;
    Ok(t.elapsed().as_secs_f64())
}

fn gc_seconds(n: usize) -> Result<f64, ProtocolError> {
    let params = vec![pi_gc::CircuitSpec::Relu(ReluParams::DEFAULT); n];
    let inputs = [5u64, 7u64].repeat(n);
    let a = vec![3u64; n];
    pair_seconds(
        |s| {
            let mut r = pi_gc::garble_offline(s, &params, &mut ChaCha20Rng::from_entropy())?;
            r.online(s, &a)?;
            Ok(())
        },
        |c| {
            let mut r =
                pi_gc::evaluate_offline(c, &params, &inputs, &mut ChaCha20Rng::from_entropy())?;
            r.online(c, n)?;
            Ok(())
        },
    )
}

fn ot_seconds(n: usize) -> Result<f64, ProtocolError> {
    let params = vec![ReluParams::DEFAULT; n];
    let inputs = vec![(5u64, 7u64); n];
    let a = vec![3u64; n];
    pair_seconds(
        |s| {
            let mut r = pi_ot::server_offline(s, &params, &mut ChaCha20Rng::from_entropy())?;
            r.online(s, &a)?;
            Ok(())
        },
        |c| {
            let mut r =
                pi_ot::client_offline(c, &params, &inputs, &mut ChaCha20Rng::from_entropy())?;
            r.online(c, n)?;
            Ok(())
        },
    )
}

/// Measures both protocols on this host (about a second); `source` names the host.
pub fn measure_relu_costs(source: &str) -> Result<ReluCosts, ProtocolError> {
    let ands = ReluParams::DEFAULT.and_gates() as f64;
    let cots = pi_ot::cost(&ReluParams::DEFAULT).forward_cots as f64;
    let (n1, n2) = (4096usize, 32768usize);
    // Warm-up, then the smaller of two runs of each size (less noise from other load).
    gc_seconds(512)?;
    ot_seconds(512)?;
    let best = |f: &dyn Fn(usize) -> Result<f64, ProtocolError>,
                n: usize|
     -> Result<f64, ProtocolError> { Ok(f(n)?.min(f(n)?)) };
    let g = best(&gc_seconds, n2)?;
    let (o1, o2) = (best(&ot_seconds, n1)?, best(&ot_seconds, n2)?);
    let marginal = ((o2 - o1) / (n2 - n1) as f64).max(1e-9);
    Ok(ReluCosts {
        gc_us_per_and: g * 1e6 / (n2 as f64 * ands),
        ot_us_per_cot: marginal * 1e6 / cots,
        ot_session_us: ((o1 - marginal * n1 as f64) * 1e6).max(0.0),
        source: source.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protocols_run_to_the_end_and_are_timed() {
        for seconds in [gc_seconds, ot_seconds] {
            let t = seconds(64).expect("a calibration run");
            assert!(t > 0.0 && t < 60.0, "{t} s");
        }
    }
}
