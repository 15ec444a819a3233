-- Several importers sharing one job (`import-api --coordinate`): a row per shard of the job
-- (progress key, symbol, day), taken with SELECT ... FOR UPDATE SKIP LOCKED, held while the
-- shard is fetched (renewed), and released by the shard's done mark in import_progress,
-- written in the batch's transaction. A lease whose importer died expires and is taken over.
CREATE TABLE IF NOT EXISTS shard_leases (
    dataset    TEXT        NOT NULL,
    symbol     TEXT        NOT NULL,
    day        DATE        NOT NULL,
    owner      TEXT,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    PRIMARY KEY (dataset, symbol, day)
);
