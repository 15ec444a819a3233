//! One validated job: what a command asked for, checked in one place. Every command turns
//! its arguments into a [`Job`] (or an [`ArchiveJob`]) here, so a usage error (a bad symbol,
//! date, range, timeframe, thinning or cutoff) is the same one-line error with exit code 2
//! in every command; nothing after this re-validates.

mod markets;

use crate::args::{
    ArchiveArgs, AssetArgs, BarArgs, DatasetArgs, ExportArgs, ImportArgs, LoadArgs, ThinArgs,
};
use crate::config::{self, Settings, SettingsArgs, SettingsError, StoreSettingsArgs};
use chrono::NaiveDate;
use data_core::dataset::{Asset, DatasetId, Kind, TableSpec, QUOTES_AGGREGATED, QUOTES_THINNED};
use data_core::model::ContractQuery;
use data_core::model::{Feed, Symbol};
use data_core::time::{new_york_date, new_york_time_nanos, DateRange};
use data_core::transform::{parse_width, Thinning};
pub use markets::ACTION_TYPES;
use markets::{asset_of, contracts_of, types_of};
use std::path::Path;

/// A command-line error: exit code 2, like a bad setting.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(SettingsError(message.into()))
}

/// One run of the pipeline, validated: the dataset, the symbols, the range, the thinning,
/// whether to ignore earlier progress, and the resolved settings (which hold the source,
/// the sink and how to pace and batch).
#[derive(Debug)]
pub struct Job {
    /// `--coordinate`: the lease length of the shards claimed in PostgreSQL.
    pub coordinate: Option<std::time::Duration>,
    pub dataset: DatasetId,
    pub symbols: Vec<Symbol>,
    /// The range asked for; bars cover whole New York days (a daily bar opens at midnight).
    pub range: DateRange,
    pub thinning: Thinning,
    pub restart: bool,
    /// Alpaca's `asof` (a date or `-`), when given.
    pub asof: Option<String>,
    /// The rows come from the offline stand-in (`--standin`): synthetic, marked as such.
    pub synthetic: bool,
    /// `--underlying`: the option contracts to list first; they become the symbols.
    pub contracts: Option<ContractQuery>,
    /// Corporate actions' `--types` (Alpaca's `types`), when given.
    pub action_types: Option<String>,
    pub settings: Settings,
}

/// `--coordinate`'s lease. (Whether the store can be shared is its own to say:
/// [`crate::store::Store::check`].)
fn coordination_of(lease_secs: u64) -> std::time::Duration {
    std::time::Duration::from_secs(lease_secs)
}

impl Job {
    /// A job of `dataset` for `symbols` over `range`, with nothing else asked: no thinning,
    /// no coordination, no restart.
    fn plain(
        dataset: DatasetId,
        symbols: Vec<Symbol>,
        range: DateRange,
        settings: Settings,
    ) -> Job {
        Job {
            range,
            dataset,
            symbols,
            thinning: Thinning::default(),
            coordinate: None,
            restart: false,
            asof: None,
            synthetic: false,
            contracts: None,
            action_types: None,
            settings,
        }
    }

