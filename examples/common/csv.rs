//! Reading time series from CSV files (with the `csv` crate): a time column, then value
//! columns. The format is documented for users in `docs/csv-format.md`.
//!
//! Times are read as `f64`: plain numbers (any unit, Unix seconds included: `f64` tells
//! apart seconds of dates far beyond 2100), ISO-8601 dates (`1958-03-29`) and date-times
//! (`2024-05-01T12:30:00Z`, `2024-05-01 12:30`, with an optional UTC offset). Dates and
//! date-times are kept as Unix seconds and written back in the same form
//! ([`TimeFormat::format`]). Values are `f64`; an empty cell or `NA` is a missing value.
//!
//! Every error is one line naming the file and the line (and the column where it applies),
//! with a hint where one helps: `data.csv:4: column 2 ("value"): "abc" is not a number`.

use std::fmt::Write as _;
use std::path::Path;

use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp};

/// 1970-01-01T00:00:00 UTC, as a civil date-time (times are seconds since then).
const UNIX_EPOCH: DateTime = DateTime::constant(1970, 1, 1, 0, 0, 0, 0);

/// How the file writes its times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// Plain numbers, in the file's own unit.
    Number,
    /// ISO-8601 calendar dates (`YYYY-MM-DD`); times are Unix seconds at midnight UTC.
    Date,
    /// ISO-8601 date-times; times are Unix seconds (UTC).
    DateTime,
}

impl TimeFormat {
    /// Writes time `t` (as stored in a [`Table`]) the way the file writes times. Dates that
    /// do not fall on a midnight are written as date-times.
    pub fn format(self, t: f64) -> String {
        match self {
            TimeFormat::Number => format_number(t),
            TimeFormat::Date | TimeFormat::DateTime => {
                let whole = t.floor();
                let Some(utc) = (whole.abs() < 1e15)
                    .then(|| UNIX_EPOCH.checked_add(SignedDuration::from_secs(whole as i64)))
                    .and_then(Result::ok)
                else {
                    // Beyond jiff's years -9999..=9999: the seconds themselves.
                    return format_number(t);
                };
                let frac = t - whole;
                if self == TimeFormat::Date && frac == 0.0 && utc.time() == Time::midnight() {
                    return utc.date().to_string();
                }
                let mut s = utc.strftime("%Y-%m-%dT%H:%M:%S").to_string();
                if frac > 5e-4 {
                    let ms = ((frac * 1000.0).round() as u32).min(999);
                    let _ = write!(s, ".{ms:03}");
                }
                s.push('Z');
                s
            }
        }
    }

    /// The unit of a time difference, for messages and labels.
    pub fn unit(self) -> &'static str {
        match self {
            TimeFormat::Number => "time units",
            TimeFormat::Date | TimeFormat::DateTime => "seconds",
        }
    }
}

/// The shortest decimal that reads back as `x`, without an exponent for ordinary sizes.
pub fn format_number(x: f64) -> String {
    if x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// A parsed time series.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column names (the time column first).
    pub names: Vec<String>,
    /// How the file writes its times.
    pub time_format: TimeFormat,
    /// The times, strictly increasing (Unix seconds for dates and date-times).
    pub times: Vec<f64>,
    /// One row of values per time (`names.len() - 1` each); `None` is a missing value.
    pub rows: Vec<Vec<Option<f64>>>,
    /// The line of the file each row came from (for messages).
    pub lines: Vec<u64>,
}

impl Table {
    /// The number of value columns.
    pub fn value_columns(&self) -> usize {
        self.names.len().saturating_sub(1)
    }

    /// The number of missing values.
    pub fn missing(&self) -> usize {
        self.rows.iter().flatten().filter(|v| v.is_none()).count()
    }

    /// The table of the first `rows` rows (all of them if there are fewer): the training
    /// rows that validation fits see.
    pub fn head(&self, rows: usize) -> Table {
        let rows = rows.min(self.times.len());
        Table {
            names: self.names.clone(),
            time_format: self.time_format,
            times: self.times[..rows].to_vec(),
            rows: self.rows[..rows].to_vec(),
            lines: self.lines[..rows.min(self.lines.len())].to_vec(),
        }
    }
}

/// Options of the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The field separator (`,` by default).
    pub delimiter: u8,
}

impl Default for Options {
    fn default() -> Self {
        Self { delimiter: b',' }
    }
}

/// Reads and parses the CSV file `path`.
pub fn read(path: &Path, options: Options) -> Result<Table, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&path.display().to_string(), &bytes, options)
}

