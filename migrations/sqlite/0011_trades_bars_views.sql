-- Views of trades and bars as the other tables have them: the ticker and feed, the time as
-- RFC 3339 UTC text (SQLite has no timestamp type), the New York date (the session's, as
-- the import keys it), and the exact nanoseconds `t_ns`. Filter on `t_ns`, which is
-- indexed, not on the text columns (see docs/stores/sqlite.md).
CREATE VIEW IF NOT EXISTS trades_view AS
SELECT s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       date(q.t / 1000000000 - 14400, 'unixepoch') AS ny_date,
       q.t AS t_ns, q.exchange, q.trade_id, q.price, q.size, q.conditions, q.tape,
       q.update_flag
FROM trades q JOIN symbols s ON s.id = q.symbol_id;

CREATE VIEW IF NOT EXISTS bars_view AS
SELECT s.symbol, s.feed, q.timeframe, q.adjustment,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       date(q.t / 1000000000 - 14400, 'unixepoch') AS ny_date,
       q.t AS t_ns, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap
FROM bars q JOIN symbols s ON s.id = q.symbol_id;
