//! The database as a [`Store`]: its planning rules (resume positions in `import_progress`,
//! read without a write for a dry run), its import (thinning, `--skip-duplicates`,
//! `--drop-indexes`, PostgreSQL leases for `--coordinate`), what it holds, and its locks.

use super::database::{is_postgres_url, Database};
use super::sink::progress_select;
use super::sqlite::{TableSpec, WriteMode};
use super::{postgres::PgDialect, sqlite::SqliteDialect};
use crate::claims::lease_rows;
use crate::database::database_holdings;
use crate::export::DatabaseRows;
use crate::postgres::lock_in_postgres;
use data_core::dataset::DatasetId;
use data_core::model::Symbol;
use data_core::pipeline::Sink;
use data_core::resume::{Saved, Shard, Tracking};
use data_core::time::DateRange;
use data_core::transform::{Aggregate, Passthrough};
use data_job::config::Settings;
use data_job::job::{usage, Job};
use data_job::lock::{beside, lock_in_file, JobLock};
use data_job::run::{
    pipe, plan, report_symbols, shards_to_fetch, Outcome, ProgressStore, Report, Saves, Source,
    Units,
};
use data_job::store::Holding;
use data_job::store::{Plan, SharedClaims, Store};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The database `--database-url` names: a SQLite file or a PostgreSQL database.
pub struct DatabaseStore {
    settings: Settings,
}

impl DatabaseStore {
    pub fn new(settings: &Settings) -> Self {
        DatabaseStore {
            settings: settings.clone(),
        }
    }

    fn url(&self) -> &str {
        &self.settings.database_url
    }

    /// Whether the database exists (a PostgreSQL server is taken to).
    fn exists(&self) -> anyhow::Result<bool> {
        Ok(is_postgres_url(self.url())
            || super::sqlite::connect_options(self.url())?
                .get_filename()
                .exists())
    }

    /// The SQLite file (`None` for PostgreSQL).
    fn sqlite_file(&self) -> anyhow::Result<Option<PathBuf>> {
        if is_postgres_url(self.url()) {
            return Ok(None);
        }
        let opts = super::sqlite::connect_options(self.url())?;
        Ok(Some(opts.get_filename().to_path_buf()))
    }
}

/// Opens the database named by `settings` for reading and planning, with its feed set.
pub async fn open_quietly(settings: &Settings) -> anyhow::Result<Database> {
    let mut db = Database::open(
        &settings.database_url,
        Duration::from_secs(settings.busy_timeout_secs),
    )
    .await?;
    db.set_feed(settings.feed);
    Ok(db)
}

impl Store for DatabaseStore {
    fn describe(&self) -> String {
        "the database".to_string()
    }

    fn check(&self, job: &Job) -> anyhow::Result<()> {
        if job.coordinate.is_some() && !is_postgres_url(self.url()) {
            return Err(usage(data_job::claims::NOT_SHARED));
        }
        Ok(())
    }

    async fn pending(&self, job: &Job, available: i64, read_only: bool) -> Plan {
        let raw = job.thinning.is_raw();
        match read_only {
            true => {
                let mut db = ReadOnly::open(self.url()).await?;
                shards_to_fetch(job, &mut db, job.range, available, raw).await
            }
            false => {
                let mut db = open_quietly(&self.settings).await?;
                shards_to_fetch(job, &mut db, job.range, available, raw).await
            }
        }
    }

