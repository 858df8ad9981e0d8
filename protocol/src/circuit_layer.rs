//! A nonlinear node compiled for the protocol: which output elements come from which garbled
//! circuit (and from which input elements), and which are truncated locally.
//!
//! Both parties derive the same [`CircuitLayer`] from the public model. The client builds its
//! circuit input words offline from its (already fixed) input share; the server builds its words
//! online from its share and assembles the outputs. Circuits are numbered in output order.

use models::fixed::Truncation;
use models::Window;
use pi_gc::{CircuitSpec, MaxParams, ReluParams};
use rand::Rng;

use crate::shares::{mask, truncate_client, truncate_server};
use crate::ProtocolError;

/// How the output elements of one nonlinear node are computed.
#[derive(Clone, Debug)]
pub(crate) enum CircuitLayer {
    /// A ReLU (capped or not) on the selected elements; the others are truncated locally.
    Elementwise {
        spec: CircuitSpec,
        /// Per element, whether it goes through a circuit (`None`: all do).
        selected: Option<Vec<bool>>,
        /// Circuits in the layer.
        count: usize,
        /// Local truncation of the unselected elements.
        shift: u32,
    },
    /// One max circuit per output element (channel-major, then window).
    Windows {
        channels: usize,
        /// Input `(h, w)`.
        plane: (usize, usize),
        windows: Vec<Window>,
        /// The spec of each window (windows at a border have fewer elements).
        specs: Vec<CircuitSpec>,
    },
}

impl CircuitLayer {
    /// A ReLU layer: `relu` truncation (shift F, width w), optional cap, ring bits k; `selected`
    /// per element (`None` = every element) with `pass` the local truncation of the others.
    pub(crate) fn relu(
        relu: Truncation,
        cap: Option<u64>,
        bits: u32,
        selected: Option<Vec<bool>>,
        pass: u32,
        len: usize,
    ) -> Result<Self, ProtocolError> {
        let spec = match cap {
            None => CircuitSpec::Relu(ReluParams::new(relu.width, relu.shift, bits)?),
            Some(c) => CircuitSpec::Max(MaxParams::relu_capped(relu.width, relu.shift, bits, c)?),
        };
        let count = selected
            .as_ref()
            .map_or(len, |s| s.iter().filter(|&&b| b).count());
        Ok(CircuitLayer::Elementwise {
            spec,
            selected,
            count,
            shift: pass,
        })
    }

    /// A max-pool layer over `channels` planes of `plane` with the given windows.
    pub(crate) fn windows(
        trunc: Truncation,
        relu: bool,
        cap: Option<u64>,
        bits: u32,
        channels: usize,
        plane: (usize, usize),
        windows: Vec<Window>,
    ) -> Result<Self, ProtocolError> {
        let specs = windows
            .iter()
            .map(|win| {
                let n = u32::try_from(win.len()).unwrap_or(u32::MAX);
                MaxParams::new(n, trunc.width, trunc.shift, bits, relu, cap).map(CircuitSpec::Max)
            })
            .collect::<Result<_, _>>()?;
        Ok(CircuitLayer::Windows {
            channels,
            plane,
            windows,
            specs,
        })
    }

    /// Number of circuits (one per selected element or output element).
    pub(crate) fn circuits(&self) -> usize {
        match self {
            CircuitLayer::Elementwise { count, .. } => *count,
            CircuitLayer::Windows {
                channels, windows, ..
            } => channels * windows.len(),
        }
    }

    /// Appends every circuit's spec, in circuit order.
    pub(crate) fn extend_specs(&self, out: &mut Vec<CircuitSpec>) {
        match self {
            CircuitLayer::Elementwise { spec, count, .. } => {
                out.extend(std::iter::repeat_n(*spec, *count))
            }
            CircuitLayer::Windows {
                channels, specs, ..
            } => {
                for _ in 0..*channels {
                    out.extend_from_slice(specs);
                }
            }
        }
    }

    /// Whether element `i` of an elementwise layer is selected.
    fn is_selected(selected: &Option<Vec<bool>>, i: usize) -> bool {
        selected
            .as_ref()
            .is_none_or(|s| s.get(i).copied().unwrap_or(false))
    }

    /// Calls `f(input element)` for every window element, circuit by circuit (windows only).
    fn for_each_window_input(&self, mut f: impl FnMut(usize)) -> bool {
        let CircuitLayer::Windows {
            channels,
            plane: (h, w),
            windows,
            ..
        } = self
        else {
            return false;
        };
        for ch in 0..*channels {
            let base = ch * h * w;
            for win in windows {
                win.indices(*w).for_each(|i| f(base + i));
            }
        }
        true
    }

