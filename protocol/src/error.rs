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
    /// OT-based ReLU or silent-OT failure.
    #[error("OT ReLUs: {0}")]
    Ot(#[from] pi_ot::OtError),
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
    /// The result is outside the range the server declared: corrupted or overflowed.
    #[error("implausible result: {0}")]
    Implausible(String),
    /// The peer refused the session or ended it, and said why.
    #[error("the peer ended the session: {0}")]
    PeerAborted(String),
}

impl ProtocolError {
    /// The transport error under this error, whichever layer raised it.
    pub fn net(&self) -> Option<&NetError> {
        match self {
            ProtocolError::Net(e)
            | ProtocolError::Gc(pi_gc::GcError::Net(e))
            | ProtocolError::He(pi_he::HeError::Net(e)) => Some(e),
            _ => None,
        }
    }

    /// This error with a reason the peer sent (an abort frame) brought to the top, so the user
    /// reads the peer's words rather than the layer that happened to be reading.
    pub fn surface_peer_reason(self) -> Self {
        match self.net() {
            Some(NetError::Aborted(r)) => ProtocolError::PeerAborted(r.clone()),
            _ => self,
        }
    }
}