/// Parses CSV `bytes`; `file` names it in error messages.
pub fn parse(file: &str, bytes: &[u8], options: Options) -> Result<Table, String> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(format!(
            "{file}: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        ));
    }
    // A UTF-8 byte-order mark (as some spreadsheets write) is not part of the first name.
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let sep = char::from(options.delimiter);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(options.delimiter)
        .trim(::csv::Trim::All)
        .from_reader(bytes);
    let mut names: Option<Vec<String>> = None;
    let mut width: Option<usize> = None;
    let mut time_format: Option<TimeFormat> = None;
    let mut times: Vec<f64> = Vec::new();
    let mut time_cells: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    let mut first_row = true;
    let mut lines_seen = LineCounter::default();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(format!("{file}:{line}: cannot read the row: {e}"));
            }
        }
        let line = record
            .position()
            .map_or(0, |p| lines_seen.line_of(bytes, p.byte() as usize));
        let mut cells: Vec<String> = Vec::with_capacity(record.len());
        for (c, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                // Quotes after leading spaces are not CSV quoting; drop them too.
                Ok(s) => cells.push(
                    s.strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .map_or(s, str::trim)
                        .to_string(),
                ),
                Err(e) => {
                    let byte = raw[e.valid_up_to()];
                    return Err(format!(
                        "{file}:{line}: column {}: byte 0x{byte:02X} is not UTF-8; save the file as UTF-8 (it looks like Latin-1 or Windows-1252)",
                        c + 1
                    ));
                }
            }
        }
        if cells.iter().all(String::is_empty) {
            continue;
        }
        let numeric = cells.iter().filter(|c| is_time_or_number(c)).count();
        if first_row && numeric == 0 {
            first_row = false;
            if cells.len() < 2 {
                return Err(one_column(file, line, &cells[0], sep));
            }
            if let Some(i) = cells.iter().position(String::is_empty) {
                return Err(format!("{file}:{line}: header column {} is empty", i + 1));
            }
            width = Some(cells.len());
            names = Some(cells);
            continue;
        }
        first_row = false;
        if cells.len() < 2 {
            return Err(one_column(file, line, &cells[0], sep));
        }
        let w = *width.get_or_insert(cells.len());
        if cells.len() != w {
            return Err(format!(
                "{file}:{line}: expected {w} columns, found {} (every row needs as many cells as the first; leave a cell empty for a missing value)",
                cells.len()
            ));
        }
        let col = |c: usize| match &names {
            Some(n) => format!("column {} (\"{}\")", c + 1, n[c]),
            None => format!("column {}", c + 1),
        };
        let (t, format) =
            parse_time(&cells[0]).map_err(|why| format!("{file}:{line}: {}: {why}", col(0)))?;
        match time_format {
            None => time_format = Some(format),
            Some(f) if f == format => {}
            Some(TimeFormat::Date) if format == TimeFormat::DateTime => {
                time_format = Some(TimeFormat::DateTime)
            }
            Some(TimeFormat::DateTime) if format == TimeFormat::Date => {}
            Some(f) => {
                return Err(format!(
                    "{file}:{line}: {}: \"{}\" is {}, but earlier times are {}; write every time the same way",
                    col(0),
                    cells[0],
                    describe(format),
                    describe(f)
                ))
            }
        }
        if let (Some(&prev), Some(prev_cell)) = (times.last(), time_cells.last()) {
            if t <= prev {
                return Err(format!(
                    "{file}:{line}: time \"{}\" is not after the previous time \"{prev_cell}\" (line {}); times must increase strictly",
                    cells[0],
                    lines.last().copied().unwrap_or(0)
                ));
            }
        }
        let mut values = Vec::with_capacity(w - 1);
        for (c, cell) in cells.iter().enumerate().skip(1) {
            values.push(
                parse_value(cell, sep)
                    .map_err(|why| format!("{file}:{line}: {}: {why}", col(c)))?,
            );
        }
        times.push(t);
        time_cells.push(cells[0].clone());
        rows.push(values);
        lines.push(line);
    }
    if times.len() < 2 {
        return Err(format!(
            "{file}: need at least 2 data rows, found {}",
            times.len()
        ));
    }
    let w = width.unwrap_or(2);
    for c in 0..w - 1 {
        if rows.iter().all(|r: &Vec<Option<f64>>| r[c].is_none()) {
            let name = names
                .as_ref()
                .map_or(format!("x{}", c + 1), |n| n[c + 1].clone());
            return Err(format!(
                "{file}: column {} (\"{name}\") has no values (every cell is empty or NA)",
                c + 2
            ));
        }
    }
    let names = names.unwrap_or_else(|| {
        std::iter::once("t".to_string())
            .chain((1..w).map(|i| format!("x{i}")))
            .collect()
    });
    Ok(Table {
        names,
        time_format: time_format.unwrap_or(TimeFormat::Number),
        times,
        rows,
        lines,
    })
}

