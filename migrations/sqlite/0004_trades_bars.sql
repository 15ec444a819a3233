-- Trades: one row per trade. Alpaca trade ids are unique per symbol, exchange and day, so the
-- key is (symbol_id, day, exchange, trade_id), with day the New York date as YYYYMMDD: a
-- correction (u = 'corrected') arrives with the id and exchange of the trade it corrects and
-- overwrites that row rather than adding one. update_flag is Alpaca's u ('' for a plain
-- trade). t is integer nanoseconds UTC, as in quotes.
CREATE TABLE IF NOT EXISTS trades (
    symbol_id   INTEGER NOT NULL,
    day         INTEGER NOT NULL,
    exchange    TEXT    NOT NULL,
    trade_id    INTEGER NOT NULL,
    t           INTEGER NOT NULL,
    price       REAL    NOT NULL,
    size        INTEGER NOT NULL,
    conditions  TEXT    NOT NULL,
    tape        TEXT    NOT NULL,
    update_flag TEXT    NOT NULL,
    PRIMARY KEY (symbol_id, day, exchange, trade_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trades_time_idx ON trades (symbol_id, t);

-- Bars, keyed by symbol, timeframe ('1Min', '5Min', '15Min', '1Hour', '1Day'), adjustment
-- ('raw', 'split', 'dividend', 'all') and opening time t (ns UTC; a daily bar opens at New
-- York midnight).
CREATE TABLE IF NOT EXISTS bars (
    symbol_id   INTEGER NOT NULL,
    timeframe   TEXT    NOT NULL,
    adjustment  TEXT    NOT NULL,
    t           INTEGER NOT NULL,
    open        REAL    NOT NULL,
    high        REAL    NOT NULL,
    low         REAL    NOT NULL,
    close       REAL    NOT NULL,
    volume      INTEGER NOT NULL,
    trade_count INTEGER NOT NULL,
    vwap        REAL    NOT NULL,
    PRIMARY KEY (symbol_id, timeframe, adjustment, t)
) WITHOUT ROWID;
