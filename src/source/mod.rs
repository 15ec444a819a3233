//! Sources: where rows come from. `alpaca` pages through the Alpaca Market Data API;
//! `retry` is the one place that decides whether and when a failed request is retried;
//! `pace` spaces requests to the plan's rate limit and counts them.

pub mod actions;
pub mod adapt;
pub mod alpaca;
pub mod claims;
pub mod contracts;
pub mod fetch;
pub mod gzip;
pub mod json;
pub mod pace;
pub mod page;
pub mod parquet;
pub mod response;
pub mod retry;
