//! The one SQL sink, written once over a small [`Dialect`]: SQLite (`sqlite.rs`) and
//! PostgreSQL (`postgres.rs`) differ in placeholders, a few expressions (a New York day,
//! the current time, a date parameter), how indexes are listed and guarded, how errors read,
//! and the bulk write (bound multi-row statements, or binary COPY). Everything else —
//! symbol and thinning ids, progress committed in the batch's transaction, the
//! `--skip-duplicates` range check, `--drop-indexes` with its healing, day counts for
//! `status`, and the reads and deletes of `archive` — is here, once.
//!
//! Statements are written with PostgreSQL's `$n` placeholders; [`Dialect::sql`] turns them
//! into the backend's.

use super::delete_sql;
pub use super::dialect::{Conn, Dialect};
use super::encode::Encoder;
use anyhow::Context;
use arrow_array::{Array, RecordBatch};
use chrono::NaiveDate;
use data_core::batch::{self, Builder, Builders};
use data_core::dataset::{ColumnType, DatasetId, Role, TableSpec};
use data_core::model::Feed;
use data_core::pipeline::Mark;
use data_core::resume::{ProgressRecord, Saved, Tracking};
use sqlx::{
    ColumnIndex, Connection, Database, Decode, Encode, Executor, FromRow, IntoArguments, Row, Type,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// How rows are written: upsert (idempotent), or plain INSERT for a range known to be empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    Upsert,
    Insert,
}

/// The bulk write of one batch, the part each backend does its own way. It must commit the
/// rows and [`SqlSink::commit_progress`] in one transaction.
pub trait BulkWrite: Dialect {
    fn write_rows<'a>(
        sink: &'a mut SqlSink<Self>,
        table: &'static TableSpec,
        rows: Encoder<'a>,
        marks: &'a [Mark],
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'a;
}

