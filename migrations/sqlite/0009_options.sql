-- Options (Alpaca's /v1beta1/options/...): contracts by OCC symbol (AAPL240419P00140000) in
-- `symbols`, feed 'opra'. Alpaca serves no historical option quotes: trades and bars only.

-- Trades: exchange code, price, size and one condition code (options carry a single one,
-- not a list); no trade id, so seq (the ordinal among the contract's trades sharing a
-- nanosecond, in API order) keys them, as in quotes.
CREATE TABLE IF NOT EXISTS option_trades (
    symbol_id INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    exchange  TEXT    NOT NULL,
    price     REAL    NOT NULL,
    size      INTEGER NOT NULL,
    condition TEXT    NOT NULL,
    PRIMARY KEY (symbol_id, t, seq)
) WITHOUT ROWID;

-- Bars, keyed by contract, timeframe and opening time; never adjusted.
CREATE TABLE IF NOT EXISTS option_bars (
    symbol_id   INTEGER NOT NULL,
    timeframe   TEXT    NOT NULL,
    t           INTEGER NOT NULL,
    open        REAL    NOT NULL,
    high        REAL    NOT NULL,
    low         REAL    NOT NULL,
    close       REAL    NOT NULL,
    volume      INTEGER NOT NULL,
    trade_count INTEGER NOT NULL,
    vwap        REAL    NOT NULL,
    PRIMARY KEY (symbol_id, timeframe, t)
) WITHOUT ROWID;

-- The contracts found by `import-api --underlying` (the trading API's /v2/options/contracts),
-- one row per OCC symbol, refreshed on every listing. Decimal fields stay the strings Alpaca
-- sends (strike_price '140', multiplier '100'); strike is also a number for range queries.
CREATE TABLE IF NOT EXISTS option_contracts (
    symbol            TEXT PRIMARY KEY,
    id                TEXT NOT NULL,
    name              TEXT NOT NULL,
    underlying_symbol TEXT NOT NULL,
    root_symbol       TEXT NOT NULL,
    expiration_date   TEXT NOT NULL,
    type              TEXT NOT NULL,
    style             TEXT NOT NULL,
    strike_price      TEXT NOT NULL,
    strike            REAL NOT NULL,
    multiplier        TEXT NOT NULL,
    size              TEXT NOT NULL,
    status            TEXT NOT NULL,
    tradable          INTEGER NOT NULL,
    open_interest     TEXT,
    open_interest_date TEXT,
    close_price       TEXT,
    close_price_date  TEXT,
    listed_at         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS option_contracts_underlying_idx
    ON option_contracts (underlying_symbol, expiration_date);

CREATE VIEW IF NOT EXISTS option_trades_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq, q.exchange, q.price, q.size, q.condition
FROM option_trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;

CREATE VIEW IF NOT EXISTS option_bars_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike, q.timeframe,
       strftime('%Y-%m-%dT%H:%M:%SZ', q.t / 1000000000, 'unixepoch') AS time_utc,
       q.t AS t_ns, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap
FROM option_bars q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;
