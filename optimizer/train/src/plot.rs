//! The accuracy/ReLU and accuracy/latency picture of a family of networks (e.g. the ones
//! Algorithm 2 derives from one base), as an SVG (plotters, no system fonts needed).

use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One trained network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlotPoint {
    /// Short name shown next to the point (`Net`, `Net_C`, `HRN-2x5x3x`, ...).
    pub label: String,
    /// ReLU count.
    pub relus: u64,
    /// MAC count.
    pub macs: u64,
    /// Test accuracy, percent.
    pub accuracy: f64,
    /// Estimated (or measured) private-inference latency in seconds.
    pub latency_s: f64,
}

/// The cost model of the latency axis: ReLUs × µs/ReLU + MACs × ns/MAC (the same defaults as
/// `pi-opt`'s measured cost model, `optimizer::cost`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Microseconds per ReLU.
    pub us_per_relu: f64,
    /// Nanoseconds per MAC.
    pub ns_per_mac: f64,
}

impl Default for Cost {
    fn default() -> Self {
        Cost {
            us_per_relu: 16.0,
            ns_per_mac: 20.0,
        }
    }
}

impl Cost {
    /// Estimated seconds for a network.
    pub fn seconds(&self, relus: u64, macs: u64) -> f64 {
        relus as f64 * self.us_per_relu * 1e-6 + macs as f64 * self.ns_per_mac * 1e-9
    }
}

fn range(v: impl Iterator<Item = f64> + Clone, pad: f64) -> (f64, f64) {
    let lo = v.clone().fold(f64::INFINITY, f64::min);
    let hi = v.fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(hi.abs() * 0.1).max(1e-6);
    (lo - span * pad, hi + span * pad)
}

/// Draw accuracy vs ReLUs (left) and accuracy vs latency (right) into an SVG file.
pub fn plot(points: &[PlotPoint], path: &Path, title: &str) -> Result<()> {
    if points.is_empty() {
        return Err(Error::Plot("no points to plot".into()));
    }
    if path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.eq_ignore_ascii_case("svg"))
        != Some(true)
    {
        return Err(Error::Plot(format!(
            "{}: only .svg output is supported",
            path.display()
        )));
    }
    let e = |err: String| Error::Plot(format!("{}: {err}", path.display()));
    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|x| e(x.to_string()))?;
    let panels = root.split_evenly((1, 2));
    let (alo, ahi) = range(points.iter().map(|p| p.accuracy), 0.15);
    let mut sorted = points.to_vec();
    type Axis = (&'static str, fn(&PlotPoint) -> f64);
    let axes: [Axis; 2] = [
        ("ReLUs (thousands)", |p| p.relus as f64 / 1000.0),
        ("estimated PI latency (s)", |p| p.latency_s),
    ];
    for (k, (panel, (xlabel, xf))) in panels.iter().zip(axes).enumerate() {
        let (xlo, xhi) = range(points.iter().map(xf), 0.15);
        let mut chart = ChartBuilder::on(panel)
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(xlo..xhi, alo..ahi)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc(xlabel)
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(|x| e(x.to_string()))?;
        sorted.sort_by(|a, b| xf(a).total_cmp(&xf(b)));
        // the ReLU panel joins the family in ReLU order; latency is not monotone in it
        if k == 0 {
            chart
                .draw_series(LineSeries::new(
                    sorted.iter().map(|p| (xf(p), p.accuracy)),
                    BLUE.mix(0.5),
                ))
                .map_err(|x| e(x.to_string()))?;
        }
        chart
            .draw_series(
                sorted
                    .iter()
                    .map(|p| Circle::new((xf(p), p.accuracy), 5, BLUE.filled())),
            )
            .map_err(|x| e(x.to_string()))?;
        // labels right of the point, or left of it in the right third of the panel
        let split = xlo + (xhi - xlo) * 0.66;
        chart
            .draw_series(sorted.iter().map(|p| {
                let x = xf(p);
                let (pos, dx) = if x > split {
                    (Pos::new(HPos::Right, VPos::Top), -6)
                } else {
                    (Pos::new(HPos::Left, VPos::Top), 6)
                };
                let style = ("sans-serif", 13).into_font().color(&BLACK).pos(pos);
                EmptyElement::at((x, p.accuracy))
                    + Text::new(format!("{} ({:.1}%)", p.label, p.accuracy), (dx, 2), style)
            }))
            .map_err(|x| e(x.to_string()))?;
    }
    root.present().map_err(|x| e(x.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_label() {
        let p = std::env::temp_dir().join(format!("pi-train-plot-{}.svg", std::process::id()));
        let c = Cost::default();
        let pts = vec![
            PlotPoint {
                label: "Net".into(),
                relus: 200_000,
                macs: 45_000_000,
                accuracy: 97.0,
                latency_s: c.seconds(200_000, 45_000_000),
            },
            PlotPoint {
                label: "Net_C".into(),
                relus: 60_000,
                macs: 45_000_000,
                accuracy: 95.5,
                latency_s: c.seconds(60_000, 45_000_000),
            },
        ];
        plot(&pts, &p, "test").unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(
            s.starts_with("<svg") && s.contains("Net_C (95.5%)") && s.contains("ReLUs (thousands)")
        );
        assert!(plot(&pts, &p.with_extension("png"), "x").is_err());
        let _ = std::fs::remove_file(p);
    }
}
