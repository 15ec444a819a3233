//! The integration tests, one binary (it builds and links once): the real `data` binary
//! and the library against the in-process Alpaca stand-in, real SQLite files, and the
//! PostgreSQL server named by `DATA_TEST_POSTGRES_URL`. `cargo test --test it resume` runs
//! one module.

mod common;

mod calendar;
mod cli;
mod concurrency;
mod coordinate;
mod corporate_actions;
mod crypto;
mod decode;
mod export;
mod feeds;
mod hardening;
mod hostile;
mod import;
mod object_store;
mod option_data;
mod options;
mod parquet;
mod pg_auth;
mod postgres;
mod resume;
mod screens;
mod standin;
mod standin_flag;
mod symbols;

mod secrets;
mod sync;
mod terminal;
mod trades_bars;
