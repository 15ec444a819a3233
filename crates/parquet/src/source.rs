//! The Parquet store as a pipeline source ([`StoreRows`]): each symbol's files of a range in
//! turn, only the row groups that overlap it read, days without a file reported. Used by
//! `load-historical` (into the database) and `export`.

use crate::layout::Layout;
use crate::reader::stream_parquet;
use data_core::dataset::DatasetId;
use data_core::model::Symbol;
use data_core::pipeline::{Cancel, Feed, Fetched, Source, SourceTask};
use data_core::resume::ShardUnit;
use data_core::time::DateRange;
use data_storage::location::Location;

/// How many missing days the warning names before `...`.
const MISSING_SHOWN: usize = 20;

/// `symbols`' stored rows of `layout` in `range`, symbol after symbol, in time order.
pub struct StoreRows {
    pub root: Location,
    pub layout: DatasetId,
    pub symbols: Vec<Symbol>,
    pub range: DateRange,
}

impl Source for StoreRows {
    fn page_word(&self) -> &'static str {
        "files"
    }

    fn spawn(self, tx: Feed, cancel: Cancel) -> SourceTask {
        let StoreRows {
            root,
            layout,
            symbols,
            range,
        } = self;
        tokio::task::spawn_blocking(move || {
            let mut fetched = Fetched::default();
            for symbol in &symbols {
                let stats =
                    stream_parquet(&root, &layout, symbol, range, tx.clone(), cancel.clone())?;
                fetched.pages += stats.files;
                fetched.rows += stats.rows;
                if stats.missing.is_empty() {
                    continue;
                }
                let shown: Vec<String> = (stats.missing.iter())
                    .take(MISSING_SHOWN)
                    .map(|d| d.to_string())
                    .collect();
                tracing::warn!(
                    "[FILE] {} {}(s) in the range have no file for {symbol} in {}: {}{}",
                    stats.missing.len(),
                    match layout.unit() {
                        ShardUnit::Session => "trading day",
                        unit => unit.file_noun(),
                    },
                    root.show(&layout.dir(root.path())),
                    shown.join(", "),
                    if stats.missing.len() > MISSING_SHOWN {
                        ", ..."
                    } else {
                        ""
                    }
                );
            }
            Ok(fetched)
        })
    }
}
