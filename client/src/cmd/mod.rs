//! One module per way of running the client.

pub mod infer;
pub mod preprocess;
pub mod run;
pub mod status;
