-- Corporate actions and the split adjustment, as in migrations/sqlite/0010.
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol_id INTEGER          NOT NULL,
    t         BIGINT           NOT NULL,
    id        TEXT             NOT NULL,
    action    TEXT             NOT NULL,
    ex_date   TEXT             NOT NULL,
    old_rate  DOUBLE PRECISION NOT NULL,
    new_rate  DOUBLE PRECISION NOT NULL,
    rate      DOUBLE PRECISION NOT NULL,
    fields    TEXT             NOT NULL,
    PRIMARY KEY (symbol_id, t, id)
);

CREATE OR REPLACE VIEW corporate_actions_view AS
SELECT s.symbol, q.action,
       (to_timestamp(q.t / 1e9) AT TIME ZONE 'America/New_York')::date AS process_date,
       q.ex_date, q.old_rate, q.new_rate, q.rate, q.id, q.fields::jsonb AS fields
FROM corporate_actions q JOIN symbols s ON s.id = q.symbol_id;

CREATE TABLE IF NOT EXISTS split_factors (
    symbol       TEXT             NOT NULL,
    from_t       BIGINT           NOT NULL,
    until_t      BIGINT           NOT NULL,
    price_factor DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (symbol, from_t)
);

CREATE OR REPLACE VIEW bars_split_adjusted_view AS
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

CREATE OR REPLACE VIEW trades_split_adjusted_view AS
SELECT s.symbol, s.feed, q.t AS t_ns, q.exchange, q.trade_id,
       q.price * coalesce(f.price_factor, 1.0) AS price,
       q.size / coalesce(f.price_factor, 1.0) AS size,
       q.conditions, q.tape, q.update_flag
FROM trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND q.t >= f.from_t AND q.t < f.until_t;

CREATE OR REPLACE VIEW quotes_split_adjusted_view AS
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
    from_t       BIGINT NOT NULL,
    until_t      BIGINT NOT NULL,
    price_factor DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (symbol, from_t)
);

-- Split- and dividend-adjusted raw bars (Alpaca's adjustment=all): prices times both
-- factors, volumes divided by the split factor only.
CREATE OR REPLACE VIEW bars_adjusted_view AS
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

CREATE OR REPLACE VIEW trades_adjusted_view AS
SELECT s.symbol, s.feed, q.t AS t_ns, q.exchange, q.trade_id,
       q.price * coalesce(f.price_factor, 1.0) * coalesce(d.price_factor, 1.0) AS price,
       q.size / coalesce(f.price_factor, 1.0) AS size,
       q.conditions, q.tape, q.update_flag
FROM trades q JOIN symbols s ON s.id = q.symbol_id
LEFT JOIN split_factors f ON f.symbol = s.symbol AND q.t >= f.from_t AND q.t < f.until_t
LEFT JOIN dividend_factors d ON d.symbol = s.symbol AND q.t >= d.from_t AND q.t < d.until_t;

CREATE OR REPLACE VIEW quotes_adjusted_view AS
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
