-- The feed is part of a dataset's identity (see migrations/sqlite/0006): a `symbols` row is a
-- (symbol, feed) pair; rows imported before were imported with the default feed, sip.
ALTER TABLE symbols ADD COLUMN IF NOT EXISTS feed TEXT NOT NULL DEFAULT 'sip';
ALTER TABLE symbols DROP CONSTRAINT IF EXISTS symbols_symbol_key;
ALTER TABLE symbols ADD CONSTRAINT symbols_symbol_feed_key UNIQUE (symbol, feed);

DROP VIEW IF EXISTS quotes_view;
DROP VIEW IF EXISTS quotes_thinned_view;
DROP VIEW IF EXISTS quotes_aggregated_view;

CREATE VIEW quotes_view AS
SELECT s.symbol, s.feed, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape
FROM quotes q JOIN symbols s ON s.id = q.symbol_id;

CREATE VIEW quotes_thinned_view AS
SELECT th.spec AS thinning, s.symbol, s.feed, to_timestamp(q.t / 1e9) AS time_utc, q.t AS t_ns,
       q.seq, q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape
FROM quotes_thinned q JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id;

CREATE VIEW quotes_aggregated_view AS
SELECT th.spec AS thinning, s.symbol, s.feed, to_timestamp(q.bucket_t / 1e9) AS interval_utc,
       q.bucket_t AS bucket_t_ns, q.last_t AS last_t_ns,
       q.bid_exchange, q.bid_price, q.bid_size, q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape, q.quote_count
FROM quotes_aggregated q JOIN symbols s ON s.id = q.symbol_id JOIN thinnings th ON th.id = q.thinning_id;