    /// `data import-api`.
    pub fn import_api(args: &ImportArgs) -> anyhow::Result<Job> {
        let mut settings = config::resolve(&args.settings, &config::process_env)?;
        let (symbols, start, end) = symbols_and_bounds(args)?;
        let (asset, symbols) = match args.contracts.underlying {
            Some(_) => {
                if args
                    .dataset
                    .asset
                    .asset
                    .is_some_and(|a| a != Asset::Options)
                    || args.dataset.asset.loc.is_some()
                {
                    return Err(usage("--underlying lists option contracts: it takes no --asset other than options, and no --loc"));
                }
                asset_of(
                    Vec::new(),
                    &AssetArgs {
                        asset: Some(Asset::Options),
                        loc: None,
                    },
                    &mut settings,
                )?
            }
            None => asset_of(symbols, &args.dataset.asset, &mut settings)?,
        };
        let dataset = dataset_of(args.kind, &args.dataset.bars, asset, &mut settings)?;
        let range = range_of(dataset, start, end)?;
        let contracts = contracts_of(&args.contracts, range)?;
        let thinning = thinning_of(&args.thin)?;
        if !thinning.is_raw() && dataset != DatasetId::Quotes {
            return Err(usage(format!(
                "--nbbo-changes, --sample and --aggregate thin quotes; they do not apply to {}",
                dataset.noun()
            )));
        }
        let coordinate = match args.coordinate {
            false => None,
            true => Some(coordination_of(args.lease)),
        };
        Ok(Job {
            range,
            dataset,
            symbols,
            thinning,
            coordinate,
            restart: args.restart,
            asof: asof_of(args.asof.as_deref())?,
            synthetic: false,
            contracts,
            action_types: types_of(args.types.as_deref(), dataset)?,
            settings,
        })
    }

    /// `data sync`: `symbols`' rows of `dataset` from New York day `first` to `last`, with
    /// `settings` (their feed and store).
    pub fn sync(
        dataset: DatasetId,
        symbols: Vec<Symbol>,
        (first, last): (NaiveDate, NaiveDate),
        settings: Settings,
    ) -> anyhow::Result<Job> {
        let range = range_of(dataset, &first.to_string(), &last.to_string())?;
        Ok(Job::plain(dataset, symbols, range, settings))
    }

    /// `data load-historical`.
    pub fn load_historical(args: &LoadArgs) -> anyhow::Result<Job> {
        let span = (args.start.as_str(), args.end.as_str());
        Job::of_stored(args.kind, &args.symbol, span, &args.settings, &args.dataset)
    }

    /// `export`: the stored rows of a dataset's symbols in a range (END defaults to START).
    pub fn export(args: &ExportArgs) -> anyhow::Result<Job> {
        let span = (
            args.start.as_str(),
            args.end.as_deref().unwrap_or(&args.start),
        );
        Job::of_stored(args.kind, &args.symbol, span, &args.settings, &args.dataset)
    }

    /// A job over rows a store holds (`load-historical`, `export`): one dataset's symbols
    /// from START to END.
    fn of_stored(
        kind: Kind,
        symbol: &str,
        (start, end): (&str, &str),
        settings: &StoreSettingsArgs,
        dataset: &DatasetArgs,
    ) -> anyhow::Result<Job> {
        let mut settings = config::resolve(settings, &config::process_env)?;
        let symbols = parse_symbol_list(symbol, "SYMBOLS")?;
        if symbols.is_empty() {
            return Err(usage("SYMBOLS is empty: name at least one symbol"));
        }
        let (asset, symbols) = asset_of(symbols, &dataset.asset, &mut settings)?;
        let dataset = dataset_of(kind, &dataset.bars, asset, &mut settings)?;
        let range = range_of(dataset, start, end)?;
        Ok(Job::plain(dataset, symbols, range, settings))
    }

    /// The symbols, comma-separated: `AAPL,MSFT`.
    pub fn symbol_list(&self) -> String {
        let names: Vec<&str> = self.symbols.iter().map(Symbol::as_str).collect();
        names.join(",")
    }

    /// The database table the job's rows land in: the dataset's own, or a thinned one.
    pub fn table(&self) -> &'static TableSpec {
        match (self.thinning.is_raw(), self.thinning.aggregate_ns) {
            (true, _) => self.dataset.table(),
            (false, None) => &QUOTES_THINNED,
            (false, Some(_)) => &QUOTES_AGGREGATED,
        }
    }

    /// The key of the job's progress records: the dataset's key (`quotes`, `bars/1Min/raw`),
    /// or for thinned quotes the table and the thinning (`quotes_thinned/sample=10`).
    pub fn progress_key(&self) -> String {
        let base = if self.thinning.is_raw() {
            self.dataset.key()
        } else {
            format!("{}/{}", self.table().name, self.thinning.spec())
        };
        // Actions of some types only are their own resumable dataset.
        let base = match &self.action_types {
            Some(types) => format!("{base}/types={types}"),
            None => base,
        };
        self.settings.feed.key(&base)
    }
}