    /// The input elements this layer reads, checked against `x`.
    fn check_input(&self, x: &[u64]) -> Result<(), ProtocolError> {
        let need = match self {
            CircuitLayer::Elementwise { selected, .. } => selected.as_ref().map(|s| s.len()),
            CircuitLayer::Windows {
                channels,
                plane: (h, w),
                ..
            } => Some(channels * h * w),
        };
        match need {
            Some(n) if n != x.len() => Err(ProtocolError::Violation(format!(
                "nonlinear layer input has {} values, expected {n}",
                x.len()
            ))),
            _ => Ok(()),
        }
    }

    /// Server, online: its circuit input words (its shares, low w bits) for share `x`.
    pub(crate) fn server_words(&self, x: &[u64]) -> Result<Vec<u64>, ProtocolError> {
        self.check_input(x)?;
        match self {
            CircuitLayer::Elementwise {
                spec,
                selected,
                count,
                ..
            } => {
                let wm = mask(spec.in_bits());
                let mut v = Vec::with_capacity(*count);
                for (i, &a) in x.iter().enumerate() {
                    if Self::is_selected(selected, i) {
                        v.push(a & wm);
                    }
                }
                Ok(v)
            }
            CircuitLayer::Windows { specs, .. } => {
                let wm = mask(specs.first().map_or(1, |s| s.in_bits()));
                let mut v = Vec::new();
                self.for_each_window_input(|i| v.push(x[i] & wm));
                Ok(v)
            }
        }
    }

    /// Client, offline: its circuit input words (its shares, then −r per circuit) and its share
    /// of the layer's output (r for circuit outputs, a local truncation elsewhere).
    pub(crate) fn client_offline(
        &self,
        x: &[u64],
        bits: u32,
        rng: &mut impl Rng,
    ) -> Result<(Vec<u64>, Vec<u64>), ProtocolError> {
        self.check_input(x)?;
        let ring = mask(bits);
        match self {
            CircuitLayer::Elementwise {
                spec,
                selected,
                count,
                shift,
            } => {
                let wm = mask(spec.in_bits());
                let mut words = Vec::with_capacity(2 * count);
                let mut out = Vec::with_capacity(x.len());
                for (i, &b) in x.iter().enumerate() {
                    if Self::is_selected(selected, i) {
                        let r = rng.gen::<u64>() & ring;
                        words.push(b & wm);
                        words.push(r.wrapping_neg() & ring);
                        out.push(r);
                    } else {
                        out.push(truncate_client(b, *shift, bits));
                    }
                }
                Ok((words, out))
            }
            CircuitLayer::Windows {
                channels,
                plane: (h, w),
                windows,
                specs,
            } => {
                let wm = mask(specs.first().map_or(1, |s| s.in_bits()));
                let mut words = Vec::new();
                let mut out = Vec::with_capacity(channels * windows.len());
                for ch in 0..*channels {
                    let base = ch * h * w;
                    for win in windows {
                        win.indices(*w).for_each(|i| words.push(x[base + i] & wm));
                        let r = rng.gen::<u64>() & ring;
                        words.push(r.wrapping_neg() & ring);
                        out.push(r);
                    }
                }
                Ok((words, out))
            }
        }
    }

    /// Server, online: the layer's output share from its input share `x` and the decoded
    /// circuit outputs (in circuit order).
    pub(crate) fn server_assemble(
        &self,
        x: &[u64],
        outs: Vec<u64>,
        bits: u32,
    ) -> Result<Vec<u64>, ProtocolError> {
        if outs.len() != self.circuits() {
            return Err(ProtocolError::Violation(format!(
                "{} circuit outputs for {} circuits",
                outs.len(),
                self.circuits()
            )));
        }
        match self {
            CircuitLayer::Elementwise {
                selected, shift, ..
            } => {
                let mut it = outs.into_iter();
                let mut y = Vec::with_capacity(x.len());
                for (i, &a) in x.iter().enumerate() {
                    y.push(if Self::is_selected(selected, i) {
                        it.next()
                            .ok_or(ProtocolError::Violation("circuit output count".into()))?
                    } else {
                        truncate_server(a, *shift, bits)
                    });
                }
                Ok(y)
            }
            CircuitLayer::Windows { .. } => Ok(outs),
        }
    }
}
