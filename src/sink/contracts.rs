//! The `option_contracts` table: the contract list `import-api --underlying` found, one row
//! per OCC symbol, replaced on every listing (in one transaction), so it can be queried
//! beside the option rows and a rerun starts from what the last listing found.

use super::sql::{Conn, Dialect, SqlSink};
use crate::source::contracts::Contract;
use sqlx::{Connection, Database, Encode, Executor, IntoArguments, Type};

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
