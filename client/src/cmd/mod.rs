//! One module per way of running the client.

pub mod run;
