//! The Parquet store (the crate `data-parquet`, re-exported as `data::store::parquet`): one
//! Parquet file per symbol and unit (a New York trading day, or a month for bars) under a
//! folder or a bucket. `face` is its [`data_job::store::Store`], `layout` where each
//! dataset's files go, `location` where the store lives (a local folder or s3://, gs://,
//! az://: the crate `data-storage`), `writer` the pipeline sink that publishes each unit's
//! file atomically, `reader` reads them back (`source`: as a pipeline source), and `claims` the
//! bucket's claims for `--coordinate`. It knows no other store, no source and no command.

pub mod claims;
pub mod face;
pub mod layout;
pub mod reader;
pub mod source;
pub mod writer;

pub use data_storage::location;
