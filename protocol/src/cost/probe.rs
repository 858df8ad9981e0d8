//! The session scale of a [`HostModel`]: one real private inference of a small network over
//! loopback on this host, against what the host's micro-benchmarked figures estimate for it.
//!
//! The figures are the best of a few runs of each operation, warm and alone; a session also
//! allocates, misses caches and hands work between the two parties. On the development machine
//! (AMD EPYC Zen 5, quiet) every model of docs/zoo.md measured 8–50% above its unscaled estimate
//! (median 17%), so one factor measured on the host closes most of that gap for all of them.

use std::net::{TcpListener, TcpStream};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use models::fixed::FixedConfig;
use pi_net::Channel;

use super::HostModel;
use crate::{ClientOptions, ServeOptions, ServedModel, SessionLimits};
use crate::{Program, ProtocolError};

/// The scales a probe may measure; beyond them the probe itself went wrong (a machine so loaded
/// that the figures above mean nothing), and a cached host model outside them is measured again.
pub(crate) const SCALE_RANGE: RangeInclusive<f64> = 0.5..=4.0;

/// Measured over estimated wall time of the probe (best of two sessions), clamped to
/// [`SCALE_RANGE`].
pub(crate) fn session_scale(host: &HostModel) -> Result<f64, ProtocolError> {
    // A CIFAR-sized ResNet with two stages (32 and 64 channels), every ReLU garbled: about
    // 0.7 s per session here, large enough that its working set leaves the caches as real
    // models' do (a 16/32-channel probe measured a scale of 1.01–1.06, this one 1.11).
    let mut spec = models::zoo::ResNetSpec::new(vec![1, 1], vec![32, 64], 10, [3, 32, 32]);
    spec.seed = 11;
    spec.bias_std = 0.1;
    let model = spec.build()?;
    let config = FixedConfig::default();
    let unscaled = HostModel {
        session_scale: 1.0,
        ..host.clone()
    };
    let options = ServeOptions {
        he_costs: host.he,
        ..Default::default()
    };
    let served = Arc::new(ServedModel::with_options(model.clone(), config, &options)?);
    let program = Program::for_client(model, config)?.with_he_costs(host.he)?;
    let profile = program.cost_profile(crate::default_kernel_cache_bytes())?;
    let estimate = unscaled.estimate(&profile, u64::MAX).total_seconds;
    let image: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| ((i * 37 % 29) as f32 - 14.0) / 10.0)
        .collect();
    let mut best = f64::MAX;
    for _ in 0..2 {
        best = best.min(one_session(&served, &image)?);
    }
    if !(estimate > 0.0 && best.is_finite()) {
        return Ok(1.0);
    }
    Ok((best / estimate).clamp(*SCALE_RANGE.start(), *SCALE_RANGE.end()))
}

/// Seconds of one private inference over loopback, as the client reports it.
fn one_session(served: &Arc<ServedModel>, image: &[f32]) -> Result<f64, ProtocolError> {
    let io = |e: std::io::Error| ProtocolError::Violation(format!("probe session: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let shape = served.program().input_shape();
    std::thread::scope(|sc| -> Result<f64, ProtocolError> {
        let server = sc.spawn(move || -> Result<(), ProtocolError> {
            let (stream, _) = listener.accept().map_err(io)?;
            stream.set_nodelay(true).map_err(io)?;
            let mut ch = Channel::new(stream.try_clone().map_err(io)?, stream);
            crate::serve_channel(&mut ch, served, &SessionLimits::default())?;
            Ok(())
        });
        let start = Instant::now();
        let stream = TcpStream::connect(addr).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let mut ch = Channel::new(stream.try_clone().map_err(io)?, stream);
        let report = crate::run_client_on(
            &mut ch,
            shape,
            image,
            &ClientOptions::default(),
            &|_, _, _| {},
        );
        drop(ch);
        let wall = start.elapsed().as_secs_f64();
        server
            .join()
            .map_err(|_| ProtocolError::Violation("probe server thread panicked".into()))??;
        let report = report?;
        Ok(report.inferences.first().map_or(wall, |r| r.total_seconds))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_runs_a_real_session_and_gives_a_scale_in_range() {
        let s = session_scale(&HostModel::default()).expect("probe");
        assert!(SCALE_RANGE.contains(&s), "{s}");
    }
}
