//! The commands, each a thin file over [`crate::job`], [`crate::store`] and [`crate::run`]:
//! `import-api`, `load-historical`, `archive`, `export` and `sync`, and `--dry-run`.

pub mod archive;
mod dry_run;
pub mod export;
pub mod import_api;
pub mod load_historical;
pub mod sync;

use crate::job::Job;
use crate::model::Feed;
use crate::run::now_ns;
use crate::source::alpaca::Request;
use crate::time::NANOS_PER_SEC;

/// Up to when the API has data for the job: now, or for feed sip `--sip-delay` minutes
/// before now (Alpaca's free plan refuses the last 15 minutes of SIP data).
pub(crate) fn data_until(job: &Job) -> i64 {
    let (now, settings) = (now_ns(), &job.settings);
    let delay = settings.sip_delay_minutes as i64;
    match settings.feed {
        Feed::Sip => now - delay * 60 * NANOS_PER_SEC,
        _ => now,
    }
}

/// The request of `job`'s dataset: `--symbols-per-request` (when not auto) from its
/// settings, corporate actions' `--types` from the job.
pub(crate) fn request_of(job: &Job) -> Request {
    let mut req = Request::for_dataset(job.dataset);
    if let Some(n) = job.settings.symbols_per_request {
        req.symbols_per_request = n;
    }
    if let Some(types) = &job.action_types {
        req.extra.push(("types", types.clone()));
    }
    req
}