/// Line numbers of records, counted incrementally (records arrive in order).
#[derive(Default)]
struct LineCounter {
    offset: usize,
    line: u64,
}

impl LineCounter {
    /// The line a record starts on, from the byte offset the reader reports: the reader
    /// reports where it began reading, before any blank lines it skipped.
    fn line_of(&mut self, bytes: &[u8], offset: usize) -> u64 {
        let offset = offset.clamp(self.offset, bytes.len());
        let start = bytes[offset..]
            .iter()
            .position(|&b| b != b'\n' && b != b'\r')
            .map_or(bytes.len(), |k| offset + k);
        self.line += bytes[self.offset..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
        self.offset = start;
        self.line + 1
    }
}

fn describe(f: TimeFormat) -> &'static str {
    match f {
        TimeFormat::Number => "a number",
        TimeFormat::Date => "a date",
        TimeFormat::DateTime => "a date-time",
    }
}

/// The message for a row of one cell: most often the file uses another separator.
fn one_column(file: &str, line: u64, cell: &str, sep: char) -> String {
    let other = [';', '\t', '|', ',']
        .into_iter()
        .find(|&c| c != sep && cell.contains(c));
    match other {
        Some(c) => {
            let shown = if c == '\t' {
                "\\t".to_string()
            } else {
                c.to_string()
            };
            format!(
                "{file}:{line}: found one column but the row contains {shown:?}: the file seems to be separated by {shown:?}, not {sep:?}; pass --delimiter '{shown}'"
            )
        }
        None => format!(
            "{file}:{line}: need a time column and at least one value column separated by {sep:?}, found one column"
        ),
    }
}

fn is_time_or_number(cell: &str) -> bool {
    parse_time(cell).is_ok()
}

/// A value cell: a finite number, or `None` for an empty cell or `NA`.
fn parse_value(cell: &str, sep: char) -> Result<Option<f64>, String> {
    if cell.is_empty() || cell.eq_ignore_ascii_case("na") {
        return Ok(None);
    }
    match cell.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        Ok(_) => Err(format!(
            "\"{cell}\" is not a finite number (write a missing value as an empty cell or NA)"
        )),
        Err(_) => {
            let hint = if sep != ','
                && cell.contains(',')
                && cell.replace(',', ".").parse::<f64>().is_ok()
            {
                " (decimal commas are not supported: write 3.5, not 3,5)"
            } else {
                ""
            };
            Err(format!("\"{cell}\" is not a number{hint}"))
        }
    }
}

/// A time cell: a finite number, an ISO-8601 date, or an ISO-8601 date-time (parsed by
/// `jiff`; a date-time without a UTC offset is UTC).
pub fn parse_time(cell: &str) -> Result<(f64, TimeFormat), String> {
    if cell.is_empty() {
        return Err("the time is empty (every row needs a time)".into());
    }
    if let Ok(x) = cell.parse::<f64>() {
        return if x.is_finite() {
            Ok((x, TimeFormat::Number))
        } else {
            Err(format!("\"{cell}\" is not a finite time"))
        };
    }
    let b = cell.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(format!(
            "\"{cell}\" is neither a number nor an ISO-8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM])"
        ));
    }
    if b.len() == 10 {
        let date: Date = cell
            .parse()
            .map_err(|_| format!("\"{cell}\" is not a valid calendar date"))?;
        let midnight = date
            .to_datetime(Time::midnight())
            .duration_since(UNIX_EPOCH);
        return Ok((midnight.as_secs() as f64, TimeFormat::Date));
    }
    let since_epoch = match cell.parse::<Timestamp>() {
        Ok(t) => t.duration_since(Timestamp::UNIX_EPOCH),
        Err(_) => cell
            .parse::<DateTime>()
            .map(|dt| dt.duration_since(UNIX_EPOCH))
            .map_err(|e| {
                format!(
                    "\"{cell}\" is not a valid ISO-8601 date-time (YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]): {e}"
                )
            })?,
    };
    let seconds = since_epoch.as_secs() as f64 + f64::from(since_epoch.subsec_nanos()) / 1e9;
    Ok((seconds, TimeFormat::DateTime))
}
