//! Sinks: where committed batches land. Each implements `pipeline::Sink` and commits a
//! batch atomically; adding a store means adding a module here, not a new pipeline.

pub mod database;
pub mod parquet;
pub mod postgres;
pub mod sqlite;

/// Whether another process with this pid is running (Linux: /proc). Unknown means "not
/// running", so a leftover record or temp file can never block clean-up for good.
pub fn process_alive(pid: i64) -> bool {
    pid > 0
        && pid as u32 != std::process::id()
        && std::path::Path::new(&format!("/proc/{pid}")).exists()
}
