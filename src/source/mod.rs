//! Sources: where rows come from. `alpaca` pages through the Alpaca Market Data API;
//! `retry` is the one place that decides whether and when a failed request is retried.

pub mod alpaca;
pub mod parquet;
pub mod retry;
