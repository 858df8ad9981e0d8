use pi_net::NetError;

/// Everything that can go wrong in the HE linear-layer phase.
#[derive(Debug, thiserror::Error)]
pub enum HeError {
    /// The transport failed or a frame did not decode.
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// Parameters were refused (by our bounds or by SEAL's security check).
    #[error("invalid HE parameters: {0}")]
    Params(String),
    /// The layer shape is malformed or outside what the encoder supports.
    #[error("unsupported layer shape: {0}")]
    Shape(String),
    /// Weights or inputs do not match the layer shape.
    #[error("length mismatch: {what} has {got} elements, expected {expected}")]
    Length {
        /// Which argument.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The length the shape requires.
        expected: usize,
    },
    /// The weights are too large for the noise budget of these parameters.
    #[error("weights too large: ℓ1 bound 2^{actual_bits:.1} exceeds the parameter budget 2^{budget_bits}")]
    WeightsTooLarge {
        /// log2 of the largest output-group ℓ1 norm.
        actual_bits: f64,
        /// The parameters' budget (log2).
        budget_bits: u32,
    },
    /// A key, header or ciphertext from the peer failed validation.
    #[error("malformed message from peer: {0}")]
    Malformed(String),
    /// SEAL refused an operation.
    #[error("SEAL: {0}")]
    Seal(String),
}
