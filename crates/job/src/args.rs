//! The command line as clap sees it: the commands, their arguments and their help. Parsing
//! only; turning arguments into a validated job happens in [`crate::job`].

use crate::config::{SettingsArgs, StoreSettingsArgs};
use clap::{Args, Parser, Subcommand};
use data_core::dataset::Kind;

/// The whole command line. (Its version, which names the build, is set by the binary:
/// `data::cli::command`.)
#[derive(Debug, Parser)]
#[command(
    name = "data",
    about = "Bulk importer of historical market data from the Alpaca Market Data API into SQLite"
)]
pub struct Cli {
    /// Also print every log line on a terminal (the per-batch lines too; they always go to
    /// the log file)
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print errors only (no progress bar, no log lines; the log file gets everything)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import historical data for one or more symbols from the Alpaca Market Data API
    #[command(
        name = "import-api",
        long_about = "Import historical data for one or more symbols from the Alpaca Market Data API.\n\n\
            START and END are dates (YYYY-MM-DD, or today) or RFC 3339 timestamps (or now); END is \
            inclusive. US \
            equities trade on New York days: a bare date covers that New York day's whole \
            extended-hours session, 04:00-20:00 America/New_York (START at 04:00, END at \
            20:00), whatever your own time zone. Crypto pairs (BTC/USD) trade around the clock: \
            a bare date is the whole UTC day, weekends included. A timestamp is taken \
            exactly.\n\n\
            Rows are written in batches, each committed in its own transaction; re-running the \
            same command is safe and leaves exactly the same rows.",
        after_help = "Examples:\n  data import-api quotes AAPL 2024-01-01 2024-12-31\n  \
            data import-api quotes AAPL,MSFT,BRK.B 2024-01-01 2024-01-31\n  \
            data import-api quotes --symbols-file watchlist.txt 2024-01-01 2024-12-31\n  \
            data import-api quotes MSFT 2024-03-01T14:30:00Z 2024-03-01T15:00:00Z --feed iex\n  \
            data import-api quotes BTC/USD,ETH/USD 2024-01-01 2024-01-31\n  \
            data import-api bars BTC/USD 2024-01-01 2024-12-31 --timeframe 1Hour --loc us\n  \
            data import-api trades AAPL240419P00140000 2024-04-01 2024-04-19\n  \
            data import-api corporate-actions AAPL,NVDA 2020-01-01 2024-12-31 --types forward_split\n  \
            data import-api bars --underlying AAPL --type put --strike-min 150 --strike-max 200 \
            2024-04-01 2024-04-30 --timeframe 1Min"
    )]
    ImportApi(Box<ImportArgs>),
    /// Load days from the Parquet store (HISTORICAL_DATA_PATH) into the database
    #[command(
        name = "load-historical",
        long_about = "Load quotes, trades or bars from the Parquet store (HISTORICAL_DATA_PATH, \
            written by `import-api --format parquet` or `archive`) into the database, through \
            the same batches, upserts and log lines as an API import. START and END work as \
            for import-api (bars: whole days); only the files and row groups that overlap the \
            range are read. Weekdays (bars: months) without a file are reported.",
        after_help = "Examples:\n  data load-historical quotes AAPL 2024-11-01 2024-11-30\n  \
            data load-historical trades AAPL,MSFT 2024-11-01 2024-11-30\n  \
            data load-historical bars AAPL 2024-01-01 2024-12-31 --timeframe 1Min"
    )]
    LoadHistorical(LoadArgs),
    /// Move database rows older than a cutoff into the Parquet store (verified, then deleted)
    #[command(
        long_about = "Move a symbol's raw quotes, trades or bars before the cutoff from the \
            database to the Parquet store, one file at a time (a New York day; bars: a calendar \
            month, moved once all of it is before the cutoff), through the same pipeline as an \
            import: the file is written atomically (merged with any file already there), read \
            back and verified (every database row compared), and only then are the rows deleted \
            from the database. A crash at any point loses nothing, and a rerun duplicates \
            nothing.",
        after_help = "Examples:\n  data archive quotes AAPL --older-than 30d\n  data archive trades AAPL --older-than 2024-07-01\n  \
            data archive bars AAPL --older-than 2024-07-01 --timeframe 1Min"
    )]
    Archive(ArchiveArgs),
    /// Write stored rows out as CSV, JSON lines or Parquet, for a spreadsheet, a script or a
    /// notebook
    #[command(
        long_about = "Write a symbol's (or several symbols') stored rows of a range out as CSV, \
            JSON lines or a Parquet file: from the database or the Parquet store, whichever holds \
            them (the database first), or the one --from names. The columns are the Parquet \
            store's (symbol, t as a UTC timestamp to the nanosecond, the dataset's fields), then \
            ny_date and ny_time, the New York date and wall-clock time of t. Rows come in time \
            order per symbol, streamed: memory stays flat however long the range. START and END \
            work as for import-api; END defaults to START (one day). CSV and JSON lines go to \
            standard output unless --output names a file; a file is written whole or not at \
            all (a temporary file renamed at the end).",
        after_help = "Examples:\n  data export quotes AAPL 2024-01-02 --to csv > aapl.csv\n  \
            data export bars AAPL 2024-01-01 2024-12-31 --timeframe 1Day --to jsonl\n  \
            data export trades AAPL,MSFT 2024-01-02 2024-01-31 --to parquet --output trades.parquet\n  \
            data export quotes AAPL 2024-01-02 --to csv --from store"
    )]
    Export(ExportArgs),
    /// Bring every dataset the store holds up to now (within the SIP delay)
    #[command(
        long_about = "Bring every dataset the store holds up to now: each (kind, symbol, feed, \
            timeframe, adjustment) already in the database (or, with --format parquet, the \
            Parquet store) is extended from its last day held to today, through the same \
            pipeline, resume points, SIP delay and logs as import-api. Holes inside a \
            dataset's span (listed by `data status`) are filled only with --fill-gaps. With \
            nothing to do it prints one line and exits 0, so it suits cron. One sync runs at \
            a time per store; a second one says so and does nothing.",
        after_help = "Examples:\n  data sync\n  data sync quotes --symbols AAPL,MSFT\n  \
            data sync --format parquet\n  data sync bars --fill-gaps"
    )]
    Sync(SyncArgs),
    /// List what the database and the Parquet store hold: per dataset and symbol, the date
    /// span, days, rows and missing trading days (NYSE calendar)
    #[command(
        after_help = "Examples:\n  data status\n  data status --json | jq '.holdings[] | {dataset, symbol, rows}'\n  \
            data status --html status.html\n  \
            data status --database-url postgres://user@host/market\n  \
            data status --historical-path /data/lake"
    )]
    Status(StatusArgs),
    /// Show the resolved settings
    #[command(after_help = "Examples:\n  data config show\n  data config show --feed iex")]
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print a shell completion script (bash, zsh or fish) to standard output
    #[command(
        after_help = "Examples:\n  data completions bash > ~/.local/share/bash-completion/completions/data\n  \
            data completions zsh > \"${fpath[1]}/_data\"\n  \
            data completions fish > ~/.config/fish/completions/data.fish"
    )]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What to import
    #[arg(value_enum)]
    pub kind: Kind,
    /// Symbols: one (AAPL) or a comma-separated list (AAPL,MSFT,BRK.B) of stock tickers,
    /// crypto pairs (BTC/USD) or option contracts (AAPL240419P00140000); left out with
    /// --symbols-file or --underlying
    pub symbols: String,
    /// First day (YYYY-MM-DD or today, from 04:00 New York) or RFC 3339 timestamp (or now)
    pub start: String,
    /// Last day, inclusive (YYYY-MM-DD or today, until 20:00 New York) or RFC 3339 timestamp
    /// (or now)
    pub end: Option<String>,
    /// Read the symbols from FILE, one per line (`#` starts a comment); the command line
    /// then gives only START and END
    #[arg(long, value_name = "FILE")]
    pub symbols_file: Option<std::path::PathBuf>,
    /// Ignore the progress of earlier runs and fetch the whole range again (rows are
    /// upserted, so nothing is duplicated)
    #[arg(long)]
    pub restart: bool,
    /// Alpaca's `asof` for renamed tickers: the date (YYYY-MM-DD) whose ticker names the
    /// company, so its history under former tickers comes labelled with this one; `-` turns
    /// the mapping off (raw per-ticker history). Left out, Alpaca maps as of today
    #[arg(long, value_name = "DATE|-")]
    pub asof: Option<String>,
    /// Say which days would be fetched, how many requests that takes at least and how long
    /// at the rate limit; fetch nothing, write nothing (no log file either)
    #[arg(long)]
    pub dry_run: bool,
    /// Import from the offline stand-in, started in this process on a free port with its
    /// own credentials: synthetic data for trying the tool, marked as such, never mixed
    /// with market data
    #[arg(long, conflicts_with = "api_url")]
    pub standin: bool,
    /// Share the job with every importer started with the same command, here or on other
    /// machines: each shard (a symbol's day) is claimed before it is fetched — in PostgreSQL,
    /// or in the Parquet store's bucket — so each is fetched once; an importer that dies
    /// leaves its shards to the others once its leases expire. Needs a PostgreSQL
    /// --database-url, or --format parquet with an s3://, gs:// or az:// --historical-path
    #[arg(long)]
    pub coordinate: bool,
    /// With --coordinate: how long a claim lasts unless its importer renews it (it does,
    /// every third of it, while alive)
    #[arg(long, value_name = "SECS", default_value_t = 30, requires = "coordinate",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub lease: u64,
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(flatten)]
    pub thin: ThinArgs,
    #[command(flatten)]
    pub dataset: DatasetArgs,
    #[command(flatten)]
    pub contracts: ContractArgs,
    /// Corporate actions of these types only (comma-separated): forward_split,
    /// reverse_split, unit_split, cash_dividend, stock_dividend, spin_off, cash_merger,
    /// stock_merger, stock_and_cash_merger, redemption, name_change, worthless_removal,
    /// rights_distribution, partial_call, reorganization
    #[arg(long, value_name = "LIST", help_heading = "Corporate actions")]
    pub types: Option<String>,
}

