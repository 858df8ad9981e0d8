//! Network design for ReLU-lean private inference.
