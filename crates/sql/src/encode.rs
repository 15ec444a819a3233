//! A batch's rows as a table's column values, for both SQL dialects: the table's columns
//! (see [`TableSpec::columns`]) walked once per batch into a plan, then each row's values
//! read straight from the batch's columns. SQLite binds them, PostgreSQL writes them as
//! binary COPY fields; neither knows which kind of row it writes.

use anyhow::Context;
use arrow_array::RecordBatch;
use data_core::batch::{self, Cells, Value};
use data_core::dataset::{Computed, DatasetId, Role, TableSpec};

/// One database value.
#[derive(Clone, Copy)]
pub enum Val<'a> {
    Int(i64),
    /// A 32-bit integer column (PostgreSQL `INTEGER`).
    Int4(i32),
    Float(f64),
    /// Text; conditions as their stored JSON text.
    Text(&'a str),
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Thinning,
    Symbol,
    Computed(Computed),
    Row { index: usize, narrow: bool },
}

/// The values of a batch's rows, in the table's column order.
pub struct Encoder<'a> {
    plan: Vec<Source>,
    cells: Vec<Cells<'a>>,
    /// Each row's symbol id.
    ids: Vec<i64>,
    thinning: i64,
    times: &'a [i64],
    bar_spec: (&'static str, &'static str),
    /// The table's columns, in plan order.
    columns: Vec<&'static str>,
    /// The row column holding the table's time column.
    time_col: usize,
    /// Each list column's rows as JSON text, written once per batch (by row column; empty
    /// for other columns): every value the encoder gives borrows from the batch or from
    /// here, so a statement can hold all of a chunk's values at once.
    json: Vec<JsonColumn>,
}