/// Option contract discovery: which contracts of an underlying to list and import.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Option contracts")]
pub struct ContractArgs {
    /// List this underlying's option contracts (the trading API's /v2/options/contracts,
    /// expired ones included), store them in option_contracts and import them; the command
    /// line then gives only START and END
    #[arg(long, value_name = "SYMBOL")]
    pub underlying: Option<String>,
    /// First expiry date to list (YYYY-MM-DD; default START's date)
    #[arg(long, value_name = "DATE", requires = "underlying")]
    pub expiry_from: Option<String>,
    /// Last expiry date to list (YYYY-MM-DD; default END's date)
    #[arg(long, value_name = "DATE", requires = "underlying")]
    pub expiry_to: Option<String>,
    /// Calls or puts only
    #[arg(long = "type", value_name = "call|put", requires = "underlying")]
    pub contract_type: Option<String>,
    /// Lowest strike to list
    #[arg(long, value_name = "PRICE", requires = "underlying")]
    pub strike_min: Option<f64>,
    /// Highest strike to list
    #[arg(long, value_name = "PRICE", requires = "underlying")]
    pub strike_max: Option<f64>,
}

/// Stocks or crypto: told by the symbols (`BTC/USD` is crypto), or said with `--asset`.
#[derive(Debug, Clone, Default, Args)]
pub struct AssetArgs {
    /// stocks, crypto or options (default: crypto for pairs like BTC/USD, options for OCC
    /// contract symbols like AAPL240419P00140000)
    #[arg(long, value_enum, help_heading = "Crypto")]
    pub asset: Option<data_core::dataset::Asset>,
    /// Crypto location: us (Alpaca, the default), us-1 (Kraken US), us-2, eu-1 (Kraken EU)
    /// or bs-1; each location's rows are kept apart
    #[arg(long, value_name = "LOC", help_heading = "Crypto")]
    pub loc: Option<String>,
}

