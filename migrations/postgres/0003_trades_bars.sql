-- Trades and bars, as in migrations/sqlite/0004_trades_bars.sql.
CREATE TABLE IF NOT EXISTS trades (
    symbol_id   INTEGER          NOT NULL,
    day         INTEGER          NOT NULL,
    exchange    TEXT             NOT NULL,
    trade_id    BIGINT           NOT NULL,
    t           BIGINT           NOT NULL,
    price       DOUBLE PRECISION NOT NULL,
    size        BIGINT           NOT NULL,
    conditions  TEXT             NOT NULL,
    tape        TEXT             NOT NULL,
    update_flag TEXT             NOT NULL,
    PRIMARY KEY (symbol_id, day, exchange, trade_id)
);
CREATE INDEX IF NOT EXISTS trades_time_idx ON trades (symbol_id, t);

CREATE TABLE IF NOT EXISTS bars (
    symbol_id   INTEGER          NOT NULL,
    timeframe   TEXT             NOT NULL,
    adjustment  TEXT             NOT NULL,
    t           BIGINT           NOT NULL,
    open        DOUBLE PRECISION NOT NULL,
    high        DOUBLE PRECISION NOT NULL,
    low         DOUBLE PRECISION NOT NULL,
    close       DOUBLE PRECISION NOT NULL,
    volume      BIGINT           NOT NULL,
    trade_count BIGINT           NOT NULL,
    vwap        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (symbol_id, timeframe, adjustment, t)
);
