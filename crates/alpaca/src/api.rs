//! The Alpaca API as a pipeline source: a plan's shards, fetched concurrently
//! ([`super::fetch::stream_shards`]), claimed first when importers share the job.

use super::alpaca::{AlpacaClient, Request};
use super::fetch::stream_shards;
use super::pace::RequestStats;
use data_core::pipeline::ShardClaims;
use data_core::pipeline::{Cancel, Feed, Fetched, Source, SourceTask};
use data_core::resume::Shard;
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
    /// The shards of a plan, asked with `req` (the dataset's request, as the job narrowed
    /// it), `concurrency` requests in flight (`None`: adaptive), claimed first through
    /// `claims` when importers share the job.
    pub fn new(
        client: AlpacaClient,
        req: Request,
        shards: Arc<Vec<Shard>>,
        concurrency: Option<usize>,
        claims: Option<Arc<dyn ShardClaims>>,
    ) -> Self {
        ApiSource {
            client,
            req,
            shards,
            concurrency,
            claims,
        }
    }
}

impl Source for ApiSource {
    fn rerun_helps(error: &anyhow::Error) -> bool {
        !error.chain().any(|c| {
            c.downcast_ref::<crate::response::ApiError>()
                .is_some_and(|a| !a.rerun_helps())
        })
    }

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
