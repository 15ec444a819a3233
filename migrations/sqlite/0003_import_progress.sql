-- Resume points: one row per (dataset, symbol, New York day) shard an import has started,
-- written in the same transaction as the batch that carries the shard's rows, so it is
-- never ahead of or behind the data. dataset is the table, plus the thinning spec for
-- thinned tables ('quotes', 'quotes_thinned/sample=10'). [start_ns, end_ns] is the span of
-- the day the import covers; (last_t, last_seq) the last committed quote; done = 1 once
-- every row of the span is committed. A rerun skips done shards and resumes the others
-- right after (last_t, last_seq); --restart ignores this table.
CREATE TABLE IF NOT EXISTS import_progress (
    dataset    TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    start_ns   INTEGER NOT NULL,
    end_ns     INTEGER NOT NULL,
    last_t     INTEGER,
    last_seq   INTEGER,
    done       INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (dataset, symbol, day)
);
