//! The Parquet store: one Parquet file per symbol and unit (a New York trading day, or a
//! month for bars) under a folder or a bucket. `location` is where it lives (a local folder
//! or s3://, gs://, az://), `writer` the pipeline sink that publishes each unit's file
//! atomically, `reader` the pipeline source that reads them back.

mod cloud;
pub mod face;
pub mod layout;
pub mod location;
pub mod reader;
pub mod writer;