/// Bars: the width and the price adjustment to ask Alpaca for.
#[derive(Debug, Args)]
pub struct BarArgs {
    /// Bar width for `bars`: 1Min, 5Min, 15Min, 1Hour or 1Day
    #[arg(long, value_name = "WIDTH", help_heading = "Bars")]
    pub timeframe: Option<String>,
    /// Price adjustment for `bars`: raw, split, dividend or all
    #[arg(long, value_name = "ADJ", default_value = "raw", help_heading = "Bars")]
    pub adjustment: String,
}

/// Quote thinning. Applied in this order: --nbbo-changes, then --sample, then --aggregate.
/// Thinned rows go to their own tables (quotes_thinned, quotes_aggregated), never to quotes.
#[derive(Debug, Clone, Default, Args)]
pub struct ThinArgs {
    /// Keep a quote only when bid or ask price or size differs from the last kept quote
    #[arg(long, help_heading = "Thinning")]
    pub nbbo_changes: bool,
    /// Keep every Nth quote (the 1st, the N+1th, ... counted from START)
    #[arg(long, value_name = "N", help_heading = "Thinning",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sample: Option<u64>,
    /// One row per WIDTH per symbol (e.g. 100ms, 1s, 1m): the last bid/ask of each interval
    /// and how many quotes it stands for
    #[arg(long, value_name = "WIDTH", help_heading = "Thinning")]
    pub aggregate: Option<String>,
}

