//! Side tables of the option and corporate-action imports. The `option_contracts` table: the contract list `import-api --underlying` found, one row
//! per OCC symbol, replaced on every listing (in one transaction), so it can be queried
//! beside the option rows and a rerun starts from what the last listing found.

use super::sql::{Conn, Dialect, SqlSink};
use crate::source::contracts::Contract;
use sqlx::{Connection, Database, Encode, Executor, FromRow, IntoArguments, Type};

const COLUMNS: [&str; 19] = [
    "symbol",
    "id",
    "name",
    "underlying_symbol",
    "root_symbol",
    "expiration_date",
    "type",
    "style",
    "strike_price",
    "strike",
    "multiplier",
    "size",
    "status",
    "tradable",
    "open_interest",
    "open_interest_date",
    "close_price",
    "close_price_date",
    "listed_at",
];

impl<D> SqlSink<D>
where
    D: Dialect,
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> f64: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
{
    /// Upserts `contracts` (listed at `listed_at`) in one transaction.
    pub async fn upsert_contracts(
        &mut self,
        contracts: &[Contract],
        listed_at: &str,
    ) -> anyhow::Result<()> {
        let params: Vec<String> = (1..=COLUMNS.len()).map(|n| format!("${n}")).collect();
        let update: Vec<String> = COLUMNS[1..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let sql = D::sql(&format!(
            "INSERT INTO option_contracts ({}) VALUES ({}) ON CONFLICT (symbol) DO UPDATE SET {}",
            COLUMNS.join(", "),
            params.join(", "),
            update.join(", ")
        ));
        let written = async {
            let mut tx = self.conn.begin().await?;
            for c in contracts {
                sqlx::query(&sql)
                    .bind(c.symbol.as_str())
                    .bind(c.id.as_str())
                    .bind(c.name.as_str())
                    .bind(c.underlying_symbol.as_str())
                    .bind(c.root_symbol.as_str())
                    .bind(c.expiration_date.as_str())
                    .bind(c.kind.as_str())
                    .bind(c.style.as_str())
                    .bind(c.strike_price.as_str())
                    .bind(c.strike_price.trim().parse::<f64>().unwrap_or(f64::NAN))
                    .bind(c.multiplier.as_str())
                    .bind(c.size.as_deref().unwrap_or(""))
                    .bind(c.status.as_str())
                    .bind(i64::from(c.tradable))
                    .bind(c.open_interest.as_deref())
                    .bind(c.open_interest_date.as_deref())
                    .bind(c.close_price.as_deref())
                    .bind(c.close_price_date.as_deref())
                    .bind(listed_at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }
        .await;
        written.map_err(|e| self.dialect.error(e, "cannot store the option contracts"))
    }
}

impl<D> SqlSink<D>
where
    D: Dialect,
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::DB>,
    for<'q> <D::DB as Database>::Arguments<'q>: IntoArguments<'q, D::DB>,
    for<'q> i64: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> f64: Encode<'q, D::DB> + Type<D::DB>,
    for<'q> &'q str: Encode<'q, D::DB> + Type<D::DB>,
    for<'r> (String, f64, f64): FromRow<'r, <D::DB as Database>::Row>,
{
    /// Rewrites `split_factors` for `symbol` from its splits in `corporate_actions`; returns
    /// how many splits it found.
    pub async fn refresh_split_factors(&mut self, symbol: &str) -> anyhow::Result<usize> {
        let read = D::sql(
            "SELECT ca.ex_date, ca.old_rate, ca.new_rate FROM corporate_actions ca \
             JOIN symbols s ON s.id = ca.symbol_id WHERE s.symbol = $1 \
             AND ca.action IN ('forward_splits', 'reverse_splits') ORDER BY ca.ex_date, ca.id",
        );
        let delete = D::sql("DELETE FROM split_factors WHERE symbol = $1");
        let insert = D::sql(
            "INSERT INTO split_factors (symbol, from_t, until_t, price_factor) VALUES ($1, $2, $3, $4)",
        );
        let written = async {
            let mut tx = self.conn.begin().await?;
            let splits: Vec<(String, f64, f64)> = sqlx::query_as(&read)
                .bind(symbol)
                .fetch_all(&mut *tx)
                .await?;
            let spans = split_spans(&splits);
            sqlx::query(&delete).bind(symbol).execute(&mut *tx).await?;
            for (from, until, factor) in &spans {
                sqlx::query(&insert)
                    .bind(symbol)
                    .bind(*from)
                    .bind(*until)
                    .bind(*factor)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(spans.len())
        }
        .await;
        written.map_err(|e| self.dialect.error(e, "cannot write the split factors"))
    }
}

/// The spans between splits, `(from_t, until_t, price factor)`: a price before a split's
/// ex-date (New York midnight) is multiplied by `old_rate / new_rate` of it and of every
/// later split. Splits without a valid ex-date or rates are left out.
pub fn split_spans(splits: &[(String, f64, f64)]) -> Vec<(i64, i64, f64)> {
    let mut events: Vec<(i64, f64)> = splits
        .iter()
        .filter(|(_, old, new)| *old > 0.0 && *new > 0.0)
        .filter_map(|(ex, old, new)| {
            let day = chrono::NaiveDate::parse_from_str(ex, "%Y-%m-%d").ok()?;
            Some((crate::time::new_york_time_nanos(day, 0, 0), old / new))
        })
        .collect();
    events.sort_by_key(|e| e.0);
    let mut spans = Vec::new();
    let mut from = i64::MIN;
    for (k, (ex, _)) in events.iter().enumerate() {
        let factor: f64 = events[k..].iter().map(|(_, r)| r).product();
        spans.push((from, *ex, factor));
        from = *ex;
    }
    spans
}

#[cfg(test)]
mod tests {
    #[test]
    fn split_spans_multiply_every_later_split() {
        let spans = super::split_spans(&[
            ("2024-06-10".into(), 1.0, 10.0),
            ("2021-07-20".into(), 1.0, 4.0),
            ("bad".into(), 1.0, 2.0),
        ]);
        let t = |d: &str| crate::time::new_york_time_nanos(d.parse().unwrap(), 0, 0);
        assert_eq!(
            spans,
            vec![
                (i64::MIN, t("2021-07-20"), 0.025),
                (t("2021-07-20"), t("2024-06-10"), 0.1)
            ]
        );
    }
}
