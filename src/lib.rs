//! `data`: bulk importer of historical market data from the Alpaca Market Data API.
//!
//! Shape: `cli` (dispatch, exit codes) over `args` (clap types) → `job` (one validated job)
//! → `commands` (thin command files) → `store::open` (the one place a store is chosen) and
//! its `Store` face → `run` (the one planner and run function) → a source
//! (`source::api` pages, or `store::parquet::reader` files) into the bounded channel of
//! `pipeline` → `transform` → the batcher → a store's sink (`store::sql`: SQLite and
//! PostgreSQL; `store::parquet::writer`; `export`'s CSV, JSON-lines and Parquet writers),
//! with `progress` (bar and batch log) watching.
//! Everything but the CLI, the commands and the choice of a store is a crate of its own
//! under crates/ (the core, where files live, the job and its run, the database, the
//! Parquet store, the Alpaca source, the stand-in), re-exported here under the paths above.
//! `dataset` describes every dataset once, its rows' columns included; rows travel as Arrow
//! batches built from and read through those column lists (`batch`). `standin` is the
//! offline Alpaca stand-in used by tests, CI and benchmarks. ARCHITECTURE.md has the code
//! map; `cargo xtask tidy` checks its rules.
//!
//! Invariants: the source knows nothing about stores; progress commits with the batch it
//! describes; a sink commits a batch entirely or not at all; no stage holds more than a few
//! pages; arguments are validated once (`job`); library code never exits the process (only
//! the second-Ctrl-C handler does); credentials never reach a log or error.

pub mod cli;
pub mod commands;
pub mod coverage;
pub mod export;
pub mod store;

// The library crates (crates/) keep their modules' paths here (`data::time`,
// `crate::dataset`, `data::config`, `data::standin`, `data::store::sql`).
pub use data_alpaca as source;
pub use data_core::{
    batch, dataset, model, nyse, pipeline, resume, retry, secrets, time, transform,
};
pub use data_job::{args, config, job, progress, run};
pub use data_standin as standin;
