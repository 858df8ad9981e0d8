use pi_net::NetError;

/// Errors of a private-inference session.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// Transport failure, oversized or malformed frame.
    #[error(transparent)]
    Net(#[from] NetError),
    /// Garbled-circuit or OT failure.
    #[error("garbled circuits: {0}")]
    Gc(#[from] pi_gc::GcError),
    /// Homomorphic-encryption failure.
    #[error("homomorphic encryption: {0}")]
    He(#[from] pi_he::HeError),
    /// The model or its fixed-point plan is unusable.
    #[error("model: {0}")]
    Model(#[from] models::ModelError),
    /// The peer speaks another protocol version or sent a message out of order.
    #[error("protocol violation: {0}")]
    Violation(String),
    /// All preprocessed material has been used; a new offline phase is required.
    #[error("preprocessing exhausted: {0}")]
    Exhausted(&'static str),
    /// The client's input does not fit the model.
    #[error("bad input: {0}")]
    BadInput(String),
    /// The client's bank (banked sets on disk) failed or holds nothing usable.
    #[error("bank: {0}")]
    Bank(String),
    /// The server refused a banked set's ticket.
    #[error("banked set {set} refused by the server: {reason}")]
    TicketRefused { set: String, reason: String },
    /// The peer reported an error and ended the session.
    #[error("peer aborted: {0}")]
    PeerAborted(String),
}
