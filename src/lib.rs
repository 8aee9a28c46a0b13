//! Spanish sentiment analysis (pysentimiento-compatible) on ONNX Runtime, for AWS Lambda.
//!
//! The data path, one module per stage: [`request`] -> [`preprocess`] -> [`tokenize`] -> [`session`] ->
//! [`postprocess`] -> [`handler`]'s response. [`model`] ties the stages to a model directory
//! ([`model_dir`]); [`registry`] is the process-wide place that holds the models (one per task and
//! language, loaded lazily); [`server`], [`cli`] and [`lambda`] are the front doors.

pub mod access;
pub mod bulk;
pub mod cli;
pub mod config;
pub mod error;
pub mod handler;
pub mod lambda;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod model_dir;
pub mod postprocess;
pub mod preprocess;
pub mod registry;
pub mod request;
pub mod request_id;
pub mod server;
pub mod session;
pub mod status;
pub mod tokenize;
pub mod word_labels;
pub mod words;
pub mod work;
