//! The SQL sink's upkeep and reads for other commands: the `--skip-duplicates` range probe,
//! the planner's statistics, `--drop-indexes` and its healing, and the day counts and
//! unfinished days `status` shows.

use super::dialect::{Conn, Dialect};
use anyhow::Context;
use chrono::NaiveDate;
use data_core::dataset::TableSpec;
use data_core::dataset::{Params, ShardUnit, DATASETS};
use data_core::resume::ProgressRecord;
use sqlx::{
    ColumnIndex, Connection, Database, Decode, Encode, Executor, FromRow, IntoArguments, Type,
};

super::sink::impl_sql_sink! {
    /// Whether `table` already holds rows of `symbol` (and this sink's thinning) with times
    /// in `start_ns..=end_ns`. A key-prefix range probe: cheap whatever the table size.
    pub(crate) async fn has_rows_in(
        &mut self,
        table: &TableSpec,
        symbol: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<bool> {
        let sql = D::sql(&format!(
            "SELECT EXISTS (SELECT 1 FROM {t} q JOIN symbols s ON s.id = q.symbol_id \
             WHERE s.symbol = $1 AND {feed} AND q.{c} BETWEEN $2 AND $3{th})",
            feed = self.feed_is(),
            t = table.name,
            c = table.time_column,
            th = if table.thinned {
                " AND q.thinning_id = $4"
            } else {
                ""
            }
        ));
        let mut q = sqlx::query_scalar::<_, bool>(&sql)
            .bind(symbol)
            .bind(start_ns)
            .bind(end_ns);
        if table.thinned {
            q = q.bind(self.thinning_id.unwrap_or(-1));
        }
        q.fetch_one(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot check the range for existing rows"))
    }

    /// Refreshes the planner's statistics of the table written ([`Dialect::refresh_stats`]).
    pub(crate) async fn refresh_stats(&mut self) -> anyhow::Result<()> {
        let Some(sql) = self.target.and_then(|(t, _)| D::refresh_stats(t.name)) else {
            return Ok(());
        };
        sqlx::raw_sql(&sql)
            .execute(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot refresh the table's statistics"))?;
        Ok(())
    }

    /// Drops `table`'s secondary indexes, recording each (with its CREATE statement) in
    /// `dropped_indexes` in the same transaction, so a killed import leaves a record that
    /// the next open acts on. The primary key is the table itself and is never touched.
    pub async fn drop_secondary_indexes(
        &mut self,
        table: &TableSpec,
    ) -> anyhow::Result<Vec<String>> {
        let allowed = self
            .dialect
            .may_drop_indexes(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot take the drop-indexes lock"))?;
        if !allowed {
            return Ok(Vec::new());
        }
        let record = D::sql(
            "INSERT INTO dropped_indexes (name, create_sql, dropped_at, pid) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET pid = excluded.pid, dropped_at = excluded.dropped_at",
        );
        let done = async {
            let mut tx = self.conn.begin().await?;
            let indexes: Vec<(String, String)> = sqlx::query_as(&D::sql(D::LIST_INDEXES))
                .bind(table.name)
                .fetch_all(&mut *tx)
                .await?;
            for (name, sql) in &indexes {
                sqlx::query(&record)
                    .bind(name.as_str())
                    .bind(sql.as_str())
                    .bind(chrono::Utc::now().to_rfc3339())
                    .bind(i64::from(std::process::id()))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!(
                    "DROP INDEX IF EXISTS \"{}\"",
                    name.replace('"', "\"\"")
                ))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(indexes.into_iter().map(|(n, _)| n).collect())
        }
        .await;
        done.map_err(|e| self.err(e, "cannot drop the secondary indexes"))
    }

    /// Recreates every index recorded in `dropped_indexes` and clears the records, in one
    /// transaction. With `only_orphans`, only those an import that is no longer running
    /// left dropped (an import in progress elsewhere rebuilds its own).
    pub(crate) async fn rebuild_dropped_indexes(
        &mut self,
        only_orphans: bool,
    ) -> anyhow::Result<Vec<String>> {
        let records: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, create_sql, CAST(pid AS BIGINT) FROM dropped_indexes")
                .fetch_all(&mut self.conn)
                .await
                .map_err(|e| self.err(e, "cannot read dropped index records"))?;
        let records: Vec<_> = records
            .into_iter()
            .filter(|(_, _, pid)| self.dialect.rebuild_record(*pid, only_orphans))
            .collect();
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let allowed = self
            .dialect
            .may_rebuild_indexes(&mut self.conn, only_orphans)
            .await
            .map_err(|e| self.err(e, "cannot check the drop-indexes lock"))?;
        if !allowed {
            return Ok(Vec::new());
        }
        let clear = D::sql("DELETE FROM dropped_indexes WHERE name = $1");
        let done = async {
            let mut tx = self.conn.begin().await?;
            for (name, create_sql, _) in &records {
                let sql = create_sql.replacen("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1);
                sqlx::query(&sql).execute(&mut *tx).await?;
                sqlx::query(&clear)
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        done.map_err(|e| self.err(e, "cannot rebuild the dropped indexes"))?;
        self.dialect.rebuilt_indexes(&mut self.conn).await;
        Ok(records.into_iter().map(|(n, _, _)| n).collect())
    }

    /// Every (dataset key, symbol, day) whose progress record is not done: units an import
    /// started and did not finish.
    pub(crate) async fn unfinished_days(&mut self) -> anyhow::Result<Vec<(String, String, NaiveDate)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(&D::sql(
            "SELECT dataset, symbol, CAST(day AS TEXT) FROM import_progress WHERE NOT done",
        ))
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| self.err(e, "cannot read the import progress"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(d, s, day)| Some((d, s, day.parse().ok()?)))
            .collect())
    }

    /// Rows per (dataset, symbol, New York day) in the database, for `data status` and
    /// `data archive`, with datasets named by their keys (`quotes`, `bars/1Min/raw`,
    /// `quotes_thinned/sample=10`).
    pub async fn day_counts(
        &mut self,
        symbol: Option<&str>,
    ) -> anyhow::Result<Vec<(String, String, NaiveDate, i64)>> {
        let of_symbol = "(CAST($1 AS TEXT) IS NULL OR s.symbol = $1)";
        let (d1, d2, du) = (D::ny_day("q.t"), D::ny_day("q.bucket_t"), D::utc_day("q.t"));
        // Keys as `Feed::key` writes them: `@FEED` after every feed but the default (sip;
        // crypto's us; options' opra); then `#standin` for the stand-in's synthetic rows.
        let feed = "CASE WHEN s.feed IN ('sip', 'us', 'opra') THEN '' ELSE '@' || s.feed END \
                    || CASE WHEN s.synthetic <> 0 THEN '#standin' ELSE '' END";
        // One SELECT per dataset of the dataset table (its key, its table, its day: UTC for
        // markets that never close), and the thinned quotes' tables, keyed by their spec.
        let mut parts: Vec<String> = DATASETS
            .iter()
            .map(|d| {
                let (key, by) = match d.params {
                    Params::None => (format!("'{}'", d.name), ""),
                    Params::Timeframe => (format!("'{}/' || q.timeframe", d.name), "q.timeframe, "),
                    Params::TimeframeAdjustment => (
                        format!("'{}/' || q.timeframe || '/' || q.adjustment", d.name),
                        "q.timeframe, q.adjustment, ",
                    ),
                };
                let day = match d.unit {
                    ShardUnit::UtcDay | ShardUnit::UtcMonth => &du,
                    ShardUnit::Session | ShardUnit::Month => &d1,
                };
                format!(
                    "SELECT {key} || {feed}, s.symbol, {day} AS d, count(*) FROM {} q \
                     JOIN symbols s ON s.id = q.symbol_id WHERE {of_symbol} \
                     GROUP BY {by}s.feed, s.synthetic, s.symbol, d",
                    d.table.name
                )
            })
            .collect();
        for (table, day) in [("quotes_thinned", &d1), ("quotes_aggregated", &d2)] {
            parts.push(format!(
                "SELECT '{table}/' || th.spec || {feed}, s.symbol, {day} AS d, count(*) \
                 FROM {table} q JOIN symbols s ON s.id = q.symbol_id \
                 JOIN thinnings th ON th.id = q.thinning_id WHERE {of_symbol} \
                 GROUP BY th.spec, s.feed, s.synthetic, s.symbol, d"
            ));
        }
        let sql = D::sql(&format!("{} ORDER BY 1, 2, 3", parts.join(" UNION ALL ")));
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(&sql)
            .bind(symbol)
            .fetch_all(&mut self.conn)
            .await
            .map_err(|e| self.err(e, "cannot count rows per day"))?;
        rows.into_iter()
            .map(|(ds, sym, d, n)| {
                let date = NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .with_context(|| format!("unexpected day {d:?} in the database"))?;
                Ok((ds, sym, date, n))
            })
            .collect()
    }
}