/// `--asof`: a date `YYYY-MM-DD` or `-`, as Alpaca takes it.
fn asof_of(asof: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(text) = asof.map(str::trim) else {
        return Ok(None);
    };
    if text == "-" || chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok() {
        Ok(Some(text.to_string()))
    } else {
        Err(usage(format!(
            "--asof {text:?}: expected a date YYYY-MM-DD, or - to turn Alpaca's ticker mapping off"
        )))
    }
}

/// `data archive`: one symbol's rows of a dataset before a New York date.
#[derive(Debug)]
pub struct ArchiveJob {
    pub dataset: DatasetId,
    pub symbol: Symbol,
    pub cutoff: NaiveDate,
    pub settings: Settings,
}

impl ArchiveJob {
    pub fn new(args: &ArchiveArgs, today: NaiveDate) -> anyhow::Result<ArchiveJob> {
        let mut settings = config::resolve(&args.settings, &config::process_env)?;
        let symbol = Symbol::parse(&args.symbol).map_err(|e| usage(format!("SYMBOL: {e}")))?;
        let (asset, mut symbols) = asset_of(vec![symbol], &args.dataset.asset, &mut settings)?;
        let symbol = symbols.pop().ok_or_else(|| usage("SYMBOL is empty"))?;
        let dataset = dataset_of(args.kind, &args.dataset.bars, asset, &mut settings)?;
        let cutoff = parse_cutoff(&args.older_than, today)?;
        Ok(ArchiveJob {
            dataset,
            symbol,
            cutoff,
            settings,
        })
    }
}

/// Settings alone (`status`, `config show`).
pub fn settings_of(args: &SettingsArgs) -> anyhow::Result<Settings> {
    Ok(config::resolve(args, &config::process_env)?)
}

/// The dataset a command names. Bars need a valid `--timeframe` (and, for stocks,
/// `--adjustment`); the others take neither.
/// Corporate actions are per ticker, not per feed: `settings` then name the sip feed, whose
/// `symbols` row the ticker's prices use.
fn dataset_of(
    kind: Kind,
    bars: &BarArgs,
    asset: Asset,
    settings: &mut Settings,
) -> anyhow::Result<DatasetId> {
    let dataset = dataset_named(kind, bars, asset)?;
    if dataset == DatasetId::CorporateActions {
        settings.feed = Feed::Sip;
    }
    Ok(dataset)
}

/// The dataset `kind` names for `asset`.
fn dataset_named(kind: Kind, bars: &BarArgs, asset: Asset) -> anyhow::Result<DatasetId> {
    let spec = match kind {
        Kind::Quotes | Kind::Trades | Kind::CorporateActions if bars.timeframe.is_some() => {
            return Err(usage("--timeframe applies to bars only"))
        }
        Kind::Quotes | Kind::Trades | Kind::CorporateActions => None,
        Kind::Bars => {
            let timeframe = bars
                .timeframe
                .as_deref()
                .ok_or_else(|| usage("bars need --timeframe 1Min|5Min|15Min|1Hour|1Day"))?
                .parse()
                .map_err(usage)?;
            let adjustment: data_core::dataset::Adjustment =
                bars.adjustment.parse().map_err(usage)?;
            if asset != Asset::Stocks && adjustment != data_core::dataset::Adjustment::Raw {
                return Err(usage(format!(
                    "--adjustment applies to stock bars only: {} prices are never adjusted",
                    if asset == Asset::Crypto {
                        "crypto"
                    } else {
                        "option"
                    }
                )));
            }
            Some((timeframe, adjustment))
        }
    };
    DatasetId::of(asset, kind, spec).ok_or_else(|| {
        usage(match (asset, kind) {
            (Asset::Options, Kind::Quotes) => {
                "Alpaca has no historical option quotes (only the latest quote of a contract): \
                 import option trades or bars instead"
            }
            (_, Kind::CorporateActions) => {
                "corporate actions are of stocks: name stock tickers such as AAPL"
            }
            _ => "bars need --timeframe 1Min|5Min|15Min|1Hour|1Day",
        })
    })
}

