//! `data`: bulk importer of historical market data from the Alpaca Market Data API.
//!
//! Shape: `cli` (dispatch, exit codes) over `args` (clap types) → `job` (one validated job)
//! → `commands` (thin command files) → `store::open` (the one place a store is chosen) and
//! its `Store` face → `run` (the one planner and run function) → a source
//! (`source::api` pages, or `store::parquet::reader` files) into the bounded channel of
//! `pipeline` → `transform` → the batcher → a store's sink (`store::sql`: SQLite and
//! PostgreSQL; `store::parquet::writer`), with `progress` (bar and batch log) watching.
//! `dataset` describes every dataset once, its rows' columns included; rows travel as Arrow
//! batches built from and read through those column lists (`batch`). `standin` is the
//! offline Alpaca stand-in used by tests, CI and benchmarks. ARCHITECTURE.md has the code
//! map; `cargo xtask tidy` checks its rules.
//!
//! Invariants: the source knows nothing about stores; progress commits with the batch it
//! describes; a sink commits a batch entirely or not at all; no stage holds more than a few
//! pages; arguments are validated once (`job`); library code never exits the process (only
//! the second-Ctrl-C handler does); credentials never reach a log or error.

pub mod args;
pub mod cli;
pub mod commands;
pub mod config;
pub mod coverage;
pub mod job;
pub mod progress;
pub mod run;
pub mod store;

// The core and the stand-in are crates of their own (crates/); their modules keep their
// paths here (`data::time`, `crate::dataset`, `data::standin`).
pub use data_alpaca as source;
pub use data_core::{
    batch, dataset, model, nyse, pipeline, resume, retry, secrets, time, transform,
};
pub use data_standin as standin;
