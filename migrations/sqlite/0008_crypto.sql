-- Crypto (Alpaca's /v1beta3/crypto/{loc}/...): pairs such as BTC/USD in `symbols`, with the
-- location (us, us-1, ...) in its `feed` column. Sizes and volumes are fractional, kept as
-- the double the API's JSON number parses to. t is integer nanoseconds UTC, as elsewhere.

-- Quotes: no exchanges, conditions or tape. Keyed like stock quotes: seq is the quote's
-- ordinal among the pair's quotes sharing its nanosecond.
CREATE TABLE IF NOT EXISTS crypto_quotes (
    symbol_id INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    bid_price REAL    NOT NULL,
    bid_size  REAL    NOT NULL,
    ask_price REAL    NOT NULL,
    ask_size  REAL    NOT NULL,
    PRIMARY KEY (symbol_id, t, seq)
) WITHOUT ROWID;

-- Trades: the trade id is unique per pair; taker_side is Alpaca's tks (B buyer, S seller,
-- '-' unknown; '' when not sent). Never corrected.
CREATE TABLE IF NOT EXISTS crypto_trades (
    symbol_id  INTEGER NOT NULL,
    t          INTEGER NOT NULL,
    trade_id   INTEGER NOT NULL,
    price      REAL    NOT NULL,
    size       REAL    NOT NULL,
    taker_side TEXT    NOT NULL,
    PRIMARY KEY (symbol_id, t, trade_id)
) WITHOUT ROWID;

-- Bars, keyed by pair, timeframe and opening time (UTC). Never adjusted. A bar without
-- trades has volume 0 and prices from quotes, as Alpaca sends it.
CREATE TABLE IF NOT EXISTS crypto_bars (
    symbol_id   INTEGER NOT NULL,
    timeframe   TEXT    NOT NULL,
    t           INTEGER NOT NULL,
    open        REAL    NOT NULL,
    high        REAL    NOT NULL,
    low         REAL    NOT NULL,
    close       REAL    NOT NULL,
    volume      REAL    NOT NULL,
    trade_count INTEGER NOT NULL,
    vwap        REAL    NOT NULL,
    PRIMARY KEY (symbol_id, timeframe, t)
) WITHOUT ROWID;

CREATE VIEW IF NOT EXISTS crypto_quotes_view AS
SELECT s.symbol, s.feed AS loc,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq, q.bid_price, q.bid_size, q.ask_price, q.ask_size
FROM crypto_quotes q JOIN symbols s ON s.id = q.symbol_id;

CREATE VIEW IF NOT EXISTS crypto_trades_view AS
SELECT s.symbol, s.feed AS loc,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.trade_id, q.price, q.size, q.taker_side
FROM crypto_trades q JOIN symbols s ON s.id = q.symbol_id;

CREATE VIEW IF NOT EXISTS crypto_bars_view AS
SELECT s.symbol, s.feed AS loc, q.timeframe,
       strftime('%Y-%m-%dT%H:%M:%SZ', q.t / 1000000000, 'unixepoch') AS time_utc,
       q.t AS t_ns, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap
FROM crypto_bars q JOIN symbols s ON s.id = q.symbol_id;
