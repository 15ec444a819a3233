-- Options, as in migrations/sqlite/0009_options.sql.
CREATE TABLE IF NOT EXISTS option_trades (
    symbol_id INTEGER          NOT NULL,
    t         BIGINT           NOT NULL,
    seq       INTEGER          NOT NULL,
    exchange  TEXT             NOT NULL,
    price     DOUBLE PRECISION NOT NULL,
    size      BIGINT           NOT NULL,
    condition TEXT             NOT NULL,
    PRIMARY KEY (symbol_id, t, seq)
);

CREATE TABLE IF NOT EXISTS option_bars (
    symbol_id   INTEGER          NOT NULL,
    timeframe   TEXT             NOT NULL,
    t           BIGINT           NOT NULL,
    open        DOUBLE PRECISION NOT NULL,
    high        DOUBLE PRECISION NOT NULL,
    low         DOUBLE PRECISION NOT NULL,
    close       DOUBLE PRECISION NOT NULL,
    volume      BIGINT           NOT NULL,
    trade_count BIGINT           NOT NULL,
    vwap        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (symbol_id, timeframe, t)
);

CREATE TABLE IF NOT EXISTS option_contracts (
    symbol             TEXT PRIMARY KEY,
    id                 TEXT NOT NULL,
    name               TEXT NOT NULL,
    underlying_symbol  TEXT NOT NULL,
    root_symbol        TEXT NOT NULL,
    expiration_date    TEXT NOT NULL,
    type               TEXT NOT NULL,
    style              TEXT NOT NULL,
    strike_price       TEXT NOT NULL,
    strike             DOUBLE PRECISION NOT NULL,
    multiplier         TEXT NOT NULL,
    size               TEXT NOT NULL,
    status             TEXT NOT NULL,
    tradable           BIGINT NOT NULL,
    open_interest      TEXT,
    open_interest_date TEXT,
    close_price        TEXT,
    close_price_date   TEXT,
    listed_at          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS option_contracts_underlying_idx
    ON option_contracts (underlying_symbol, expiration_date);

CREATE OR REPLACE VIEW option_trades_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike,
       to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.seq, q.exchange, q.price, q.size,
       q.condition
FROM option_trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;

CREATE OR REPLACE VIEW option_bars_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike, q.timeframe,
       to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.open, q.high, q.low, q.close,
       q.volume, q.trade_count, q.vwap
FROM option_bars q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;