/// START and END as a range for `dataset`: stock quotes and trades the New York sessions,
/// stock bars whole New York days, crypto whole UTC days.
fn range_of(dataset: DatasetId, start: &str, end: &str) -> anyhow::Result<DateRange> {
    if dataset.asset() == Asset::Crypto {
        return DateRange::parse_utc(start, end).map_err(|e| usage(e.to_string()));
    }
    let range = DateRange::parse(start, end).map_err(|e| usage(e.to_string()))?;
    Ok(if dataset.whole_days() {
        calendar_days(range)
    } else {
        range
    })
}

/// `range` widened to whole New York days, midnight to midnight.
fn calendar_days(range: DateRange) -> DateRange {
    DateRange {
        start_ns: new_york_time_nanos(new_york_date(range.start_ns), 0, 0),
        end_ns: new_york_date(range.end_ns)
            .succ_opt()
            .map_or(range.end_ns, |d| new_york_time_nanos(d, 0, 0) - 1),
    }
}

fn thinning_of(thin: &ThinArgs) -> anyhow::Result<Thinning> {
    Ok(Thinning {
        nbbo_changes: thin.nbbo_changes,
        sample: thin.sample,
        aggregate_ns: thin
            .aggregate
            .as_deref()
            .map(parse_width)
            .transpose()
            .map_err(usage)?,
    })
}

/// The symbols and the bounds of an `import-api` command line: `SYMBOLS START END`, or
/// `START END` with `--symbols-file`.
fn symbols_and_bounds(args: &ImportArgs) -> anyhow::Result<(Vec<Symbol>, &str, &str)> {
    if args.contracts.underlying.is_some() {
        return match (&args.symbols_file, &args.end) {
            (None, None) => Ok((Vec::new(), &args.symbols, &args.start)),
            (Some(_), _) => Err(usage(
                "--underlying and --symbols-file both name the symbols: give one",
            )),
            (None, Some(_)) => Err(usage(
                "with --underlying give only START and END: the contracts listed are the symbols",
            )),
        };
    }
    let (symbols, start, end) = match (&args.symbols_file, &args.end) {
        (None, Some(end)) => (
            parse_symbol_list(&args.symbols, "SYMBOLS")?,
            &args.start,
            end,
        ),
        (Some(file), None) => (read_symbols_file(file)?, &args.symbols, &args.start),
        (None, None) => {
            return Err(usage(
                "missing END: expected SYMBOLS START END (or START END with --symbols-file)",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(usage(
                "with --symbols-file give only START and END, not SYMBOLS START END",
            ))
        }
    };
    if symbols.is_empty() {
        return Err(usage(match &args.symbols_file {
            Some(f) => format!("the symbols file {} names no symbol", f.display()),
            None => "SYMBOLS names no symbol (e.g. AAPL or AAPL,MSFT)".into(),
        }));
    }
    Ok((symbols, start, end))
}

/// The symbols of a comma-separated list, each validated, duplicates dropped (first kept).
pub fn parse_symbol_list(text: &str, origin: &str) -> anyhow::Result<Vec<Symbol>> {
    let mut out: Vec<Symbol> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let symbol = Symbol::parse(part).map_err(|e| usage(format!("{origin}: {e}")))?;
        if !out.contains(&symbol) {
            out.push(symbol);
        }
    }
    Ok(out)
}

/// A symbols file: one symbol per line (commas also separate), `#` starts a comment.
pub(crate) fn read_symbols_file(path: &Path) -> anyhow::Result<Vec<Symbol>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        usage(format!(
            "cannot read the symbols file {}: {e}",
            path.display()
        ))
    })?;
    let mut out: Vec<Symbol> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        let origin = format!("{} line {}", path.display(), n + 1);
        for symbol in parse_symbol_list(line, &origin)? {
            if !out.contains(&symbol) {
                out.push(symbol);
            }
        }
    }
    Ok(out)
}

