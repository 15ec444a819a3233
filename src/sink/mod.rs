//! Sinks: where committed batches land. Each implements `pipeline::Sink` and commits a
//! batch atomically; adding a store means adding a module here, not a new pipeline.

pub mod parquet;
pub mod sqlite;
