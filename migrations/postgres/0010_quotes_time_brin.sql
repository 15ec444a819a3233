-- Time slices across symbols through a BRIN index instead of a B-tree (issue 13). Quotes are
-- written a symbol's day at a time in time order, so each block range of the table covers a
-- short span of t and a BRIN index (a few pages for millions of rows) finds a slice's blocks;
-- keeping a second B-tree of every quote cost about a fifth of each COPY (a month of AAPL
-- quotes: 3.96 s against 4.94 s, benches/RESULTS.md session 10). Lookups by symbol and time
-- use the primary key as before. On an existing database this rebuilds the index once (one
-- scan of the table); --drop-indexes drops and rebuilds it by its new definition.
DROP INDEX IF EXISTS quotes_time_idx;
CREATE INDEX IF NOT EXISTS quotes_time_idx ON quotes USING brin (t);
