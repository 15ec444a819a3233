-- The New York date on every view of market data, as trades_view and bars_view have it
-- (0011), from the time zone database; crypto, whose days are UTC days here, gets its UTC
-- date. `CREATE OR REPLACE VIEW` may only add columns at the end, so the date is the last
-- column. Filter on `t_ns` (indexed), not on `time_utc` (docs/stores/postgresql.md).
CREATE OR REPLACE VIEW quotes_view AS
SELECT s.symbol, s.feed, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date
FROM quotes q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW quotes_thinned_view AS
SELECT th.spec AS thinning, s.symbol, s.feed, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns,
       q.seq, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date
FROM quotes_thinned q JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id;

CREATE OR REPLACE VIEW quotes_aggregated_view AS
SELECT th.spec AS thinning, s.symbol, s.feed, to_timestamp(q.bucket_t / 1e9) AS interval_utc,
       q.bucket_t AS bucket_t_ns, q.last_t AS last_t_ns,
       q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape, q.quote_count,
       (to_timestamp(q.bucket_t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date
FROM quotes_aggregated q JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id;

CREATE OR REPLACE VIEW crypto_quotes_view AS
SELECT s.symbol, s.feed AS loc, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.seq,
       q.bid_price, q.bid_size, q.ask_price, q.ask_size,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'UTC')::date AS utc_date
FROM crypto_quotes q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW crypto_trades_view AS
SELECT s.symbol, s.feed AS loc, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.trade_id,
       q.price, q.size, q.taker_side,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'UTC')::date AS utc_date
FROM crypto_trades q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW crypto_bars_view AS
SELECT s.symbol, s.feed AS loc, q.timeframe, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns,
       q.open, q.high, q.low, q.close, q.volume, q.trade_count, q.vwap,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'UTC')::date AS utc_date
FROM crypto_bars q JOIN symbols s ON s.id = q.symbol_id;

CREATE OR REPLACE VIEW option_trades_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike,
       to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.seq, q.exchange, q.price, q.size,
       q.condition,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date
FROM option_trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;

CREATE OR REPLACE VIEW option_bars_view AS
SELECT s.symbol, c.underlying_symbol, c.expiration_date, c.type, c.strike, q.timeframe,
       to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.open, q.high, q.low, q.close,
       q.volume, q.trade_count, q.vwap,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS ny_date
FROM option_bars q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN option_contracts c ON c.symbol = s.symbol;
