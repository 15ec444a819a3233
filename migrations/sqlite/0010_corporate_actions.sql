-- Corporate actions (Alpaca's /v1/corporate-actions), every group the API sends, one row per
-- action: t is its process date (New York midnight, ns UTC), action the group
-- (forward_splits, reverse_splits, cash_dividends, name_changes, spin_offs, cash_mergers,
-- ...), fields the whole record as JSON (every field of every group, as sent). ex_date (the
-- ex or effective date) and the rates are also columns, for adjusting prices; absent ones
-- are '' and 0. Kept under the ticker's sip row of `symbols`.
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol_id INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    id        TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    ex_date   TEXT    NOT NULL,
    old_rate  REAL    NOT NULL,
    new_rate  REAL    NOT NULL,
    rate      REAL    NOT NULL,
    fields    TEXT    NOT NULL,
    PRIMARY KEY (symbol_id, t, id)
) WITHOUT ROWID;

CREATE VIEW IF NOT EXISTS corporate_actions_view AS
SELECT s.symbol, q.action, date(q.t / 1000000000, 'unixepoch', '+12 hours') AS process_date,
       q.ex_date, q.old_rate, q.new_rate, q.rate, q.id, q.fields
FROM corporate_actions q JOIN symbols s ON s.id = q.symbol_id;

-- The split adjustment, from the ledger above: for each ticker, the spans between ex-dates
-- with the factor that brings a price of the span to today's share count (the product of
-- old_rate/new_rate of every split after it). Rewritten after every corporate-actions import
-- of the ticker. A price in no span is unadjusted (factor 1).
CREATE TABLE IF NOT EXISTS split_factors (
    symbol       TEXT    NOT NULL,
    from_t       INTEGER NOT NULL,
    until_t      INTEGER NOT NULL,
    price_factor REAL    NOT NULL,
    PRIMARY KEY (symbol, from_t)
) WITHOUT ROWID;

-- Split-adjusted raw rows: prices times the factor, sizes and volumes divided by it.
CREATE VIEW IF NOT EXISTS bars_split_adjusted_view AS
SELECT s.symbol, s.feed, b.timeframe, b.t AS t_ns,
       b.open * coalesce(f.price_factor, 1.0) AS open,
       b.high * coalesce(f.price_factor, 1.0) AS high,
       b.low * coalesce(f.price_factor, 1.0) AS low,
       b.close * coalesce(f.price_factor, 1.0) AS close,
       b.volume / coalesce(f.price_factor, 1.0) AS volume,
       b.trade_count,
       b.vwap * coalesce(f.price_factor, 1.0) AS vwap
FROM bars b JOIN symbols s ON s.id = b.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND b.t >= f.from_t AND b.t < f.until_t
WHERE b.adjustment = 'raw';

CREATE VIEW IF NOT EXISTS trades_split_adjusted_view AS
SELECT s.symbol, s.feed, q.t AS t_ns, q.exchange, q.trade_id,
       q.price * coalesce(f.price_factor, 1.0) AS price,
       q.size / coalesce(f.price_factor, 1.0) AS size,
       q.conditions, q.tape, q.update_flag
FROM trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND q.t >= f.from_t AND q.t < f.until_t;

CREATE VIEW IF NOT EXISTS quotes_split_adjusted_view AS
SELECT s.symbol, s.feed, q.t AS t_ns, q.seq,
       q.bid_exchange, q.bid_price * coalesce(f.price_factor, 1.0) AS bid_price,
       q.bid_size / coalesce(f.price_factor, 1.0) AS bid_size,
       q.ask_exchange, q.ask_price * coalesce(f.price_factor, 1.0) AS ask_price,
       q.ask_size / coalesce(f.price_factor, 1.0) AS ask_size,
       q.conditions, q.tape
FROM quotes q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND q.t >= f.from_t AND q.t < f.until_t;

-- The dividend adjustment, the same way: for each ticker, the spans between cash-dividend
-- ex-dates with the product of (1 - rate / close of the last raw daily bar before the
-- ex-date) of every later dividend. A dividend without such a bar in the database is left
-- out (the import says how many). Rewritten with the split factors.
CREATE TABLE IF NOT EXISTS dividend_factors (
    symbol       TEXT    NOT NULL,
    from_t       INTEGER NOT NULL,
    until_t      INTEGER NOT NULL,
    price_factor REAL NOT NULL,
    PRIMARY KEY (symbol, from_t)
);

-- Split- and dividend-adjusted raw bars (Alpaca's adjustment=all): prices times both
-- factors, volumes divided by the split factor only.
CREATE VIEW IF NOT EXISTS bars_adjusted_view AS
SELECT s.symbol, s.feed, b.timeframe, b.t AS t_ns,
       b.open * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS open,
       b.high * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS high,
       b.low * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS low,
       b.close * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS close,
       b.volume / coalesce(f.price_factor, 1.0) AS volume,
       b.trade_count,
       b.vwap * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS vwap
FROM bars b JOIN symbols s ON s.id = b.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND b.t >= f.from_t AND b.t < f.until_t
LEFT JOIN dividend_factors d ON d.symbol = s.symbol AND b.t >= d.from_t AND b.t < d.until_t
WHERE b.adjustment = 'raw';

CREATE VIEW IF NOT EXISTS trades_adjusted_view AS
SELECT s.symbol, s.feed, q.t AS t_ns, q.exchange, q.trade_id,
       q.price * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS price,
       q.size / coalesce(f.price_factor, 1.0) AS size,
       q.conditions, q.tape, q.update_flag
FROM trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND q.t >= f.from_t AND q.t < f.until_t
LEFT JOIN dividend_factors d ON d.symbol = s.symbol AND q.t >= d.from_t AND q.t < d.until_t;

CREATE VIEW IF NOT EXISTS quotes_adjusted_view AS
SELECT s.symbol, s.feed, q.t AS t_ns, q.seq,
       q.bid_exchange,
       q.bid_price * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS bid_price,
       q.bid_size / coalesce(f.price_factor, 1.0) AS bid_size,
       q.ask_exchange,
       q.ask_price * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS ask_price,
       q.ask_size / coalesce(f.price_factor, 1.0) AS ask_size,
       q.conditions, q.tape
FROM quotes q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND q.t >= f.from_t AND q.t < f.until_t
LEFT JOIN dividend_factors d ON d.symbol = s.symbol AND q.t >= d.from_t AND q.t < d.until_t;
