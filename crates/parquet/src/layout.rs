//! Where the Parquet store keeps each dataset: `{dataset folder}/symbol=SYM/date=YYYY-MM-DD/`
//! (`month=YYYY-MM` for monthly units) with one file, [`FILE_NAME`], in each unit's folder.
//! The dataset folder is its descriptor's name and parameters (`bars/timeframe=1Min/
//! adjustment=raw`), so the folder names are Hive partitions that DuckDB, Polars, pyarrow
//! and Spark read as columns.

use chrono::NaiveDate;
use data_core::dataset::{Adjustment, DatasetId, Params, Timeframe, DATASETS};
use data_core::model::{Asset, Feed};
use data_storage::location::Location;
use std::path::{Path, PathBuf};

/// The name of every file of the Parquet store, inside its unit's folder.
pub const FILE_NAME: &str = "part-0.parquet";

/// A dataset's places in the Parquet store.
pub trait Layout {
    /// The dataset's folder under `root`.
    fn dir(&self, root: &Path) -> PathBuf;
    /// The unit a `date=` / `month=` folder name is of.
    fn parse_unit(&self, name: &str) -> Option<NaiveDate>;
    /// `symbol=SYM`: the folder of one symbol's files (`BTC/USD` as `symbol=BTC-USD`).
    fn symbol_dir(&self, root: &Path, symbol: &str) -> PathBuf;
    /// The symbol a `symbol=` folder value names: itself, or for crypto `BTC-USD` back to
    /// `BTC/USD`.
    fn symbol_of_dir(&self, value: &str) -> String;
    /// `{dataset}/symbol=SYM/.synthetic`: present when the symbol's files hold the
    /// stand-in's synthetic rows (`import-api --standin`).
    fn synthetic_marker(&self, root: &Path, symbol: &str) -> PathBuf;
    /// `{dataset}/symbol=SYM/date=YYYY-MM-DD` (or `month=YYYY-MM`).
    fn unit_dir(&self, root: &Path, symbol: &str, key: NaiveDate) -> PathBuf;
    /// The file of `symbol`'s unit `key`.
    fn file(&self, root: &Path, symbol: &str, key: NaiveDate) -> PathBuf;
}

impl Layout for DatasetId {
    fn dir(&self, root: &Path) -> PathBuf {
        let d = self.descriptor();
        let dir = root.join(d.name);
        match (d.params, self.bar_spec()) {
            (Params::TimeframeAdjustment, Some((timeframe, adjustment))) => dir
                .join(format!("timeframe={timeframe}"))
                .join(format!("adjustment={adjustment}")),
            (Params::Timeframe, Some((timeframe, _))) => dir.join(format!("timeframe={timeframe}")),
            _ => dir,
        }
    }

    fn parse_unit(&self, name: &str) -> Option<NaiveDate> {
        match self.unit().is_month() {
            true => {
                let value = name.strip_prefix("month=")?;
                NaiveDate::parse_from_str(&format!("{value}-01"), "%Y-%m-%d").ok()
            }
            false => NaiveDate::parse_from_str(name.strip_prefix("date=")?, "%Y-%m-%d").ok(),
        }
    }

    fn symbol_dir(&self, root: &Path, symbol: &str) -> PathBuf {
        self.dir(root).join(format!(
            "symbol={}",
            data_core::model::Symbol::path_name(symbol)
        ))
    }

    fn symbol_of_dir(&self, value: &str) -> String {
        match self.asset() {
            Asset::Stocks | Asset::Options => value.to_string(),
            Asset::Crypto => value.replace('-', "/"),
        }
    }

    fn synthetic_marker(&self, root: &Path, symbol: &str) -> PathBuf {
        self.symbol_dir(root, symbol).join(".synthetic")
    }

    fn unit_dir(&self, root: &Path, symbol: &str, key: NaiveDate) -> PathBuf {
        let unit = match self.unit().is_month() {
            true => format!("month={}", key.format("%Y-%m")),
            false => format!("date={key}"),
        };
        self.symbol_dir(root, symbol).join(unit)
    }

    fn file(&self, root: &Path, symbol: &str, key: NaiveDate) -> PathBuf {
        self.unit_dir(root, symbol, key).join(FILE_NAME)
    }
}

/// Every dataset with a folder in the store: each family's folder, and within it each
/// `timeframe=` (and `adjustment=`) folder whose value parses. Folders of other names are
/// not ours: left alone, not listed.
pub fn present(store: &Location) -> Vec<DatasetId> {
    let root = store.path();
    let top = store.subfolders(root);
    let values = |dir: &Path, key: &str| -> Vec<String> {
        store
            .subfolders(dir)
            .into_iter()
            .filter_map(|name| name.strip_prefix(key).map(str::to_string))
            .collect()
    };
    let mut out = Vec::new();
    for d in DATASETS.iter().filter(|d| top.iter().any(|t| t == d.name)) {
        let dir = root.join(d.name);
        match d.params {
            Params::None => out.push(d.with(Timeframe::Day1, Adjustment::Raw)),
            Params::Timeframe => {
                for timeframe in values(&dir, "timeframe=") {
                    if let Ok(timeframe) = timeframe.parse() {
                        out.push(d.with(timeframe, Adjustment::Raw));
                    }
                }
            }
            Params::TimeframeAdjustment => {
                for timeframe in values(&dir, "timeframe=") {
                    let dir = dir.join(format!("timeframe={timeframe}"));
                    for adjustment in values(&dir, "adjustment=") {
                        if let (Ok(timeframe), Ok(adjustment)) =
                            (timeframe.parse(), adjustment.parse())
                        {
                            out.push(d.with(timeframe, adjustment));
                        }
                    }
                }
            }
        }
    }
    out
}

/// The Parquet store's root for `feed`: `root` itself for the default feed, `root/feed=FEED`
/// for the others (each holding the same layout).
pub(crate) fn feed_root(feed: Feed, root: &Location) -> Location {
    match feed.is_default() {
        true => root.clone(),
        false => root.join(format!("feed={}", feed.as_str())),
    }
}

/// The Parquet store's folder for the feed `settings` use: `--historical-path` itself for
/// sip, `feed=FEED` inside it for the others.
pub fn store_root(settings: &data_job::config::Settings) -> Location {
    feed_root(settings.feed, &settings.historical_path)
}
