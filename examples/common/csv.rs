//! A small, strict CSV reader for time series: a time column then value columns.
//!
//! Format: comma-separated, one row per time. Blank lines and lines starting with `#` are
//! skipped. The first row may be a header (a row in which no cell is a number); without
//! one the columns are called `t, x1, x2, ...`. Cells may be surrounded by spaces or double
//! quotes. Every other cell must be a finite number, every row must have as many cells as
//! the first, times must increase strictly, and there must be at least two rows.
//!
//! Every error is one line naming the file, and the line and column where it applies:
//! `data.csv:4: column 2 ("value"): "abc" is not a number`.

use std::path::Path;

/// A parsed time series.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column names (the time column first).
    pub names: Vec<String>,
    /// The times, strictly increasing.
    pub times: Vec<f32>,
    /// One row of values per time (`names.len() - 1` each).
    pub rows: Vec<Vec<f32>>,
}

impl Table {
    /// The number of value columns.
    pub fn value_columns(&self) -> usize {
        self.names.len().saturating_sub(1)
    }
}

/// Reads and parses the CSV file `path`.
pub fn read(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

fn clean(cell: &str) -> &str {
    let c = cell.trim();
    c.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map_or(c, str::trim)
}

/// Parses CSV `text`; `file` names it in error messages.
pub fn parse(file: &str, text: &str) -> Result<Table, String> {
    let mut names: Option<Vec<String>> = None;
    let mut width = None;
    let mut times: Vec<f32> = Vec::new();
    let mut rows = Vec::new();
    let mut first_row = true;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = trimmed.split(',').map(clean).collect();
        let numeric = cells.iter().filter(|c| c.parse::<f32>().is_ok()).count();
        if first_row && numeric == 0 {
            first_row = false;
            if cells.len() < 2 {
                return Err(format!(
                    "{file}:{line}: need a time column and at least one value column, found {} column",
                    cells.len()
                ));
            }
            if let Some(i) = cells.iter().position(|c| c.is_empty()) {
                return Err(format!("{file}:{line}: header column {} is empty", i + 1));
            }
            width = Some(cells.len());
            names = Some(cells.iter().map(|c| c.to_string()).collect());
            continue;
        }
        first_row = false;
        let w = *width.get_or_insert(cells.len());
        if cells.len() < 2 {
            return Err(format!(
                "{file}:{line}: need a time column and at least one value column, found 1 column"
            ));
        }
        if cells.len() != w {
            return Err(format!(
                "{file}:{line}: expected {w} columns, found {} (rows must all have the same number of cells)",
                cells.len()
            ));
        }
        let mut values = Vec::with_capacity(w);
        for (c, cell) in cells.iter().enumerate() {
            let col = match &names {
                Some(n) => format!("column {} (\"{}\")", c + 1, n[c]),
                None => format!("column {}", c + 1),
            };
            if cell.is_empty() {
                return Err(format!(
                    "{file}:{line}: {col} is empty (missing values are not supported)"
                ));
            }
            let x: f32 = cell
                .parse()
                .map_err(|_| format!("{file}:{line}: {col}: \"{cell}\" is not a number"))?;
            if !x.is_finite() {
                return Err(format!(
                    "{file}:{line}: {col}: \"{cell}\" is not a finite number (NaN and infinities are not allowed)"
                ));
            }
            values.push(x);
        }
        let t = values.remove(0);
        if let Some(&prev) = times.last() {
            if t <= prev {
                return Err(format!(
                    "{file}:{line}: time {t} is not after the previous time {prev} (times must increase strictly)"
                ));
            }
        }
        times.push(t);
        rows.push(values);
    }
    if times.len() < 2 {
        return Err(format!(
            "{file}: need at least 2 data rows, found {}",
            times.len()
        ));
    }
    let w = width.unwrap_or(2);
    let names = names.unwrap_or_else(|| {
        std::iter::once("t".to_string())
            .chain((1..w).map(|i| format!("x{i}")))
            .collect()
    });
    Ok(Table { names, times, rows })
}
