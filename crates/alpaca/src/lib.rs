//! The Alpaca source (the crate `data-alpaca`, re-exported as `data::source`): `alpaca` is the
//! client (credentials, each dataset's request, one page with retries), `fetch` streams a
//! plan's shards through it, `pace` and `adapt` keep to the plan's rate limit and choose
//! how many requests are in flight, `page`/`json`/`response` decode a page straight into
//! column builders, and `api` is the API as a `pipeline::Source`. It depends on the core
//! only: it knows no store, command or CLI.

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
