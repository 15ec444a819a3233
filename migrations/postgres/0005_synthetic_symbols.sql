-- See migrations/sqlite/0007: (symbol, feed) rows holding the stand-in's synthetic data.
ALTER TABLE symbols ADD COLUMN IF NOT EXISTS synthetic INTEGER NOT NULL DEFAULT 0;
