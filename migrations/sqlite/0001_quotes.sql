-- Quotes as Alpaca sends them, every field at full precision.
--
-- Design, for insert speed and file size:
-- * WITHOUT ROWID, clustered on the upsert key (symbol_id, t, seq). The key IS the table:
--   there is no separate unique index duplicating it, and an import arrives in key order, so
--   each insert appends at the right edge of one B-tree (no random page writes). A rowid table
--   plus a UNIQUE index would write every row twice.
-- * symbol_id (a small integer from `symbols`) instead of the ticker text in every row:
--   one or two bytes per row instead of four to six plus a length header.
-- * t is integer nanoseconds since the Unix epoch, UTC: exact (no float, no text) and 8 bytes.
-- * seq is the quote's ordinal among quotes of the same symbol sharing that nanosecond, in
--   API order. Equal timestamps are normal in real data, so (symbol_id, t) alone would
--   silently merge distinct quotes; (symbol_id, t, seq) keeps them apart and is the same on
--   every re-import of the same range, which makes the upsert idempotent. SQLite stores 0 and
--   1 in the record header alone, so seq costs nothing for the common case.
-- * Prices are REAL (IEEE double, exactly the value the API's JSON number parses to);
--   sizes INTEGER; exchanges and tape one-character TEXT; conditions a compact JSON array
--   (a single-space condition code is a real value, so a joined string would be lossy).
CREATE TABLE IF NOT EXISTS symbols (
    id     INTEGER PRIMARY KEY,
    symbol TEXT NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS quotes (
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
    PRIMARY KEY (symbol_id, t, seq)
) WITHOUT ROWID;

-- For people querying: the ticker and a readable UTC time with all nine fractional digits.
CREATE VIEW IF NOT EXISTS quotes_view AS
SELECT s.symbol,
       strftime('%Y-%m-%dT%H:%M:%S', q.t / 1000000000, 'unixepoch')
           || '.' || printf('%09d', q.t % 1000000000) || 'Z' AS time_utc,
       q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price, q.bid_size,
       q.ask_exchange, q.ask_price, q.ask_size,
       q.conditions, q.tape
FROM quotes q JOIN symbols s ON s.id = q.symbol_id;
