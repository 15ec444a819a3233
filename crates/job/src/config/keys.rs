//! Every setting declared once: its TOML key (in `config/default.toml`), environment
//! variable, flag, default and meaning. Resolution (`config::resolve`), `config show`, the
//! settings reference (`docs/reference/settings.md`) and `config/default.toml` are all read
//! or generated from this table (`cargo xtask docs`).

/// One setting: where it can come from, its default and its meaning. Its flag on every
/// command that takes settings is made from this row (`SettingsArgs`), and so are its
/// lines in `--help`, `config show`, the reference pages and `config/default.toml`.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The TOML key, and the name `config show` and errors use.
    pub name: &'static str,
    pub env: &'static str,
    pub flag: &'static str,
    /// The flag's value in `--help` (`N`, `URL`); empty for a switch (a flag alone means
    /// true).
    pub value: &'static str,
    pub default: &'static str,
    /// What it does, one sentence without its final period (`--help` adds the variable and
    /// the default).
    pub help: &'static str,
    /// Which commands take it as a flag.
    pub scope: Scope,
}

/// Which commands take a setting as a flag (every setting can come from the environment
/// or the settings file whatever the command).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Where rows are and how they are written: every command that opens a store.
    Store,
    /// How the Alpaca API is asked: `import-api`, `sync` and `config show` only.
    Import,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "batch_size",
        env: "BULK_IMPORT_BATCH_SIZE",
        flag: "--batch-size",
        value: "N",
        default: "10000",
        scope: Scope::Store,
        help: "Rows per committed batch, 1-1000000",
    },
    Key {
        name: "skip_duplicates",
        env: "BULK_IMPORT_SKIP_DUPLICATES",
        flag: "--skip-duplicates",
        value: "",
        default: "false",
        scope: Scope::Store,
        help: "Plain INSERT instead of upsert, for a range that holds no rows yet (falls back to upsert, and says so, when it does)",
    },
    Key {
        name: "drop_indexes",
        env: "BULK_IMPORT_DROP_INDEXES",
        flag: "--drop-indexes",
        value: "",
        default: "false",
        scope: Scope::Store,
        help: "Drop secondary indexes for the import and rebuild them after; an interrupted run's indexes are rebuilt by the next command that opens the database",
    },
    Key {
        name: "format",
        env: "HISTORICAL_DATA_FORMAT",
        flag: "--format",
        value: "FORMAT",
        default: "database",
        scope: Scope::Store,
        help: "Where imports go: database or parquet",
    },
    Key {
        name: "historical_path",
        env: "HISTORICAL_DATA_PATH",
        flag: "--historical-path",
        value: "PATH",
        default: "data/historical",
        scope: Scope::Store,
        help: "The Parquet store: a folder, or s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX",
    },
    Key {
        name: "database_url",
        env: "DATABASE_URL",
        flag: "--database-url",
        value: "URL",
        default: "sqlite:data/market.db",
        scope: Scope::Store,
        help: "Database: sqlite:PATH or a file path; folders are created",
    },
    Key {
        name: "log_file",
        env: "BULK_IMPORT_LOG_FILE",
        flag: "--log-file",
        value: "PATH",
        default: "data/logs/app.log",
        scope: Scope::Store,
        help: "Log file the batch lines are appended to",
    },
    Key {
        name: "api_url",
        env: "APCA_API_DATA_URL",
        flag: "--api-url",
        value: "URL",
        default: "https://data.alpaca.markets",
        scope: Scope::Import,
        help: "Alpaca Market Data base URL, scheme and host",
    },
    Key {
        name: "trading_api_url",
        env: "APCA_API_BASE_URL",
        flag: "--trading-api-url",
        value: "URL",
        default: "https://paper-api.alpaca.markets",
        scope: Scope::Import,
        help: "Alpaca Trading API base URL, for `--underlying`'s contract list: paper, or live https://api.alpaca.markets",
    },
    Key {
        name: "feed",
        env: "APCA_API_FEED",
        flag: "--feed",
        value: "FEED",
        default: "sip",
        scope: Scope::Store,
        help: "Alpaca feed: sip (all exchanges), iex (free plan), otc or boats; each feed's rows are kept apart",
    },
    Key {
        name: "sip_delay",
        env: "BULK_IMPORT_SIP_DELAY",
        flag: "--sip-delay",
        value: "MINUTES",
        default: "15",
        scope: Scope::Import,
        help: "Minutes before now that feed=sip data is asked up to: an END later than that is clamped (Alpaca's free plan refuses the last 15 minutes of SIP data); 0 on a paid plan",
    },
    Key {
        name: "max_attempts",
        env: "BULK_IMPORT_MAX_ATTEMPTS",
        flag: "--max-attempts",
        value: "N",
        default: "8",
        scope: Scope::Import,
        help: "Attempts per API request before giving up, 1-100",
    },
    Key {
        name: "retry_base_ms",
        env: "BULK_IMPORT_RETRY_BASE_MS",
        flag: "--retry-base-ms",
        value: "MS",
        default: "500",
        scope: Scope::Import,
        help: "First retry delay in ms, doubling per attempt with jitter up to 30 s",
    },
    Key {
        name: "request_timeout",
        env: "BULK_IMPORT_REQUEST_TIMEOUT",
        flag: "--request-timeout",
        value: "SECS",
        default: "60",
        scope: Scope::Import,
        help: "Seconds one API request may take, 1-3600",
    },
    Key {
        name: "rate_limit",
        env: "BULK_IMPORT_RATE_LIMIT",
        flag: "--rate-limit",
        value: "N",
        default: "200",
        scope: Scope::Import,
        help: "API requests per minute: your plan's limit (free 200, paid 10000); 0 = no client-side limit",
    },
    Key {
        name: "concurrency",
        env: "BULK_IMPORT_CONCURRENCY",
        flag: "--concurrency",
        value: "K|auto",
        default: "auto",
        scope: Scope::Import,
        help: "Requests in flight, each paging in order, 1-64; or auto: adapted while running (one more while every fetcher is busy and the rate limit has room, halved on a 429 or a retried failure, one fewer while the writer is behind)",
    },
    Key {
        name: "symbols_per_request",
        env: "BULK_IMPORT_SYMBOLS_PER_REQUEST",
        flag: "--symbols-per-request",
        value: "N|auto",
        default: "auto",
        scope: Scope::Import,
        help: "Symbols whose same day (bars: month) one request asks for together, 1-100, or auto (1 for quotes and trades; bars by timeframe, so a month of them fills one page). More saves requests on thinly traded watch lists",
    },
    Key {
        name: "busy_timeout",
        env: "BULK_IMPORT_BUSY_TIMEOUT",
        flag: "--busy-timeout",
        value: "SECS",
        default: "10",
        scope: Scope::Store,
        help: "Seconds to wait for another writer's database lock, 0-3600",
    },
];

/// The Alpaca credentials `config show` reports as set or not (environment only, never
/// printed). Every credential the tool scrubs, cloud ones included, is in
/// `secrets::SECRET_ENVS`.
pub const SECRET_ENVS: &[&str] = &["APCA_API_KEY_ID", "APCA_API_SECRET_KEY"];
