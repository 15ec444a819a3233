-- Views of trades and bars as the other tables have them: the ticker and feed, the time as
-- a timestamp with time zone (microseconds), the New York date, and the exact nanoseconds
-- `t_ns`. Filter on `t_ns`, which is indexed, not on `time_utc` (see docs/stores/postgresql.md).
CREATE OR REPLACE VIEW trades_view AS
SELECT s.symbol, s.feed, to_timestamp(q.t / 1e9) AS time_utc,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date,
       q.t AS t_ns, q.exchange, q.trade_id, q.price, q.size, q.conditions, q.tape,
       q.update_flag
FROM trades q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW bars_view AS
SELECT s.symbol, s.feed, q.timeframe, q.adjustment, to_timestamp(q.t / 1e9) AS time_utc,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date,
       q.t AS t_ns, q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap
FROM bars q JOIN symbols s ON s.id = q.symbol_id;
