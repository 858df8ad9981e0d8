//! Garbled circuits and oblivious transfer for private ReLUs.
