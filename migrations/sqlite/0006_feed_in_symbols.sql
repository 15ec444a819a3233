-- The feed is part of a dataset's identity: SIP and IEX rows of one symbol are different
-- data (IEX carries a small fraction of SIP's volume) and must never mix. A `symbols` row is
-- now a (symbol, feed) pair, so every table keyed by symbol_id keeps feeds apart with no
-- change to its key, and the views show the feed. Rows imported before this migration were
-- imported with the default feed, sip, and are labelled so. (SQLite cannot change a UNIQUE
-- constraint in place: the small symbols table is rebuilt with the same ids; the views that
-- read it are dropped first and created again with the feed.)
DROP VIEW IF EXISTS quotes_view;
DROP VIEW IF EXISTS quotes_thinned_view;
DROP VIEW IF EXISTS quotes_aggregated_view;

CREATE TABLE symbols_with_feed (
    id     INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL,
    feed   TEXT NOT NULL DEFAULT 'sip',
    UNIQUE (symbol, feed)
);
INSERT INTO symbols_with_feed (id, symbol, feed) SELECT id, symbol, 'sip' FROM symbols;
DROP TABLE symbols;
ALTER TABLE symbols_with_feed RENAME TO symbols;

CREATE VIEW quotes_view AS
SELECT s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape
FROM quotes q JOIN symbols s ON s.id = q.symbol_id;

CREATE VIEW quotes_thinned_view AS
SELECT th.spec AS thinning, s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape
FROM quotes_thinned q
JOIN symbols s ON s.id = q.symbol_id
JOIN thinnings th ON th.id = q.thinning_id;

CREATE VIEW quotes_aggregated_view AS
SELECT th.spec AS thinning, s.symbol, s.feed,
       strftime('%Y-%m-%dT%H:%M:%S', q.bucket_t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.bucket_t % 1000000000) || 'Z' AS interval_utc,
       q.bucket_t AS bucket_t_ns, q.last_t AS last_t_ns,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape, q.quote_count
FROM quotes_aggregated q
JOIN symbols s ON s.id = q.symbol_id
JOIN thinnings th ON th.id = q.thinning_id;
