//! Every setting declared once: its TOML key (in `config/default.toml`), environment
//! variable, flag, default and meaning. Resolution (`config::resolve`), `config show`, the
//! settings reference (`docs/reference/settings.md`) and `config/default.toml` are all read
//! or generated from this table (`cargo xtask docs`).

/// One setting: where it can come from and its default.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub env: &'static str,
    pub flag: &'static str,
    pub default: &'static str,
    pub about: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "batch_size",
        env: "BULK_IMPORT_BATCH_SIZE",
        flag: "--batch-size",
        default: "10000",
        about: "rows per committed batch (1-1000000)",
    },
    Key {
        name: "skip_duplicates",
        env: "BULK_IMPORT_SKIP_DUPLICATES",
        flag: "--skip-duplicates",
        default: "false",
        about: "plain INSERT instead of upsert for a range that holds no rows yet",
    },
    Key {
        name: "drop_indexes",
        env: "BULK_IMPORT_DROP_INDEXES",
        flag: "--drop-indexes",
        default: "false",
        about: "drop secondary indexes during the import, rebuild them after",
    },
    Key {
        name: "format",
        env: "HISTORICAL_DATA_FORMAT",
        flag: "--format",
        default: "database",
        about: "where imports go: database or parquet",
    },
    Key {
        name: "historical_path",
        env: "HISTORICAL_DATA_PATH",
        flag: "--historical-path",
        default: "data/historical",
        about: "folder of the Parquet store",
    },
    Key {
        name: "database_url",
        env: "DATABASE_URL",
        flag: "--database-url",
        default: "sqlite:data/market.db",
        about: "database: sqlite:PATH or a file path",
    },
    Key {
        name: "log_file",
        env: "BULK_IMPORT_LOG_FILE",
        flag: "--log-file",
        default: "data/logs/app.log",
        about: "log file the batch lines are appended to",
    },
    Key {
        name: "api_url",
        env: "APCA_API_DATA_URL",
        flag: "--api-url",
        default: "https://data.alpaca.markets",
        about: "Alpaca Market Data base URL (scheme and host)",
    },
    Key {
        name: "trading_api_url",
        env: "APCA_API_BASE_URL",
        flag: "--trading-api-url",
        default: "https://paper-api.alpaca.markets",
        about: "Alpaca Trading API base URL, for the option contract list (paper or live: https://api.alpaca.markets)",
    },
    Key {
        name: "feed",
        env: "APCA_API_FEED",
        flag: "--feed",
        default: "sip",
        about: "Alpaca feed: sip, iex, otc or boats; each feed's rows are kept apart",
    },
    Key {
        name: "sip_delay",
        env: "BULK_IMPORT_SIP_DELAY",
        flag: "--sip-delay",
        default: "15",
        about: "minutes before now that feed=sip data is asked up to (Alpaca's free plan refuses the last 15); 0 on a paid plan",
    },
    Key {
        name: "max_attempts",
        env: "BULK_IMPORT_MAX_ATTEMPTS",
        flag: "--max-attempts",
        default: "8",
        about: "attempts per API request before giving up (1-100)",
    },
    Key {
        name: "retry_base_ms",
        env: "BULK_IMPORT_RETRY_BASE_MS",
        flag: "--retry-base-ms",
        default: "500",
        about: "first retry delay in ms, doubling per attempt with jitter up to 30 s",
    },
    Key {
        name: "request_timeout",
        env: "BULK_IMPORT_REQUEST_TIMEOUT",
        flag: "--request-timeout",
        default: "60",
        about: "seconds one API request may take (1-3600)",
    },
    Key {
        name: "rate_limit",
        env: "BULK_IMPORT_RATE_LIMIT",
        flag: "--rate-limit",
        default: "200",
        about: "API requests per minute, your plan's limit (free 200, paid 10000); 0 = no client-side limit",
    },
    Key {
        name: "concurrency",
        env: "BULK_IMPORT_CONCURRENCY",
        flag: "--concurrency",
        default: "auto",
        about: "requests in flight (1-64), each paging in order; auto adapts it (AIMD: one more while every fetcher is busy, halved on a 429 or a retried failure)",
    },
    Key {
        name: "symbols_per_request",
        env: "BULK_IMPORT_SYMBOLS_PER_REQUEST",
        flag: "--symbols-per-request",
        default: "auto",
        about: "symbols' days (bars: months) one request asks for together (1-100); auto = 1 for quotes and trades, by timeframe for bars",
    },
    Key {
        name: "busy_timeout",
        env: "BULK_IMPORT_BUSY_TIMEOUT",
        flag: "--busy-timeout",
        default: "10",
        about: "seconds to wait for another writer's database lock (0-3600)",
    },
];

/// The Alpaca credentials `config show` reports as set or not (environment only, never
/// printed). Every credential the tool scrubs, cloud ones included, is in
/// `secrets::SECRET_ENVS`.
pub const SECRET_ENVS: &[&str] = &["APCA_API_KEY_ID", "APCA_API_SECRET_KEY"];
