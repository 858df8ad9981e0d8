//! Offline and online phases of private inference for a `models::Model`.
