-- The New York date on every view of market data, as trades_view and bars_view have it
-- (0011): the session's date, the import's key for a day. SQLite has no time zones, so it is
-- the date of the time 4 hours before UTC, which is New York's date for every time of the
-- extended session (04:00-20:00 New York) in summer and winter alike. Crypto, whose days are
-- UTC days here, gets its UTC date. Appended as the last column, so a query naming columns
-- reads as before. Filter on `t_ns` (indexed), not on the text columns (docs/stores/sqlite.md).
DROP VIEW IF EXISTS quotes_view;
CREATE VIEW quotes_view AS
SELECT s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape,
       date(q.t / 1000000000 - 14400, 'unixepoch') AS ny_date
FROM quotes q JOIN symbols s ON s.id = q.symbol_id;

DROP VIEW IF EXISTS quotes_thinned_view;
CREATE VIEW quotes_thinned_view AS
SELECT th.spec AS thinning, s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape,
       date(q.t / 1000000000 - 14400, 'unixepoch') AS ny_date
FROM quotes_thinned q
JOIN symbols s ON s.id = q.symbol_id
JOIN thinnings th ON th.id = q.thinning_id;

DROP VIEW IF EXISTS quotes_aggregated_view;
CREATE VIEW quotes_aggregated_view AS
SELECT th.spec AS thinning, s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.bucket_t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.bucket_t % 1000000000) || 'Z' AS interval_utc,
       q.bucket_t AS bucket_t_ns, q.last_t AS last_t_ns,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape, q.quote_count,
       date(q.bucket_t / 1000000000 - 14400, 'unixepoch') AS ny_date
FROM quotes_aggregated q
JOIN symbols s ON s.id = q.symbol_id
JOIN thinnings th ON th.id = q.thinning_id;

DROP VIEW IF EXISTS crypto_quotes_view;
CREATE VIEW crypto_quotes_view AS
SELECT s.symbol, s.feed AS loc,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq, q.bid_price, q.bid_size, q.ask_price, q.ask_size,
       date(q.t / 1000000000, 'unixepoch') AS utc_date
FROM crypto_quotes q JOIN symbols s ON s.id = q.symbol_id;

DROP VIEW IF EXISTS crypto_trades_view;
CREATE VIEW crypto_trades_view AS
SELECT s.symbol, s.feed AS loc,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.trade_id, q.price, q.size, q.taker_side,
       date(q.t / 1000000000, 'unixepoch') AS utc_date
FROM crypto_trades q JOIN symbols s ON s.id = q.symbol_id;

DROP VIEW IF EXISTS crypto_bars_view;
CREATE VIEW crypto_bars_view AS
SELECT s.symbol, s.feed AS loc, q.timeframe,
       strftime('%Y-%m-%dT%H:%M:%SZ', q.t / 1000000000, 'unixepoch') AS time_utc,
       q.t AS t_ns, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap,
       date(q.t / 1000000000, 'unixepoch') AS utc_date
FROM crypto_bars q JOIN symbols s ON s.id = q.symbol_id;

DROP VIEW IF EXISTS option_trades_view;
CREATE VIEW option_trades_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq, q.exchange, q.price, q.size, q.condition,
       date(q.t / 1000000000 - 14400, 'unixepoch') AS ny_date
FROM option_trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;

DROP VIEW IF EXISTS option_bars_view;
CREATE VIEW option_bars_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike, q.timeframe,
       strftime('%Y-%m-%dT%H:%M:%SZ', q.t / 1000000000, 'unixepoch') AS time_utc,
       q.t AS t_ns, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap,
       date(q.t / 1000000000 - 14400, 'unixepoch') AS ny_date
FROM option_bars q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;
