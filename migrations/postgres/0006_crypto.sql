-- Crypto, as in migrations/sqlite/0008_crypto.sql.
CREATE TABLE IF NOT EXISTS crypto_quotes (
    symbol_id INTEGER          NOT NULL,
    t         BIGINT           NOT NULL,
    seq       INTEGER          NOT NULL,
    bid_price DOUBLE PRECISION NOT NULL,
    bid_size  DOUBLE PRECISION NOT NULL,
    ask_price DOUBLE PRECISION NOT NULL,
    ask_size  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (symbol_id, t, seq)
);

CREATE TABLE IF NOT EXISTS crypto_trades (
    symbol_id  INTEGER          NOT NULL,
    t          BIGINT           NOT NULL,
    trade_id   BIGINT           NOT NULL,
    price      DOUBLE PRECISION NOT NULL,
    size       DOUBLE PRECISION NOT NULL,
    taker_side TEXT             NOT NULL,
    PRIMARY KEY (symbol_id, t, trade_id)
);

CREATE TABLE IF NOT EXISTS crypto_bars (
    symbol_id   INTEGER          NOT NULL,
    timeframe   TEXT             NOT NULL,
    t           BIGINT           NOT NULL,
    open        DOUBLE PRECISION NOT NULL,
    high        DOUBLE PRECISION NOT NULL,
    low         DOUBLE PRECISION NOT NULL,
    close       DOUBLE PRECISION NOT NULL,
    volume      DOUBLE PRECISION NOT NULL,
    trade_count BIGINT           NOT NULL,
    vwap        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (symbol_id, timeframe, t)
);

CREATE OR REPLACE VIEW crypto_quotes_view AS
SELECT s.symbol, s.feed AS loc, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.seq,
       q.bid_price, q.bid_size, q.ask_price, q.ask_size
FROM crypto_quotes q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW crypto_trades_view AS
SELECT s.symbol, s.feed AS loc, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.trade_id,
       q.price, q.size, q.taker_side
FROM crypto_trades q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW crypto_bars_view AS
SELECT s.symbol, s.feed AS loc, q.timeframe, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns,
       q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap
FROM crypto_bars q JOIN symbols s ON s.id = q.symbol_id;
