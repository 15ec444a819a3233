-- A secondary index on time alone, for queries across symbols ("every quote between 14:30
-- and 14:31"), which the (symbol_id, t, seq) key cannot serve. It is the index that
-- `--drop-indexes` drops during an import and rebuilds after.
CREATE INDEX IF NOT EXISTS quotes_time_idx ON quotes (t);

-- Indexes dropped by a running `--drop-indexes` import, with the SQL to recreate them. A row
-- here after the import ended means it was killed: the next command that opens the database
-- recreates the index and deletes the row.
CREATE TABLE IF NOT EXISTS dropped_indexes (
    name       TEXT PRIMARY KEY,
    create_sql TEXT NOT NULL,
    dropped_at TEXT NOT NULL,
    pid        INTEGER NOT NULL
);

-- Thinning specs, e.g. 'sample=10' or 'nbbo-changes,aggregate=1s', keyed by a small id so
-- thinned rows carry one or two bytes for it, like symbol_id.
CREATE TABLE IF NOT EXISTS thinnings (
    id   INTEGER PRIMARY KEY,
    spec TEXT NOT NULL UNIQUE
);

-- Quotes kept by --nbbo-changes and/or --sample: raw quote columns, keyed by spec first, so
-- raw and thinned rows never mix and each thinning is its own idempotent set.
CREATE TABLE IF NOT EXISTS quotes_thinned (
    thinning_id  INTEGER NOT NULL,
    symbol_id    INTEGER NOT NULL,
    t            INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    bid_exchange TEXT    NOT NULL,
    bid_price    REAL    NOT NULL,
    bid_size     INTEGER NOT NULL,
    ask_exchange TEXT    NOT NULL,
    ask_price    REAL    NOT NULL,
    ask_size     INTEGER NOT NULL,
    conditions   TEXT    NOT NULL,
    tape         TEXT    NOT NULL,
    PRIMARY KEY (thinning_id, symbol_id, t, seq)
) WITHOUT ROWID;

-- --aggregate WIDTH: one row per interval per symbol: the interval's last quote and how
-- many quotes (after any filters) it stands for. bucket_t is the interval start (ns UTC,
-- a multiple of the width); last_t the time of the last quote in it.
CREATE TABLE IF NOT EXISTS quotes_aggregated (
    thinning_id  INTEGER NOT NULL,
    symbol_id    INTEGER NOT NULL,
    bucket_t     INTEGER NOT NULL,
    last_t       INTEGER NOT NULL,
    bid_exchange TEXT    NOT NULL,
    bid_price    REAL    NOT NULL,
    bid_size     INTEGER NOT NULL,
    ask_exchange TEXT    NOT NULL,
    ask_price    REAL    NOT NULL,
    ask_size     INTEGER NOT NULL,
    conditions   TEXT    NOT NULL,
    tape         TEXT    NOT NULL,
    quote_count  INTEGER NOT NULL,
    PRIMARY KEY (thinning_id, symbol_id, bucket_t)
) WITHOUT ROWID;

CREATE VIEW IF NOT EXISTS quotes_thinned_view AS
SELECT th.spec AS thinning, s.symbol,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape
FROM quotes_thinned q
JOIN symbols s ON s.id = q.symbol_id
JOIN thinnings th ON th.id = q.thinning_id;

CREATE VIEW IF NOT EXISTS quotes_aggregated_view AS
SELECT th.spec AS thinning, s.symbol,
       strftime('%Y-%m-%dT%H:%M:%S', q.bucket_t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.bucket_t % 1000000000) || 'Z' AS interval_utc,
       q.bucket_t AS bucket_t_ns, q.last_t AS last_t_ns,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape, q.quote_count
FROM quotes_aggregated q
JOIN symbols s ON s.id = q.symbol_id
JOIN thinnings th ON th.id = q.thinning_id;
