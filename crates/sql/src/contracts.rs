//! Side tables of the option and corporate-action imports. The `option_contracts` table: the contract list `import-api --underlying` found, one row
//! per OCC symbol, replaced on every listing (in one transaction), so it can be queried
//! beside the option rows and a rerun starts from what the last listing found.

use super::sink::{Conn, Dialect, SqlSink};
use data_core::model::Contract;
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

/// What a refresh of a ticker's adjustment factors found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Factors {
    pub splits: usize,
    pub dividends: usize,
    /// Cash dividends left out: no raw daily bar in the week before their ex-date.
    pub without_close: usize,
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
    for<'r> (String, f64): FromRow<'r, <D::DB as Database>::Row>,
    for<'q> Option<&'q str>: Encode<'q, D::DB> + Type<D::DB>,
    for<'r> (f64,): FromRow<'r, <D::DB as Database>::Row>,
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
    /// Rewrites `split_factors` and `dividend_factors` for `symbol` from its corporate
    /// actions (and, for dividends, the raw daily close before each ex-date), in one
    /// transaction.
    pub(crate) async fn refresh_factors(&mut self, symbol: &str) -> anyhow::Result<Factors> {
        let splits_sql = D::sql(
            "SELECT ca.ex_date, ca.old_rate, ca.new_rate FROM corporate_actions ca \
             JOIN symbols s ON s.id = ca.symbol_id WHERE s.symbol = $1 \
             AND ca.action IN ('forward_splits', 'reverse_splits') ORDER BY ca.ex_date, ca.id",
        );
        let dividends_sql = D::sql(
            "SELECT ca.ex_date, ca.rate FROM corporate_actions ca \
             JOIN symbols s ON s.id = ca.symbol_id WHERE s.symbol = $1 \
             AND ca.action = 'cash_dividends' ORDER BY ca.ex_date, ca.id",
        );
        let close_sql = D::sql(
            "SELECT b.close FROM bars b JOIN symbols s ON s.id = b.symbol_id \
             WHERE s.symbol = $1 AND s.feed = 'sip' AND b.timeframe = '1Day' \
             AND b.adjustment = 'raw' AND b.t < $2 AND b.t >= $3 ORDER BY b.t DESC LIMIT 1",
        );
        let written = async {
            let mut tx = self.conn.begin().await?;
            let splits: Vec<(String, f64, f64)> = sqlx::query_as(&splits_sql)
                .bind(symbol)
                .fetch_all(&mut *tx)
                .await?;
            let dividends: Vec<(String, f64)> = sqlx::query_as(&dividends_sql)
                .bind(symbol)
                .fetch_all(&mut *tx)
                .await?;
            let mut found = Factors::default();
            let mut dividend_events = Vec::new();
            for (ex, rate) in &dividends {
                let Some(ex_t) = ny_midnight(ex) else { continue };
                let close: Option<(f64,)> = sqlx::query_as(&close_sql)
                    .bind(symbol)
                    .bind(ex_t)
                    .bind(ex_t - 7 * 86_400 * data_core::time::NANOS_PER_SEC)
                    .fetch_optional(&mut *tx)
                    .await?;
                match close {
                    Some((close,)) if close > 0.0 && *rate > 0.0 => {
                        dividend_events.push((ex_t, 1.0 - rate / close))
                    }
                    _ => found.without_close += 1,
                }
            }
            let split_events: Vec<(i64, f64)> = splits
                .iter()
                .filter(|(_, old, new)| *old > 0.0 && *new > 0.0)
                .filter_map(|(ex, old, new)| Some((ny_midnight(ex)?, old / new)))
                .collect();
            found.splits = split_events.len();
            found.dividends = dividend_events.len();
            for (table, events) in [
                ("split_factors", split_events),
                ("dividend_factors", dividend_events),
            ] {
                sqlx::query(&D::sql(&format!("DELETE FROM {table} WHERE symbol = $1")))
                    .bind(symbol)
                    .execute(&mut *tx)
                    .await?;
                let insert = D::sql(&format!(
                    "INSERT INTO {table} (symbol, from_t, until_t, price_factor) VALUES ($1, $2, $3, $4)"
                ));
                for (from, until, factor) in spans(events) {
                    sqlx::query(&insert)
                        .bind(symbol)
                        .bind(from)
                        .bind(until)
                        .bind(factor)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(found)
        }
        .await;
        written.map_err(|e| self.dialect.error(e, "cannot write the adjustment factors"))
    }
}

/// New York midnight of a `YYYY-MM-DD` date, in ns.
fn ny_midnight(date: &str) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(data_core::time::new_york_time_nanos(day, 0, 0))
}

/// The spans between events `(ex_t, factor)`, `(from_t, until_t, product)`: a price before
/// an event is multiplied by its factor and every later one's.
pub fn spans(mut events: Vec<(i64, f64)>) -> Vec<(i64, i64, f64)> {
    events.sort_by_key(|e| e.0);
    let mut out = Vec::new();
    let mut from = i64::MIN;
    for (k, (ex, _)) in events.iter().enumerate() {
        let factor: f64 = events[k..].iter().map(|(_, r)| r).product();
        out.push((from, *ex, factor));
        from = *ex;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_multiply_every_later_event() {
        let t = |d: &str| super::ny_midnight(d).unwrap();
        let spans = super::spans(vec![(t("2024-06-10"), 0.1), (t("2021-07-20"), 0.25)]);
        assert_eq!(
            spans,
            vec![
                (i64::MIN, t("2021-07-20"), 0.025),
                (t("2021-07-20"), t("2024-06-10"), 0.1)
            ]
        );
    }
}
