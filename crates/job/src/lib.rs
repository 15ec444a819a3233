//! One validated job and how it runs (the crate `data-job`): `args` (the clap types of the
//! commands), `config` (every setting, resolved from flag, environment, file and default),
//! `job` (the arguments turned once into a validated [`job::Job`]), `run` (the one planner
//! and the one run function: source → bounded channel → transforms → batcher → sink),
//! `progress` (the bar, the batch log line, the log file), and `store` (the face every
//! store shows the commands), with `lock` and `claims` that stores share. It sits under the
//! stores and the source's users: it knows no store, no source and no command.

pub mod args;
pub mod claims;
pub mod config;
pub mod job;
pub mod lock;
pub mod progress;
pub mod run;
pub mod store;
