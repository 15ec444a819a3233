//! The Alpaca API as a pipeline source: a plan's shards, fetched concurrently
//! ([`super::fetch::stream_shards`]), claimed first when importers share the job.

use super::alpaca::{AlpacaClient, Request};
use super::fetch::stream_shards;
use super::pace::RequestStats;
use crate::job::Job;
use crate::pipeline::ShardClaims;
use crate::resume::Shard;
use crate::run::{Cancel, Feed, Fetched, Source, SourceTask};
use std::sync::Arc;
use std::time::Duration;

/// The API as a pipeline source: the planned shards, fetched concurrently.
pub struct ApiSource {
    client: AlpacaClient,
    req: Request,
    shards: Arc<Vec<Shard>>,
    concurrency: Option<usize>,
    /// `--coordinate`: the shards are claimed before they are fetched.
    claims: Option<Arc<dyn ShardClaims>>,
}

impl ApiSource {
    /// `--concurrency` and `--symbols-per-request` (when not auto) come from the job's
    /// settings, corporate actions' `--types` from the job.
    pub fn new(
        client: AlpacaClient,
        job: &Job,
        shards: Arc<Vec<Shard>>,
        claims: Option<Arc<dyn ShardClaims>>,
    ) -> Self {
        let mut req = Request::for_dataset(job.dataset);
        if let Some(n) = job.settings.symbols_per_request {
            req.symbols_per_request = n;
        }
        if let Some(types) = &job.action_types {
            req.extra.push(("types", types.clone()));
        }
        ApiSource {
            client,
            req,
            shards,
            concurrency: job.settings.concurrency,
            claims,
        }
    }
}

impl Source for ApiSource {
    fn shard_count(&self) -> Option<u64> {
        Some(self.shards.len() as u64)
    }

    fn requests(&self) -> Option<Arc<RequestStats>> {
        Some(self.client.stats())
    }

    /// Coordinated, the other importers wait for this one's done marks: a shard complete
    /// is committed within a quarter second even while the fetchers wait.
    fn idle_commit(&self) -> Option<Duration> {
        self.claims.as_ref().map(|_| Duration::from_millis(250))
    }

    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask {
        tokio::spawn(async move {
            let stats = stream_shards(
                self.client,
                self.req,
                self.shards,
                self.concurrency,
                self.claims,
                tx,
                cancel,
            )
            .await?;
            Ok(Fetched {
                pages: stats.pages,
                rows: stats.rows,
                by_symbol: stats.by_symbol,
                out_of_range: stats.out_of_range,
            })
        })
    }
}
