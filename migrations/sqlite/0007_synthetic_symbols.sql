-- Rows from the offline stand-in (`import-api --standin`) are synthetic: a (symbol, feed) that
-- holds them is marked, so `status` shows it and an import never mixes stand-in rows with
-- market data in one dataset.
ALTER TABLE symbols ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;
