-- Time slices across symbols ("every quote between 14:30 and 14:31") are served by the
-- primary key (symbol_id, t, seq) itself: SQLite's skip-scan seeks the time range once per
-- symbol, which the planner chooses once sqlite_stat1 shows few symbols for many rows (every
-- import refreshes those statistics, `ANALYZE` with a small `analysis_limit`). The separate
-- index on t that served those queries before wrote every quote a second time: about a
-- fifth of an import's time and a quarter of the file (benches/RESULTS.md, session 6).
-- Users who want it back can create it; `--drop-indexes` drops and rebuilds such indexes.
DROP INDEX IF EXISTS quotes_time_idx;
