//! The database as a pipeline source for `export` ([`DatabaseRows`]): each symbol's rows of
//! a range, a unit (a New York day; bars: a month) per read so memory stays flat, in the
//! table's order.

use crate::database::Database;
use data_core::dataset::DatasetId;
use data_core::model::Symbol;
use data_core::pipeline::{send_rows, Cancel, Feed, Fetched, Source, SourceTask};
use data_core::time::DateRange;

/// Rows per chunk sent down the channel: an API page's worth, as for an import.
const CHUNK_ROWS: usize = 10_000;

/// `symbols`' rows of `dataset` in `range`, symbol after symbol, in time order.
pub struct DatabaseRows {
    pub db: Database,
    pub dataset: DatasetId,
    pub symbols: Vec<Symbol>,
    pub range: DateRange,
}

impl Source for DatabaseRows {
    fn page_word(&self) -> &'static str {
        self.dataset.unit().noun()
    }

    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask {
        let DatabaseRows {
            mut db,
            dataset,
            symbols,
            range,
        } = self;
        tokio::spawn(async move {
            let mut fetched = Fetched::default();
            for symbol in &symbols {
                for key in dataset.units_in(range.start_ns, range.end_ns) {
                    if *cancel.borrow() {
                        return Ok(fetched);
                    }
                    let (from, until) = dataset.unit_bounds(key);
                    let (from, until) = (from.max(range.start_ns), until.min(range.end_ns + 1));
                    if from >= until {
                        continue;
                    }
                    let rows = db.read_rows(&dataset, symbol.as_str(), from, until).await?;
                    fetched.pages += 1;
                    fetched.rows += rows.num_rows() as u64;
                    if !send_rows(&tx, 0, &rows, CHUNK_ROWS, false).await {
                        return Ok(fetched);
                    }
                }
            }
            Ok(fetched)
        })
    }
}