/// One table column's values for all of a batch's rows, typed once (see
/// [`Encoder::column`]): a writer walks a slice instead of matching every value.
pub enum ColumnValues<'a> {
    /// The same value in every row.
    Same(Val<'a>),
    /// Integers (symbol ids, times).
    I64(&'a [i64]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    F64(&'a [f64]),
    /// Text (`""` for null).
    Text(&'a arrow_array::StringArray),
    /// Lists as JSON text.
    Json(&'a JsonColumn),
    /// Computed row by row: [`Encoder::value`].
    Each,
}

/// A list column's rows as JSON text, one after another, and where each row's ends.
#[derive(Default)]
pub struct JsonColumn {
    text: String,
    ends: Vec<usize>,
}

impl JsonColumn {
    fn of(cells: &Cells<'_>, rows: usize) -> Self {
        let mut col = JsonColumn::default();
        if matches!(cells, Cells::List(..)) {
            col.text.reserve(rows * 8);
            col.ends.reserve(rows);
            for i in 0..rows {
                cells.list_json(i, &mut col.text);
                col.ends.push(col.text.len());
            }
        }
        col
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

impl<'a> Encoder<'a> {
    /// `rows` must be of `table`'s row list; `ids` holds each row's symbol id.
    pub fn new(
        table: &TableSpec,
        dataset: DatasetId,
        rows: &'a RecordBatch,
        ids: Vec<i64>,
        thinning: Option<i64>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            rows.schema() == batch::schema(table.row),
            "rows of another kind cannot be written to table {}",
            table.name
        );
        let mut plan = Vec::new();
        if table.thinned {
            plan.push(Source::Thinning);
        }
        plan.push(Source::Symbol);
        plan.extend(table.computed.iter().map(|(_, c)| Source::Computed(*c)));
        for (index, c) in table.row.iter().enumerate() {
            if c.sql.is_some() {
                plan.push(Source::Row {
                    index,
                    narrow: c.narrow,
                });
            }
        }
        let times = batch::times(rows, table.row.get(1).map_or(Role::Time.name(), |c| c.name))
            .context("rows have no time")?;
        let bar_spec = dataset
            .bar_spec()
            .map_or(("", ""), |(tf, adj)| (tf.as_str(), adj.as_str()));
        let time_col = table
            .row
            .iter()
            .position(|c| c.sql == Some(table.time_column))
            .context("the table's time column is not a row column")?;
        let cells = batch::all_cells(rows, table.row)?;
        let json = cells
            .iter()
            .map(|c| JsonColumn::of(c, rows.num_rows()))
            .collect();
        Ok(Encoder {
            columns: table.columns(),
            time_col,
            plan,
            cells,
            json,
            ids,
            thinning: thinning.unwrap_or(0),
            times,
            bar_spec,
        })
    }

    /// Values per row.
    pub fn width(&self) -> usize {
        self.plan.len()
    }

    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// Row `i`'s symbol id.
    pub fn symbol_id(&self, i: usize) -> i64 {
        self.ids[i]
    }

    /// The `k`th value of row `i`; a list as JSON text. Text borrows from the batch (or the
    /// encoder's JSON of it): no allocation per value.
    pub fn value(&self, k: usize, i: usize) -> Val<'_> {
        match self.plan[k] {
            Source::Thinning => Val::Int4(self.thinning as i32),
            Source::Symbol => Val::Int4(self.ids[i] as i32),
            Source::Computed(Computed::NyDay) => Val::Int4(super::trade_day(self.times[i]) as i32),
            Source::Computed(Computed::Timeframe) => Val::Text(self.bar_spec.0),
            Source::Computed(Computed::Adjustment) => Val::Text(self.bar_spec.1),
            Source::Row { index, narrow } => match &self.cells[index] {
                Cells::F64(v) => Val::Float(v[i]),
                c @ Cells::Utf8(_) => Val::Text(c.str(i)),
                Cells::List(..) => Val::Text(self.json[index].get(i)),
                c if narrow => Val::Int4(c.int(i) as i32),
                c => Val::Int(c.int(i)),
            },
        }
    }

    /// The `k`th value of every row, typed once; its 32-bit narrowing is left to the
    /// writer ([`Encoder::value`] gives it).
    pub fn column(&self, k: usize) -> ColumnValues<'_> {
        match self.plan[k] {
            Source::Thinning => ColumnValues::Same(Val::Int4(self.thinning as i32)),
            Source::Symbol => ColumnValues::I64(&self.ids),
            Source::Computed(Computed::Timeframe) => ColumnValues::Same(Val::Text(self.bar_spec.0)),
            Source::Computed(Computed::Adjustment) => {
                ColumnValues::Same(Val::Text(self.bar_spec.1))
            }
            Source::Computed(Computed::NyDay) => ColumnValues::Each,
            Source::Row { index, .. } => match &self.cells[index] {
                Cells::Ts(v) => ColumnValues::I64(v),
                Cells::U32(v) => ColumnValues::U32(v),
                Cells::U64(v) => ColumnValues::U64(v),
                Cells::F64(v) => ColumnValues::F64(v),
                Cells::Utf8(a) => ColumnValues::Text(a),
                Cells::List(..) => ColumnValues::Json(&self.json[index]),
            },
        }
    }

    /// The value of the table column `name` in row `i`, by its place in the plan.
    fn key_value(&self, name: &str, i: usize) -> Value {
        let at = self.columns.iter().position(|c| *c == name);
        match at.map(|k| self.value(k, i)) {
            Some(Val::Int(v)) => Value::Int(v),
            Some(Val::Int4(v)) => Value::Int(i64::from(v)),
            Some(Val::Float(v)) => Value::Float(v.to_bits()),
            Some(Val::Text(s)) => Value::Str(s.to_string()),
            None => Value::Null,
        }
    }

    /// Rows whose key a later row of the batch repeats (a trade and its correction in one
    /// batch): one statement may write a key only once, and the later record wins, as the
    /// upsert would leave it. `None` when every key is distinct.
    pub(crate) fn repeated_keys(&self, table: &TableSpec) -> Option<Vec<bool>> {
        if !table.repeats_keys {
            return None;
        }
        let mut last = std::collections::HashMap::with_capacity(self.rows());
        for i in 0..self.rows() {
            let key: Vec<Value> = table.key.iter().map(|k| self.key_value(k, i)).collect();
            last.insert(key, i);
        }
        if last.len() == self.rows() {
            return None;
        }
        let mut keep = vec![false; self.rows()];
        for i in last.into_values() {
            keep[i] = true;
        }
        Some(keep)
    }

    /// Row `i`'s value of the table's time column.
    pub(crate) fn time_key(&self, i: usize) -> i64 {
        self.cells[self.time_col].int(i)
    }
}