/// `--older-than`: `30d` (days before `today`) or a date `YYYY-MM-DD` (not included).
pub(crate) fn parse_cutoff(text: &str, today: NaiveDate) -> anyhow::Result<NaiveDate> {
    let bad = || {
        usage(format!(
            "--older-than {text:?}: expected a number of days like 30d, or a date YYYY-MM-DD"
        ))
    };
    if let Some(n) = text.strip_suffix('d') {
        let n: u64 = n.parse().map_err(|_| bad())?;
        return today.checked_sub_days(chrono::Days::new(n)).ok_or_else(bad);
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(timeframe: Option<&str>, adjustment: &str) -> BarArgs {
        BarArgs {
            timeframe: timeframe.map(str::to_string),
            adjustment: adjustment.to_string(),
        }
    }

    fn is_usage(e: &anyhow::Error) -> bool {
        e.downcast_ref::<SettingsError>().is_some()
    }

    #[test]
    fn datasets_come_from_kind_and_bar_flags() {
        let id = dataset_named(Kind::Bars, &bars(Some("15Min"), "split"), Asset::Stocks).unwrap();
        assert_eq!(id.key(), "bars/15Min/split");
        assert_eq!(
            dataset_named(Kind::Trades, &bars(None, "raw"), Asset::Stocks).unwrap(),
            DatasetId::Trades
        );
        for (kind, b, text) in [
            (Kind::Bars, bars(None, "raw"), "bars need --timeframe"),
            (
                Kind::Bars,
                bars(Some("2Min"), "raw"),
                "invalid --timeframe \"2Min\"",
            ),
            (
                Kind::Bars,
                bars(Some("1Min"), "none"),
                "invalid --adjustment \"none\"",
            ),
            (
                Kind::Quotes,
                bars(Some("1Min"), "raw"),
                "--timeframe applies to bars only",
            ),
        ] {
            let e = dataset_named(kind, &b, Asset::Stocks).unwrap_err();
            assert!(is_usage(&e), "{e}");
            assert!(e.to_string().starts_with(text), "{e}");
        }
    }

    #[test]
    fn cutoffs_are_days_or_dates_and_bad_ones_are_usage_errors() {
        let today: NaiveDate = "2024-07-31".parse().unwrap();
        assert_eq!(
            parse_cutoff("30d", today).unwrap(),
            "2024-07-01".parse::<NaiveDate>().unwrap()
        );
        assert_eq!(
            parse_cutoff("2024-01-02", today).unwrap(),
            "2024-01-02".parse::<NaiveDate>().unwrap()
        );
        for bad in ["soon", "-3d", "30", "2024-02-30", "99999999999999999999d"] {
            let e = parse_cutoff(bad, today).unwrap_err();
            assert!(is_usage(&e), "{bad}: {e}");
        }
    }

    #[test]
    fn bars_cover_whole_new_york_days() {
        let quotes = range_of(DatasetId::Quotes, "2024-01-02", "2024-01-02").unwrap();
        let bars = range_of(
            DatasetId::bars(
                data_core::dataset::Timeframe::Day1,
                data_core::dataset::Adjustment::Raw,
            ),
            "2024-01-02",
            "2024-01-02",
        )
        .unwrap();
        assert!(bars.start_ns < quotes.start_ns && bars.end_ns > quotes.end_ns);
        assert_eq!(bars.end_ns - bars.start_ns + 1, 86_400_000_000_000);
        let e = range_of(DatasetId::Quotes, "2024-1-2", "2024-01-03").unwrap_err();
        assert!(is_usage(&e), "{e}");
    }
}
