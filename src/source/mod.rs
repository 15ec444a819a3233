//! Sources: where rows come from. `alpaca` pages through the Alpaca Market Data API;
//! `pace` spaces requests to the plan's rate limit and counts them.

pub mod actions;
pub mod adapt;
pub mod alpaca;
pub mod api;
pub mod contracts;
pub mod fetch;
pub mod gzip;
pub mod json;
pub mod pace;
pub mod page;
pub mod response;