    /// Plans against `import_progress`, then runs with the thinning asked for. Thinned rows
    /// are not the raw stream: a started day of them is fetched again whole.
    async fn import<S, F>(&self, job: &Job, available: i64, source: F) -> anyhow::Result<Outcome>
    where
        S: Source,
        F: FnOnce(Arc<Vec<Shard>>, SharedClaims) -> S,
    {
        let settings = &job.settings;
        let table = job.table();
        let report = Report::new(job, table.name, settings.api_url.clone());
        let target = (table, job.dataset);
        let (mut sink, dropped) = open_database(settings, &report, target, job.range).await?;
        let result = async {
            let names: Vec<&str> = job.symbols.iter().map(Symbol::as_str).collect();
            sink.claim_symbols(&names, job.synthetic).await?;
            let raw = job.thinning.is_raw();
            let Some(shards) = plan(job, &report, &mut sink, job.range, available, raw).await?
            else {
                // Nothing to fetch, but the factors may use bars imported since.
                refresh_adjustments(job, &mut sink).await?;
                return Ok(Outcome::Completed);
            };
            sink.track(Tracking {
                dataset: job.progress_key(),
                shards: shards.clone(),
            });
            let claims = match job.coordinate {
                Some(lease) => {
                    let key = job.progress_key();
                    let claims = lease_rows(self.url(), &key, &shards, lease).await?;
                    claims.announce(shards.len());
                    Some(claims)
                }
                None => None,
            };
            let shared = claims
                .clone()
                .map(|c| c as Arc<dyn data_core::pipeline::ShardClaims>);
            let source = source(shards.clone(), shared);
            let (range, batch, sink) = (job.range, settings.batch_size, &mut sink);
            let (outcome, fetched) = match job.thinning.aggregate_ns {
                None if raw => pipe(&report, range, batch, sink, || Passthrough, source).await?,
                None => {
                    let make = || job.thinning.filters();
                    pipe(&report, range, batch, sink, make, source).await?
                }
                Some(width) => {
                    let make = || Aggregate::new(job.thinning.filters(), width);
                    pipe(&report, range, batch, sink, make, source).await?
                }
            };
            if outcome == Outcome::Completed {
                match &claims {
                    None => report_symbols(&report, &shards, &fetched, range),
                    // Symbols other importers fetched have no rows here: no per-symbol report.
                    Some(c) => c.report_share(shards.len()),
                }
                refresh_adjustments(job, sink).await?;
            }
            Ok(outcome)
        }
        .await;
        close_database(sink, dropped, result).await
    }

    async fn holdings(&self) -> anyhow::Result<Option<Vec<Holding>>> {
        if !self.exists()? {
            return Ok(None);
        }
        let held = database_holdings(&mut open_quietly(&self.settings).await?).await?;
        Ok((!held.is_empty()).then_some(held))
    }

    async fn status(&self) -> anyhow::Result<(Vec<Holding>, Vec<String>)> {
        let busy = Duration::from_secs(self.settings.busy_timeout_secs);
        // Read only: `status` never creates a file, a table or a migration.
        if let Some(mut db) = Database::open_read_only(self.url(), busy).await? {
            return Ok((database_holdings(&mut db).await?, Vec::new()));
        }
        let note = match self.sqlite_file()? {
            None => format!(
                "database {}: holds no tables of data (nothing imported)",
                data_job::config::redact_url(self.url())
            ),
            Some(path) if !path.exists() => format!("database {}: does not exist", path.display()),
            Some(path) => format!(
                "database {}: holds no tables of data (nothing imported)",
                path.display()
            ),
        };
        Ok((Vec::new(), vec![note]))
    }

    /// Beside the SQLite file (`market.db.NAME.lock`); for PostgreSQL, which has no local
    /// file to sit by, beside the log file (`NAME.lock`: one per working folder).
    fn lock_path(&self, name: &str, _inside: bool) -> anyhow::Result<PathBuf> {
        Ok(match self.sqlite_file()? {
            None => beside(self.settings.log_path(), &format!("{name}.lock")),
            Some(db) => {
                let file = format!(
                    "{}.{name}.lock",
                    db.file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("market.db")
                );
                beside(&db, &file)
            }
        })
    }

    /// PostgreSQL: an advisory lock. SQLite: a byte of the database's own lock file, whose
    /// migration byte the sink holds while it migrates the schema.
    async fn lock_job(&self, job: &Job) -> anyhow::Result<JobLock> {
        match self.sqlite_file()? {
            None => lock_in_postgres(job, self.url()).await,
            Some(db) => lock_in_file(job, &super::sqlite::lock_file_of(&db)),
        }
    }

