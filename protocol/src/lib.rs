//! Offline and online phases of DELPHI-style private inference for any [`models::Model`].
//!
//! Data flows one way: model → [`program`] (what each node needs) → offline material
//! (HE correlations, garbled circuits) → online evaluation → [`report`].
//! The exact semantics (ring, fixed point, truncation, circuits) are in `docs/protocol.md`.

pub mod bank;
pub mod budget;
mod circuit_layer;
pub mod cost;
mod error;
pub mod messages;
pub mod nonlinear;
pub mod plausible;
mod program;
pub mod public_model;
pub mod report;
mod session;
mod shares;

pub use budget::{SessionBudget, SessionLimits};
pub use error::ProtocolError;
pub use messages::SessionMode;
pub use nonlinear::{Link, ReluChoice, ReluCosts, ReluProtocol};
/// The HE arithmetic kernels this process runs (`ifma`, `avx2` or `scalar`).
pub use pi_he::cpu_model;
pub use pi_he::kernel_path as he_kernel_path;
/// This host's HE compute speed relative to the HE planner's reference machine (thousandths).
pub use pi_he::measure_compute_milli as measure_he_compute_milli;
/// Link speed (Mbit/s) the HE block planner assumes unless the server says otherwise.
pub use pi_he::DEFAULT_LINK_MBPS as DEFAULT_HE_LINK_MBPS;
pub use program::{LayerSpan, Program};
pub use public_model::PublicModel;
pub use report::{InferenceReport, OfflineReport, OnlineReport, ReluPhase};
pub use session::client::{
    infer, infer_on, preprocess, preprocess_on, run_client, run_client_on, BankedInference,
    BankedSetReport, ClientMaterial, ClientOptions, PreprocessReport, SessionReport,
};
pub use session::server::{
    serve_channel, serve_channel_with, serve_connection, serve_connection_with, serve_session,
    serve_session_with, Banking, ServeOptions, ServedModel, ServerMaterial, SessionSummary,
    TicketLog, CLOSE_LINGER,
};
