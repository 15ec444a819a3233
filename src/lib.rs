//! `data`: bulk importer of historical market data from the Alpaca Market Data API.
//!
//! Shape: `cli` (clap types, exit codes) → `import` (wires one run) → `source::alpaca`
//! (pages into a bounded channel) → `pipeline` (batcher, cancellation) → `sink::sqlite`
//! (one transaction per batch), with `progress` (bar and batch log) watching. `standin` is
//! the offline Alpaca stand-in used by tests, CI and benchmarks.
//!
//! Invariants: the source knows nothing about sinks; a sink commits a batch entirely or not
//! at all; no stage holds more than a few pages; credentials never reach a log or error.

pub mod cli;
pub mod config;
pub mod import;
pub mod model;
pub mod pipeline;
pub mod progress;
pub mod resume;
pub mod sink;
pub mod source;
pub mod standin;
pub mod store;
pub mod time;
pub mod transform;
