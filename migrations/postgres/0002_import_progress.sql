-- Resume points, one row per (dataset, symbol, New York day) shard; see
-- migrations/sqlite/0003_import_progress.sql.
CREATE TABLE IF NOT EXISTS import_progress (
    dataset    TEXT        NOT NULL,
    symbol     TEXT        NOT NULL,
    day        DATE        NOT NULL,
    start_ns   BIGINT      NOT NULL,
    end_ns     BIGINT      NOT NULL,
    last_t     BIGINT,
    last_seq   INTEGER,
    done       BOOLEAN     NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dataset, symbol, day)
);