/// The flags that pick a dataset beside its kind: the bars' timeframe and adjustment, and
/// the market (asset class, crypto location).
#[derive(Debug, Args)]
pub struct DatasetArgs {
    #[command(flatten)]
    pub bars: BarArgs,
    #[command(flatten)]
    pub asset: AssetArgs,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// What to load
    #[arg(value_enum)]
    pub kind: Kind,
    /// Symbols: one (AAPL) or a comma-separated list (AAPL,MSFT) of stock tickers, crypto
    /// pairs (BTC/USD) or option contracts
    pub symbol: String,
    /// First day (YYYY-MM-DD or today, from 04:00 New York) or RFC 3339 timestamp (or now)
    pub start: String,
    /// Last day, inclusive (YYYY-MM-DD or today, until 20:00 New York) or RFC 3339 timestamp
    /// (or now)
    pub end: String,
    #[command(flatten)]
    pub settings: StoreSettingsArgs,
    #[command(flatten)]
    pub dataset: DatasetArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export
    #[arg(value_enum)]
    pub kind: Kind,
    /// Symbols: one (AAPL) or a comma-separated list (AAPL,MSFT)
    pub symbol: String,
    /// First day (YYYY-MM-DD or today) or RFC 3339 timestamp (or now)
    pub start: String,
    /// Last day, inclusive (YYYY-MM-DD or today) or RFC 3339 timestamp (or now); START's
    /// day when left out
    pub end: Option<String>,
    /// The file format
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub to: ExportFormat,
    /// The file to write, or - for standard output (the default for csv and jsonl)
    #[arg(long, short = 'o', value_name = "FILE|-")]
    pub output: Option<String>,
    /// Where the rows are read: the database or the Parquet store (default: whichever holds
    /// rows of the range, the database first)
    #[arg(long, value_enum, value_name = "STORE")]
    pub from: Option<ExportFrom>,
    #[command(flatten)]
    pub settings: StoreSettingsArgs,
    #[command(flatten)]
    pub dataset: DatasetArgs,
}

/// `export --to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values with a header line (lists as JSON arrays)
    Csv,
    /// One JSON object per line
    Jsonl,
    /// One Parquet file (zstd)
    Parquet,
}

/// `export --from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFrom {
    /// The database (--database-url)
    Database,
    /// The Parquet store (--historical-path)
    Store,
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// What to archive
    #[arg(value_enum)]
    pub kind: Kind,
    /// Ticker symbol, e.g. AAPL
    pub symbol: String,
    /// Archive days before this: a number of days before today in New York (30d) or a date
    /// (YYYY-MM-DD, not included)
    #[arg(long, value_name = "AGE|DATE")]
    pub older_than: String,
    #[command(flatten)]
    pub settings: StoreSettingsArgs,
    #[command(flatten)]
    pub dataset: DatasetArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the same as JSON, every day included, for scripts
    #[arg(long, conflicts_with = "html")]
    pub json: bool,
    /// Also write a small self-contained page: a heatmap of rows per trading day
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub settings: StoreSettingsArgs,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this kind of data (all kinds when left out)
    #[arg(value_enum)]
    pub kind: Option<Kind>,
    /// Only these symbols (comma-separated)
    #[arg(long, value_name = "LIST")]
    pub symbols: Option<String>,
    /// Also fetch the missing trading days inside each dataset's span
    #[arg(long)]
    pub fill_gaps: bool,
    /// Say what each dataset would fetch, without fetching or writing anything
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print every resolved setting and where it came from (flag, env, file or default);
    /// secrets are redacted
    #[command(
        after_help = "Examples:\n  data config show\n  BULK_IMPORT_BATCH_SIZE=5000 data config show"
    )]
    Show(SettingsArgs),
}