/// A database sink: one connection, the backend's dialect, and the import's state.
pub struct SqlSink<D: Dialect> {
    /// Declared (so dropped) before the connection: SQLite's dialect keeps prepared
    /// statements of it, which must be finalized before it closes.
    pub(crate) dialect: D,
    pub(crate) conn: Conn<D>,
    symbol_ids: HashMap<Arc<str>, i64>,
    /// The feed whose rows this sink writes and reads: with the symbol, it names a `symbols`
    /// row (feeds never mix).
    feed: Feed,
    pub(crate) mode: WriteMode,
    /// Set for a thinned import: the `thinnings` id that keys its rows.
    pub(crate) thinning_id: Option<i64>,
    /// Set for an import that commits resume points with its batches.
    pub(crate) tracking: Option<Tracking>,
    /// The table batches are written to, and the dataset they are rows of.
    pub(super) target: Option<(&'static TableSpec, DatasetId)>,
}

/// The statement reading `import_progress` rows of dataset `$1`, symbol `$2`, days `$3` to
/// `$4`, as [`ProgressRecord`]s (also the dry run's read-only plan).
/// Upserts one shard's progress row: parameters dataset, symbol, day (text), start_ns,
/// end_ns, last_t, last_seq (both null to keep the stored position), done.
pub(crate) fn progress_upsert<D: Dialect>() -> String {
    D::sql(&format!(
        "INSERT INTO import_progress \
         (dataset, symbol, day, start_ns, end_ns, last_t, last_seq, done, updated_at) \
         VALUES ($1, $2, {}, $4, $5, $6, $7, $8, {}) \
         ON CONFLICT (dataset, symbol, day) DO UPDATE SET \
         start_ns = excluded.start_ns, end_ns = excluded.end_ns, \
         last_t = COALESCE(excluded.last_t, import_progress.last_t), \
         last_seq = COALESCE(excluded.last_seq, import_progress.last_seq), \
         done = excluded.done, updated_at = excluded.updated_at",
        D::date_param(3),
        D::NOW
    ))
}

pub(crate) fn progress_select<D: Dialect>() -> String {
    D::sql(&format!(
        "SELECT CAST(day AS TEXT), start_ns, end_ns, last_t, CAST(last_seq AS BIGINT), done \
         FROM import_progress WHERE dataset = $1 AND symbol = $2 AND day BETWEEN {} AND {} \
         ORDER BY day",
        D::date_param(3),
        D::date_param(4)
    ))
}

/// `impl<D> SqlSink<D> where ...` with the bounds every method of the SQL sink needs (the
/// types it binds and reads in both backends), written once for its impl blocks here and in
/// `upkeep.rs`.
macro_rules! impl_sql_sink {
    ($($body:tt)*) => {
        impl<D> $crate::sink::SqlSink<D>
        where
            D: Dialect,
            for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
            for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
            for<'q> i64: Encode<'q, D::DB> + Decode<'q, D::DB> + Type<D::DB>,
            for<'q> Option<i64>: Encode<'q, D::DB> + Type<D::DB>,
            for<'q> bool: Encode<'q, D::DB> + Decode<'q, D::DB> + Type<D::DB>,
            for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
            for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
            for<'q> String: Encode<'q, D::DB> + Type<D::DB>,
            for<'r> (i64,): FromRow<'r, <D::DB as Database>::Row>,
            for<'r> (bool,): FromRow<'r, <D::DB as Database>::Row>,
            for<'r> (String, String): FromRow<'r, <D::DB as Database>::Row>,
            for<'r> (String, String, i64): FromRow<'r, <D::DB as Database>::Row>,
            for<'r> (String, String, String, i64): FromRow<'r, <D::DB as Database>::Row>,
            for<'r> ProgressRecord: FromRow<'r, <D::DB as Database>::Row>,
            for<'r> f64: Decode<'r, D::DB> + Type<D::DB>,
            for<'r> String: Decode<'r, D::DB>,
            usize: ColumnIndex<<D::DB as Database>::Row>,
        {
            $($body)*
        }
    };
}
pub(crate) use impl_sql_sink;

impl_sql_sink! {
    /// A sink over an open, migrated connection; rebuilds indexes a killed `--drop-indexes`
    /// import left dropped.
    pub(crate) async fn new(conn: Conn<D>, dialect: D) -> anyhow::Result<Self> {
        let mut sink = Self::reader(conn, dialect);
        for name in sink.rebuild_dropped_indexes(true).await? {
            tracing::warn!(
                "[DB] rebuilt index {name}, left dropped by an interrupted --drop-indexes import"
            );
        }
        Ok(sink)
    }

    /// A sink that only reads (`status`): no index healed, nothing written.
    pub(crate) fn reader(conn: Conn<D>, dialect: D) -> Self {
        SqlSink {
            conn,
            dialect,
            symbol_ids: HashMap::new(),
            feed: Feed::Sip,
            mode: WriteMode::Upsert,
            thinning_id: None,
            tracking: None,
            target: None,
        }
    }

    pub fn set_mode(&mut self, mode: WriteMode) {
        self.mode = mode;
    }

    pub fn mode(&self) -> WriteMode {
        self.mode
    }

    /// Write batches, rows of `dataset`, to `table`.
    pub fn set_target(&mut self, table: &'static TableSpec, dataset: DatasetId) {
        self.target = Some((table, dataset));
    }

    /// Commit each batch's shard progress (`import_progress`) in the batch's transaction.
    pub(crate) fn track(&mut self, tracking: Tracking) {
        self.tracking = Some(tracking);
    }

    pub(crate) fn err(&self, e: sqlx::Error, doing: &str) -> anyhow::Error {
        self.dialect.error(e, doing)
    }

    /// The progress records of `dataset` for `symbol` on days `first..=last`.
    pub(crate) async fn load_progress(
        &mut self,
        dataset: &str,
        symbol: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> anyhow::Result<Vec<Saved>> {
        let rows: Vec<ProgressRecord> = sqlx::query_as(&progress_select::<D>())
            .bind(dataset)
            .bind(symbol)
            .bind(first.to_string())
            .bind(last.to_string())
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot read the import progress"))?;
        rows.into_iter().map(Saved::from_record).collect()
    }

    /// Upserts the progress rows of `marks` on `conn`, inside the batch's transaction.
    pub(crate) async fn commit_progress(
        tracking: Option<&Tracking>,
        conn: &mut Conn<D>,
        marks: &[Mark],
    ) -> Result<(), sqlx::Error> {
        let Some(tracking) = tracking else {
            return Ok(());
        };
        let sql = progress_upsert::<D>();
        for row in marks.iter().filter_map(|m| tracking.row(m)) {
            sqlx::query(&sql)
                .bind(row.dataset)
                .bind(row.symbol)
                .bind(row.day.to_string())
                .bind(row.start_ns)
                .bind(row.end_ns)
                .bind(row.last.map(|p| p.0))
                .bind(row.last.map(|p| i64::from(p.1)))
                .bind(row.done)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// The id of the row `values` in a (id, columns UNIQUE) table, inserting it if new. Safe
    /// against another importer inserting the same row at the same moment: the SELECT is a
    /// new statement, so it sees that importer's committed row.
    async fn upsert_name(
        &mut self,
        table: &str,
        columns: &[&str],
        values: &[&str],
    ) -> Result<i64, sqlx::Error> {
        let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        let insert = D::sql(&format!(
            "INSERT INTO {table} ({cols}) VALUES ({}) ON CONFLICT ({cols}) DO NOTHING",
            params.join(", "),
            cols = columns.join(", ")
        ));
        let matching: Vec<String> = columns
            .iter()
            .zip(&params)
            .map(|(c, p)| format!("{c} = {p}"))
            .collect();
        let select = D::sql(&format!(
            "SELECT CAST(id AS BIGINT) FROM {table} WHERE {}",
            matching.join(" AND ")
        ));
        let mut q = sqlx::query(&insert);
        for v in values {
            q = q.bind(*v);
        }
        q.execute(&mut self.conn).await?;
        let mut q = sqlx::query_scalar(&select);
        for v in values {
            q = q.bind(*v);
        }
        q.fetch_one(&mut self.conn).await
    }

    /// Checks that `symbols` (of this sink's feed) hold only rows of the kind being imported
    /// — the stand-in's synthetic rows (`synthetic`) or market data — and marks new ones.
    pub async fn claim_symbols(&mut self, symbols: &[&str], synthetic: bool) -> anyhow::Result<()> {
        let feed = self.feed.as_str();
        for &symbol in symbols {
            let held: Option<i64> = sqlx::query_scalar(&D::sql(
                "SELECT CAST(synthetic AS BIGINT) FROM symbols WHERE symbol = $1 AND feed = $2",
            ))
            .bind(symbol)
            .bind(feed)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot read the symbols"))?;
            match held {
                Some(h) if (h != 0) != synthetic => anyhow::bail!(
                    "{symbol} (feed {feed}) in this database holds {}; {} would mix the two in \
                     one dataset: use another --database-url",
                    if h != 0 {
                        "the stand-in's synthetic rows"
                    } else {
                        "market data from the API"
                    },
                    if synthetic {
                        "--standin"
                    } else {
                        "importing from the API"
                    }
                ),
                Some(_) => {}
                None => {
                    sqlx::query(&D::sql(
                        "INSERT INTO symbols (symbol, feed, synthetic) VALUES ($1, $2, $3) \
                         ON CONFLICT (symbol, feed) DO NOTHING",
                    ))
                    .bind(symbol)
                    .bind(feed)
                    .bind(i64::from(synthetic))
                    .execute(&mut self.conn)
                    .await
                    .map_err(|e| self.err(e, "cannot record the symbols"))?;
                }
            }
        }
        Ok(())
    }

    /// Rows from now on are of `feed` (sip until told otherwise).
    pub(crate) fn set_feed(&mut self, feed: Feed) {
        if feed != self.feed {
            self.symbol_ids.clear();
        }
        self.feed = feed;
    }

    /// `s.feed = 'sip'`: the condition on the joined `symbols` row for this sink's feed (a
    /// literal from the closed `Feed` list, never user text).
    pub(super) fn feed_is(&self) -> String {
        format!("s.feed = '{}'", self.feed.as_str())
    }

    /// Rows from now on are thinned rows keyed by `spec` (e.g. `sample=10`).
    pub(crate) async fn set_thinning(&mut self, spec: &str) -> anyhow::Result<()> {
        let id = self
            .upsert_name("thinnings", &["spec"], &[spec])
            .await
            .map_err(|e| self.err(e, "cannot record the thinning spec"))?;
        self.thinning_id = Some(id);
        Ok(())
    }

    /// Each row's symbol id (rows of one symbol come in runs: one lookup per run).
    pub(crate) async fn symbol_ids(&mut self, rows: &RecordBatch) -> anyhow::Result<Vec<i64>> {
        let symbols = batch::symbols(rows)?;
        let mut ids = Vec::with_capacity(rows.num_rows());
        let mut run: Option<(&str, i64)> = None;
        for i in 0..symbols.len() {
            let symbol = symbols.value(i);
            let id = match run {
                Some((s, id)) if s == symbol => id,
                _ => match self.symbol_ids.get(symbol) {
                    Some(id) => *id,
                    None => {
                        let feed = self.feed.as_str();
                        let id = self
                            .upsert_name("symbols", &["symbol", "feed"], &[symbol, feed])
                            .await
                            .map_err(|e| self.err(e, "cannot record the symbol"))?;
                        self.symbol_ids.insert(symbol.into(), id);
                        id
                    }
                },
            };
            run = Some((symbol, id));
            ids.push(id);
        }
        Ok(ids)
    }

    /// Writes one batch to the target table with its marks, in one transaction (the
    /// backend's bulk write): the `Sink` of both backends.
    pub async fn write(&mut self, rows: &RecordBatch, marks: &[Mark]) -> anyhow::Result<()>
    where
        D: BulkWrite,
    {
        let (table, dataset) = self
            .target
            .context("the database sink was given no table to write")?;
        let empty;
        let (rows, ids) = if rows.num_rows() == 0 {
            empty = RecordBatch::new_empty(batch::schema(table.row));
            (&empty, Vec::new())
        } else {
            (rows, self.symbol_ids(rows).await?)
        };
        let encoder = Encoder::new(table, dataset, rows, ids, self.thinning_id)?;
        D::write_rows(self, table, encoder, marks).await
    }

    /// Whether `dataset` (its raw table) holds a row of `symbol` with
    /// `from_ns <= t < until_ns`: one index probe.
    pub async fn holds_rows(
        &mut self,
        dataset: &DatasetId,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<bool> {
        let table = dataset.table();
        let sql = D::sql(&format!(
            "SELECT EXISTS (SELECT 1 FROM {} q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = $1 AND {feed} AND q.{time} >= $2 AND q.{time} < $3{filter})",
            table.name,
            feed = self.feed_is(),
            time = table.time_column,
            filter = super::filter_sql(*dataset, "q."),
        ));
        let mut q = sqlx::query_scalar(&sql)
            .bind(symbol)
            .bind(from_ns)
            .bind(until_ns);
        for (_, value) in super::dataset_filter(*dataset) {
            q = q.bind(value);
        }
        q.fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot look for rows"))
    }

    /// The rows of `dataset` (its raw table) of `symbol` with `from_ns <= t < until_ns`,
    /// in the table's order, as one batch: each stored column read back into its row
    /// column (conditions from their JSON text, `''` as null where the column is nullable).
    pub async fn read_rows(
        &mut self,
        dataset: &DatasetId,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<RecordBatch> {
        let table = dataset.table();
        let stored: Vec<(usize, &str, bool)> = (table.row.iter().enumerate())
            .filter_map(|(i, c)| c.sql.map(|sql| (i, sql, c.narrow)))
            .collect();
        let select: Vec<String> = stored
            .iter()
            .map(|(_, sql, narrow)| match narrow {
                true => format!("CAST(q.{sql} AS BIGINT)"),
                false => format!("q.{sql}"),
            })
            .collect();
        let order: Vec<String> = table.order.iter().map(|c| format!("q.{c}")).collect();
        let filter = super::filter_sql(*dataset, "q.");
        let sql = D::sql(&format!(
            "SELECT {} FROM {} q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = $1 AND {feed} AND q.{time} >= $2 AND q.{time} < $3{filter} \
             ORDER BY {}",
            select.join(", "),
            table.name,
            order.join(", "),
            feed = self.feed_is(),
            time = table.time_column,
        ));
        let mut q = sqlx::query(&sql).bind(symbol).bind(from_ns).bind(until_ns);
        for (_, value) in super::dataset_filter(*dataset) {
            q = q.bind(value);
        }
        let rows = q
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot read rows back"))?;
        let mut out = Builders::new(table.row, rows.len());
        let decode = |e: sqlx::Error| anyhow::anyhow!("cannot decode a stored row: {e}");
        for row in &rows {
            for (j, &(i, name, _)) in stored.iter().enumerate() {
                let col = &table.row[i];
                match (&mut out.parts[i], col.ty) {
                    (Builder::F64(v), _) => v.push(row.try_get::<f64, _>(j).map_err(decode)?),
                    (b @ (Builder::Utf8(_) | Builder::List(_)), ty) => {
                        let text: String = row.try_get(j).map_err(decode)?;
                        match b {
                            Builder::Utf8(s) if col.nullable && text.is_empty() => s.append_null(),
                            Builder::Utf8(s) => s.append_value(&text),
                            list => {
                                debug_assert_eq!(ty, ColumnType::Utf8List);
                                list.push_json_list(&text)?
                            }
                        }
                    }
                    (b, _) => {
                        let v: i64 = row.try_get(j).map_err(decode)?;
                        let range = || format!("{name} {v} is out of range");
                        match b {
                            Builder::Ts(t) => t.push(v),
                            Builder::U32(u) => u.push(u32::try_from(v).with_context(range)?),
                            Builder::U64(u) => u.push(u64::try_from(v).with_context(range)?),
                            _ => anyhow::bail!("column {name} cannot hold an integer"),
                        }
                    }
                }
            }
        }
        for (c, part) in table.row.iter().zip(&mut out.parts) {
            if c.sql.is_none() {
                for _ in 0..rows.len() {
                    match &mut *part {
                        Builder::Utf8(s) if c.is(Role::Symbol) => s.append_value(symbol),
                        other => other.push_default(c.nullable),
                    }
                }
            }
        }
        out.finish()
    }

    /// Deletes `dataset`'s rows of `symbol` with `from_ns <= t < until_ns` in one
    /// transaction, with the progress records of the days (months) they cover; returns how
    /// many rows. The units' resume points go with their rows: an import of them after the
    /// archive must fetch them again, not skip them as done.
    pub async fn delete_rows(
        &mut self,
        dataset: &DatasetId,
        symbol: &str,
        from_ns: i64,
        until_ns: i64,
    ) -> anyhow::Result<u64> {
        let sql = D::sql(&delete_sql(*dataset, self.feed));
        let forget = D::sql(&format!(
            "DELETE FROM import_progress WHERE dataset = $1 AND symbol = $2 AND day = {}",
            D::date_param(3)
        ));
        let key = self.feed.key(&dataset.key());
        let deleted = async {
            let mut tx = self.conn.begin().await?;
            let mut q = sqlx::query(&sql).bind(symbol).bind(from_ns).bind(until_ns);
            for (_, value) in super::dataset_filter(*dataset) {
                q = q.bind(value);
            }
            let r = q.execute(&mut *tx).await?;
            for unit in dataset.units_in(from_ns, until_ns - 1) {
                sqlx::query(&forget)
                    .bind(key.as_str())
                    .bind(symbol)
                    .bind(unit.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(D::rows_affected(&r))
        }
        .await;
        deleted.map_err(|e| self.err(e, "cannot delete archived rows"))
    }
}

impl<D: Dialect> SqlSink<D> {
    /// After a batch failed with `e`: when a plain insert (`--skip-duplicates`) met rows
    /// already there (another importer, or a range check that raced), switch to upserts for
    /// this batch and the rest and say so; the caller then writes the batch again.
    pub(crate) fn upsert_after_duplicate(&mut self, e: &sqlx::Error, table: &TableSpec) -> bool {
        if self.mode != WriteMode::Insert || !D::is_duplicate(e) {
            return false;
        }
        tracing::warn!(
            "[DB] --skip-duplicates met rows already in {}; falling back to upsert from this batch on",
            table.name
        );
        self.mode = WriteMode::Upsert;
        true
    }
}