    async fn holds(&self, job: &Job) -> anyhow::Result<bool> {
        if !self.exists()? {
            return Ok(false);
        }
        let mut db = open_quietly(&self.settings).await?;
        let (start, end) = (job.range.start_ns, job.range.end_ns);
        for symbol in &job.symbols {
            let symbol = symbol.as_str();
            if db.holds_rows(&job.dataset, symbol, start, end + 1).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn export<K: Sink>(&self, job: &Job, sink: &mut K) -> anyhow::Result<Outcome> {
        let db = open_quietly(&self.settings).await?;
        let from = format!("the database {}", db.describe());
        let report = Report::new(job, "export", from);
        let source = DatabaseRows {
            db,
            dataset: job.dataset,
            symbols: job.symbols.clone(),
            range: job.range,
        };
        let batch = job.settings.batch_size;
        let (outcome, _) = pipe(&report, job.range, batch, sink, || Passthrough, source).await?;
        Ok(outcome)
    }
}

/// Opens the database for a run into `table`: thinning id, the `--skip-duplicates` range
/// check, `--drop-indexes`, and the opening log line. Returns whether indexes were dropped
/// (so [`close_database`] rebuilds them).
pub async fn open_database(
    settings: &Settings,
    report: &Report,
    (table, dataset): (&'static TableSpec, DatasetId),
    range: DateRange,
) -> anyhow::Result<(Database, bool)> {
    let mut sink = open_quietly(settings).await?;
    sink.set_target(table, dataset);
    if !report.spec.is_empty() {
        sink.set_thinning(&report.spec).await?;
    }
    if settings.skip_duplicates {
        let mut present = Vec::new();
        for symbol in &report.symbols {
            if sink
                .has_rows_in(table, symbol.as_str(), range.start_ns, range.end_ns)
                .await?
            {
                present.push(symbol.as_str());
            }
        }
        if present.is_empty() {
            sink.set_mode(WriteMode::Insert);
        } else {
            tracing::warn!(
                "[DB] --skip-duplicates: {} already holds {} rows in {range}; using upsert instead so nothing is duplicated",
                table.name,
                present.join(",")
            );
        }
    }
    let dropped = if settings.drop_indexes {
        let names = sink.drop_secondary_indexes(table).await?;
        if !names.is_empty() {
            tracing::info!(
                "[DB] dropped index {} for the import; it is rebuilt when the import ends (or by the next command if this one is killed)",
                names.join(", ")
            );
        }
        !names.is_empty()
    } else {
        false
    };
    tracing::info!(
        "[IMPORT] {} {range} from {} into {} table {}, batches of {}, {}",
        report.label(),
        report.from,
        sink.describe(),
        table.name,
        settings.batch_size,
        match sink.mode() {
            WriteMode::Upsert => "upsert",
            WriteMode::Insert => "plain insert",
        }
    );
    Ok((sink, dropped))
}

/// After corporate actions landed in the database: rewrites the split and dividend
/// factors of the job's symbols (what the `*_adjusted_view`s read). Nothing for other
/// datasets.
pub async fn refresh_adjustments(job: &Job, db: &mut Database) -> anyhow::Result<()> {
    if job.dataset != DatasetId::CorporateActions {
        return Ok(());
    }
    let mut total = super::contracts::Factors::default();
    for symbol in &job.symbols {
        let f = db.refresh_factors(symbol.as_str()).await?;
        total.splits += f.splits;
        total.dividends += f.dividends;
        total.without_close += f.without_close;
    }
    tracing::info!(
        target: data_job::progress::SUMMARY,
        "[ADJUST] adjustment factors rewritten for {} symbols: {} splits, {} cash dividends{}",
        job.symbols.len(),
        total.splits,
        total.dividends,
        match total.without_close {
            0 => String::new(),
            n => format!(
                "; {n} dividends left out of dividend_factors: no raw 1Day bar in the week \
                 before their ex-date (import-api bars ... --timeframe 1Day, then import the \
                 actions again)"
            ),
        }
    );
    Ok(())
}

/// Rebuilds dropped indexes whatever the outcome and refreshes the planner's statistics,
/// then returns the outcome.
pub async fn close_database(
    mut sink: Database,
    dropped: bool,
    result: anyhow::Result<Outcome>,
) -> anyhow::Result<Outcome> {
    if dropped {
        let started = Instant::now();
        let names = sink.rebuild_dropped_indexes(false).await.map_err(|e| {
            e.context(
                "the import's rows are committed, but rebuilding the dropped indexes failed; \
                 the next command that opens the database retries it",
            )
        })?;
        tracing::info!(
            "[DB] rebuilt index {} in {:.1}s",
            names.join(", "),
            started.elapsed().as_secs_f64()
        );
    }
    if let Err(e) = sink.refresh_stats().await {
        tracing::warn!("[DB] {e:#}; queries may plan less well until the next import");
    }
    result
}

impl ProgressStore for Database {
    async fn saved(&mut self, dataset: &str, symbol: &Symbol, units: Units) -> Saves {
        let (first, last) = units.into_inner();
        self.load_progress(dataset, symbol.as_str(), first, last)
            .await
    }

    fn done_phrase(&self) -> &'static str {
        "were imported by earlier runs"
    }
}

/// The database's progress, read without writing anything (a dry run): a read-only
/// connection (SQLite) or plain SELECTs (PostgreSQL), with no migration; a database that
/// does not exist, or has no `import_progress` table yet, has no progress.
enum ReadOnly {
    Nothing,
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl ReadOnly {
    async fn open(url: &str) -> anyhow::Result<ReadOnly> {
        if is_postgres_url(url) {
            let mut conn = PgConnection::connect(url).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the database {}: {e}",
                    super::postgres::redacted(url)
                )
            })?;
            let has: Option<String> =
                sqlx::query_scalar("SELECT to_regclass('import_progress')::text")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot read the import progress: {e}"))?;
            return Ok(match has {
                Some(_) => ReadOnly::Postgres(conn),
                None => ReadOnly::Nothing,
            });
        }
        let opts = super::sqlite::connect_options(url)?;
        if !opts.get_filename().exists() {
            return Ok(ReadOnly::Nothing);
        }
        let path = opts.get_filename().display().to_string();
        let mut conn = SqliteConnection::connect_with(&opts.read_only(true))
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the database {path}: {e}"))?;
        let has: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'import_progress'",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the database {path}: {e}"))?;
        Ok(match has {
            0 => ReadOnly::Nothing,
            _ => ReadOnly::Sqlite(conn),
        })
    }
}

impl ProgressStore for ReadOnly {
    async fn saved(&mut self, dataset: &str, symbol: &Symbol, units: Units) -> Saves {
        let (first, last) = (units.start().to_string(), units.end().to_string());
        // The same SELECT on either connection (each its own sqlx type).
        macro_rules! select {
            ($dialect:ty, $conn:expr) => {
                sqlx::query_as(&progress_select::<$dialect>())
                    .bind(dataset)
                    .bind(symbol.as_str())
                    .bind(&first)
                    .bind(&last)
                    .fetch_all($conn)
                    .await
            };
        }
        let rows: Result<Vec<data_core::resume::ProgressRecord>, sqlx::Error> = match self {
            ReadOnly::Nothing => return Ok(Vec::new()),
            ReadOnly::Sqlite(c) => select!(SqliteDialect, c),
            ReadOnly::Postgres(c) => select!(PgDialect, c),
        };
        match rows {
            Ok(rows) => rows.into_iter().map(Saved::from_record).collect(),
            Err(e) => Err(anyhow::anyhow!("cannot read the import progress: {e}")),
        }
    }

    fn done_phrase(&self) -> &'static str {
        "were imported by earlier runs"
    }
}
