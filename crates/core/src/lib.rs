//! The core of `data`: what every other component speaks. Markets and symbols (`model`),
//! time and the NYSE calendar (`time`, `nyse`), the dataset table and every row's columns
//! (`dataset`), columnar batches (`batch`), the pipeline's chunks, marks, sink and claims
//! faces and the batcher (`pipeline`), transforms (`transform`), shards and saved progress
//! (`resume`), the one retry mechanism (`retry`) and the secrets registry (`secrets`).
//!
//! **Architecture Invariant:** the core depends on no other crate of the workspace; the
//! sources, the stores, the stand-in and the commands depend on it.

pub mod batch;
pub mod dataset;
pub mod model;
pub mod nyse;
pub mod pipeline;
pub mod resume;
pub mod retry;
pub mod secrets;
pub mod time;
pub mod transform;
