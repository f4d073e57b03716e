//! Reading a seed CSV into one Arrow batch, inferring or overriding column types.
//!
//! A base module: compile-time lineage reads a seed's columns with it, and every engine
//! loads a seed from the batch it returns, so a seed is typed the same way everywhere.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{Date32Type, Field, Schema};

/// A seed file that cannot become a table.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file could not be read.
    #[error("could not read `{path}`: {source}")]
    Io {
        /// The seed file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not well-formed CSV: a row with the wrong number of fields, an unclosed quote,
    /// invalid UTF-8.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line of the file where the bad record starts.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// No header row, or one without columns.
    #[error("the seed has no header row")]
    EmptyHeader,
    /// A header field that is empty.
    #[error("column {position} of the header has no name")]
    EmptyColumnName {
        /// 1-based position in the header.
        position: usize,
    },
    /// Two header fields with the same name.
    #[error("column `{column}` appears twice in the header")]
    DuplicateColumn {
        /// The repeated name.
        column: String,
    },
    /// `column_types` names a column the seed does not have.
    #[error("`column_types` sets a type for `{column}`, which is not a column of the seed")]
    UnknownColumn {
        /// The name from `column_types`.
        column: String,
    },
    /// `column_types` gives a type etlm does not know.
    #[error("`{type_name}` (for column `{column}`) is not a supported seed column type")]
    UnknownType {
        /// The column.
        column: String,
        /// The type as written.
        type_name: String,
    },
    /// A value that does not parse as its column's declared type.
    #[error("line {line}, column `{column}`: `{value}` is not a valid {expected}")]
    InvalidValue {
        /// 1-based line of the file.
        line: u64,
        /// The column.
        column: String,
        /// The value as written.
        value: String,
        /// The expected type, e.g. `integer`.
        expected: &'static str,
    },
}

/// Reads the CSV at `path` (header row required) into one batch, typed as dbt types a
/// seed (its agate type tester), so a seed loads with the same types and values as under
/// dbt on Postgres.
///
/// `NULL`: an empty value, or `null` in any case. A column's type is inferred from its
/// other values, first match wins: numbers (an optional sign, `$`-style currency symbol,
/// `%` or `,` thousands separators are dropped, `1,234` is 1234) are `Int32` (dbt's
/// `integer`) when every value is whole (`2.0` is) and fits, `Int64` when one does not
/// fit, else `Float64` (dbt's `float8`); then Date32 (`YYYY-MM-DD`); Timestamp(µs)
/// (`YYYY-MM-DD HH:MM:SS`, or ISO 8601 with `T`, fraction and offset allowed, converted
/// to UTC); Boolean (`true`/`false`, any case); else Utf8. A column without any value is
/// `Int32`, as in dbt. `column_types` overrides a column by SQL type name (`bigint`,
/// `double`, `numeric(10,2)`, `date`, `timestamp`, `boolean`, `text`, ...); a decimal
/// with a scale rounds half away from zero, as Postgres does.
/// Column names keep the header's spelling (dbt quotes seed columns); `quote_columns:
/// false` lowercases them, as unquoted SQL names fold.
///
/// ```no_run
/// # use std::collections::BTreeMap;
/// let types = BTreeMap::from([("zip".to_string(), "text".to_string())]);
/// let batch = etlm::seed_csv::read_seed_csv("seeds/customers.csv".as_ref(), &types, false)?;
/// # Ok::<(), etlm::seed_csv::SeedError>(())
/// ```
pub fn read_seed_csv(
    path: &Path,
    column_types: &BTreeMap<String, String>,
    quote_columns: bool,
) -> Result<RecordBatch, SeedError> {
    let bytes = std::fs::read(path).map_err(|source| SeedError::Io { path: path.to_path_buf(), source })?;
    if let Some(line) = unclosed_quote(&bytes) {
        return Err(SeedError::Malformed {
            line,
            message: "a quoted field starting on this line is never closed".into(),
        });
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes.as_slice());
    let header: Vec<String> = reader.headers().map_err(malformed)?.iter().map(str::to_string).collect();
    check_header(&header)?;
    let names: Vec<String> = header.iter().map(|h| if quote_columns { h.clone() } else { h.to_lowercase() }).collect();
    check_header(&names)?;
    if let Some(unknown) = column_types.keys().find(|c| !header.iter().any(|h| h.eq_ignore_ascii_case(c))) {
        return Err(SeedError::UnknownColumn { column: unknown.clone() });
    }

    let mut lines = Vec::new();
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(malformed)?;
        lines.push(record.position().map_or(0, |p| p.line()));
        records.push(record);
    }

    let mut fields = Vec::with_capacity(header.len());
    let mut arrays = Vec::with_capacity(header.len());
    for (index, (name, column)) in header.iter().zip(&names).enumerate() {
        let cells: Vec<Cell> = lines.iter().zip(&records).map(|(&line, r)| Cell { line, text: &r[index] }).collect();
        let seed_type = match declared_type(column_types, name) {
            Some(type_name) => SeedType::from_sql(type_name)
                .ok_or_else(|| SeedError::UnknownType { column: name.clone(), type_name: type_name.clone() })?,
            None => SeedType::infer(&cells),
        };
        let array = seed_type.build(&cells).map_err(|cell| SeedError::InvalidValue {
            line: cell.line,
            column: name.clone(),
            value: cell.text.to_string(),
            expected: seed_type.label(),
        })?;
        fields.push(Field::new(column, array.data_type().clone(), true));
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("one array of the right type per column"))
}

/// The type `column_types` declares for a column, named as its header writes it in any
/// case.
pub fn declared_type<'a>(column_types: &'a BTreeMap<String, String>, column: &str) -> Option<&'a String> {
    column_types.iter().find(|(c, _)| c.eq_ignore_ascii_case(column)).map(|(_, t)| t)
}

fn malformed(error: csv::Error) -> SeedError {
    let line = error.position().map_or(0, |p| p.line());
    let message = match error.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("this row has {len} fields but the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_string(),
        _ => error.to_string(),
    };
    SeedError::Malformed { line, message }
}

fn check_header(header: &[String]) -> Result<(), SeedError> {
    if header.is_empty() || header.iter().all(|h| h.trim().is_empty()) {
        return Err(SeedError::EmptyHeader);
    }
    if let Some(position) = header.iter().position(|h| h.trim().is_empty()) {
        return Err(SeedError::EmptyColumnName { position: position + 1 });
    }
    let mut seen = HashSet::new();
    match header.iter().find(|h| !seen.insert(h.as_str())) {
        Some(dup) => Err(SeedError::DuplicateColumn { column: dup.clone() }),
        None => Ok(()),
    }
}

/// The line where a quoted field opens and never closes, if any. The `csv` crate
/// accepts that silently, swallowing the rest of the file into one field.
fn unclosed_quote(bytes: &[u8]) -> Option<u64> {
    let mut line = 1;
    let mut open_since = None;
    let mut field_start = true;
    let mut iter = bytes.iter().peekable();
    while let Some(&byte) = iter.next() {
        match open_since {
            Some(_) if byte == b'"' => {
                if iter.peek() == Some(&&b'"') {
                    iter.next();
                } else {
                    open_since = None;
                }
            }
            None if byte == b'"' && field_start => open_since = Some(line),
            _ => {}
        }
        if byte == b'\n' {
            line += 1;
        }
        field_start = open_since.is_none() && matches!(byte, b',' | b'\n' | b'\r');
    }
    open_since
}

/// One value and the line it is on.
#[derive(Clone, Copy)]
struct Cell<'a> {
    line: u64,
    text: &'a str,
}

impl<'a> Cell<'a> {
    /// The trimmed value, or `None` for NULL (empty, or `null` in any case).
    fn value(self) -> Option<&'a str> {
        Some(self.text.trim()).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("null"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SeedType {
    Int32,
    Int64,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// `numeric` / `decimal` without a scale: every digit written is kept, the scale being
    /// the longest fraction among the values.
    Numeric,
    Date,
    Timestamp,
    Boolean,
    Text,
}

/// Types tried by inference, in order; `Text` when none fits.
const INFERRED: [SeedType; 6] =
    [SeedType::Int32, SeedType::Int64, SeedType::Float64, SeedType::Date, SeedType::Timestamp, SeedType::Boolean];

impl SeedType {
    fn infer(cells: &[Cell]) -> SeedType {
        let values: Vec<&str> = cells.iter().filter_map(|c| c.value()).collect();
        let all = |parse: fn(&str) -> Option<i64>| values.iter().all(|v| parse(v).is_some());
        INFERRED
            .into_iter()
            .find(|t| match t {
                // dbt tries each spelling as a type of its own: a column that mixes them is text.
                SeedType::Timestamp => all(parse_timestamp_spaced) || all(parse_timestamp_iso),
                t => values.iter().all(|v| t.accepts(v)),
            })
            .unwrap_or(SeedType::Text)
    }

    /// Parses an SQL type name as written in `column_types`.
    fn from_sql(name: &str) -> Option<SeedType> {
        let name = name.trim().to_ascii_lowercase();
        let (base, args) = match name.split_once('(') {
            Some((base, rest)) => (base.trim(), Some(rest.strip_suffix(')')?)),
            None => (name.as_str(), None),
        };
        let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
        let plain = |t| args.is_none().then_some(t);
        match base.as_str() {
            "integer" | "int" | "smallint" | "int2" | "int4" | "int32" => plain(SeedType::Int32),
            "bigint" | "int8" | "int64" => plain(SeedType::Int64),
            "double" | "double precision" | "float" | "float4" | "float8" | "float64" | "real" => {
                plain(SeedType::Float64)
            }
            "numeric" | "decimal" => match args {
                None => Some(SeedType::Numeric),
                Some(args) => {
                    let mut parts = args.split(',').map(|p| p.trim().parse::<u8>().ok());
                    let precision = parts.next()??;
                    let scale = parts.next().unwrap_or(Some(0))?;
                    let valid = parts.next().is_none() && (1..=38).contains(&precision) && scale <= precision;
                    valid.then_some(SeedType::Decimal { precision, scale: i8::try_from(scale).ok()? })
                }
            },
            "date" => plain(SeedType::Date),
            "timestamp" | "datetime" | "timestamp without time zone" => plain(SeedType::Timestamp),
            "boolean" | "bool" => plain(SeedType::Boolean),
            "text" | "string" | "varchar" | "char" | "character varying" | "character" => Some(SeedType::Text),
            _ => None,
        }
    }

    fn accepts(self, value: &str) -> bool {
        match self {
            SeedType::Int32 => parse_i32(value).is_some(),
            SeedType::Int64 => parse_i64(value).is_some(),
            SeedType::Float64 => parse_f64(value).is_some(),
            SeedType::Decimal { precision, scale } => parse_decimal_rounded(value, precision, scale).is_some(),
            SeedType::Numeric => number_text(value).is_some(),
            SeedType::Date => parse_date(value).is_some(),
            SeedType::Timestamp => parse_timestamp_declared(value).is_some(),
            SeedType::Boolean => parse_bool(value).is_some(),
            SeedType::Text => true,
        }
    }

    /// The type as named in error messages.
    fn label(self) -> &'static str {
        match self {
            SeedType::Int32 | SeedType::Int64 => "integer",
            SeedType::Float64 => "number",
            SeedType::Decimal { .. } | SeedType::Numeric => "decimal",
            SeedType::Date => "date (YYYY-MM-DD)",
            SeedType::Timestamp => "timestamp (YYYY-MM-DD HH:MM:SS)",
            SeedType::Boolean => "boolean (true or false)",
            SeedType::Text => "text",
        }
    }

    /// The column as an Arrow array; `Err` is the first cell that does not parse.
    fn build<'a>(self, cells: &[Cell<'a>]) -> Result<ArrayRef, Cell<'a>> {
        Ok(match self {
            SeedType::Int32 => Arc::new(Int32Array::from(parse_cells(cells, parse_i32)?)),
            SeedType::Int64 => Arc::new(Int64Array::from(parse_cells(cells, parse_i64)?)),
            SeedType::Float64 => Arc::new(Float64Array::from(parse_cells(cells, parse_f64)?)),
            SeedType::Numeric => {
                let scale = cells
                    .iter()
                    .filter_map(|c| number_text(c.value()?))
                    .map(|n| n.split_once('.').map_or(0, |(_, f)| f.len()))
                    .max()
                    .unwrap_or(0)
                    .min(18) as i8;
                return SeedType::Decimal { precision: 38, scale }.build(cells);
            }
            SeedType::Decimal { precision, scale } => {
                let values = parse_cells(cells, |v| parse_decimal_rounded(v, precision, scale))?;
                Arc::new(
                    Decimal128Array::from(values)
                        .with_precision_and_scale(precision, scale)
                        .expect("precision and scale checked by from_sql"),
                )
            }
            SeedType::Date => Arc::new(Date32Array::from(parse_cells(cells, parse_date)?)),
            SeedType::Timestamp => {
                Arc::new(TimestampMicrosecondArray::from(parse_cells(cells, parse_timestamp_declared)?))
            }
            SeedType::Boolean => Arc::new(BooleanArray::from(parse_cells(cells, parse_bool)?)),
            SeedType::Text => Arc::new(cells.iter().map(|c| c.value().map(|_| c.text)).collect::<StringArray>()),
        })
    }
}

fn parse_cells<'a, T>(cells: &[Cell<'a>], parse: impl Fn(&str) -> Option<T>) -> Result<Vec<Option<T>>, Cell<'a>> {
    cells
        .iter()
        .map(|&cell| match cell.value() {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or(cell),
        })
        .collect()
}

/// Currency symbols dbt's seed loader (agate) drops from numbers.
const CURRENCY_SYMBOLS: &[char] =
    &['؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤', '₫'];

/// A number as dbt reads one in a seed, in plain decimal notation (`-1234.50`, `1e3`):
/// an optional sign, then a currency symbol, `%` and `,` thousands separators dropped.
/// `NaN` and `inf` are not numbers here.
fn number_text(value: &str) -> Option<String> {
    let (sign, rest) = match value.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", value.strip_prefix('+').unwrap_or(value)),
    };
    let rest = rest.trim_start_matches(CURRENCY_SYMBOLS).trim_matches('%').trim();
    let (whole, fraction) = rest.split_once('.').map_or((rest, None), |(w, f)| (w, Some(f)));
    // Thousands separators only where they group by three: `1,234`, not `1,2`.
    let groups: Vec<&str> = whole.split(',').collect();
    let grouped = groups.len() == 1
        || (!groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3));
    let digits = groups.concat();
    let text = match fraction {
        Some(f) => format!("{sign}{digits}.{f}"),
        None => format!("{sign}{digits}"),
    };
    let body = &text[sign.len()..];
    let plain = body.bytes().any(|b| b.is_ascii_digit())
        && body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    (grouped && plain && text.parse::<f64>().is_ok()).then_some(text)
}

/// A whole number: no fraction, or one of zeros (`2.0`), or an exponent that leaves none.
fn parse_whole(value: &str) -> Option<i128> {
    let text = number_text(value)?;
    if let Ok(n) = text.parse::<i128>() {
        return Some(n);
    }
    match text.split_once('.') {
        Some((whole, fraction)) if !text.contains(['e', 'E']) => fraction
            .bytes()
            .all(|b| b == b'0')
            .then(|| if whole.is_empty() || whole == "-" { Some(0) } else { whole.parse().ok() })
            .flatten(),
        _ => {
            let f: f64 = text.parse().ok()?;
            (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i128)
        }
    }
}

fn parse_i32(value: &str) -> Option<i32> {
    parse_whole(value)?.try_into().ok()
}

fn parse_i64(value: &str) -> Option<i64> {
    parse_whole(value)?.try_into().ok()
}

/// A zero keeps no sign (`-0` is 0), as dbt loads it.
fn parse_f64(value: &str) -> Option<f64> {
    number_text(value)?.parse::<f64>().ok().map(|f| if f == 0.0 { 0.0 } else { f })
}

/// A decimal of `scale` fraction digits, rounded half away from zero (as Postgres casts
/// `10.005` to `numeric(12,2)`: `10.01`); `None` when it does not fit `precision`.
fn parse_decimal_rounded(value: &str, precision: u8, scale: i8) -> Option<i128> {
    let text = number_text(value)?;
    let text = if text.contains(['e', 'E']) { format!("{}", text.parse::<f64>().ok()?) } else { text };
    let (negative, body) = text.strip_prefix('-').map_or((false, text.as_str()), |b| (true, b));
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let scale = usize::try_from(scale).ok()?;
    let mut digits: String = whole.to_string();
    digits.extend(fraction.chars().chain(std::iter::repeat('0')).take(scale));
    let mut n: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    if fraction.as_bytes().get(scale).is_some_and(|&d| d >= b'5') {
        n = n.checked_add(1)?;
    }
    let fits = n.checked_abs()? < 10i128.checked_pow(u32::from(precision))?;
    fits.then_some(if negative { -n } else { n })
}

fn parse_date(value: &str) -> Option<i32> {
    let shaped = value.len() == 10 && value.as_bytes()[4] == b'-' && value.as_bytes()[7] == b'-';
    let date = shaped.then(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok()).flatten()?;
    Some(Date32Type::from_naive_date(date))
}

/// Microseconds since the epoch, in either of dbt's two spellings.
fn parse_timestamp(value: &str) -> Option<i64> {
    parse_timestamp_spaced(value).or_else(|| parse_timestamp_iso(value))
}

/// A cell of a column typed timestamp (inferred, or declared in `column_types`, where the
/// warehouse reads more spellings: no seconds, a fraction, a bare date).
fn parse_timestamp_declared(value: &str) -> Option<i64> {
    parse_timestamp(value).or_else(|| {
        ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
            .or_else(|| NaiveDate::parse_from_str(value, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
            .map(|t| t.and_utc().timestamp_micros())
    })
}

/// `YYYY-MM-DD HH:MM:SS` exactly (agate's DateTime as dbt sets it up).
fn parse_timestamp_spaced(value: &str) -> Option<i64> {
    let naive = NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S").ok()?;
    Some(naive.and_utc().timestamp_micros())
}

/// ISO 8601 with `T`, a fraction and an offset allowed (converted to UTC).
fn parse_timestamp_iso(value: &str) -> Option<i64> {
    let shaped = value.len() >= 19 && value.as_bytes()[10] == b'T';
    let naive = shaped.then(|| NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").ok()).flatten();
    let naive = naive.or_else(|| DateTime::parse_from_rfc3339(value).ok().map(|t| t.naive_utc()))?;
    Some(naive.and_utc().timestamp_micros())
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::display::array_value_to_string;

    use super::*;

    fn read(csv: &str, overrides: &[(&str, &str)]) -> Result<RecordBatch, SeedError> {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("seed.csv");
        std::fs::write(&path, csv).unwrap();
        let types = overrides.iter().map(|(c, t)| (c.to_string(), t.to_string())).collect();
        read_seed_csv(&path, &types, false)
    }

    fn types(batch: &RecordBatch) -> Vec<String> {
        batch.schema().fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect()
    }

    fn column(batch: &RecordBatch, name: &str) -> Vec<String> {
        let array = batch.column_by_name(name).unwrap();
        (0..array.len())
            .map(|i| if array.is_null(i) { "NULL".into() } else { array_value_to_string(array, i).unwrap() })
            .collect()
    }

    #[test]
    fn infers_each_type_from_all_values_as_dbt_does() {
        let csv = "\
int,float,date,ts,flag,text,empty
1,1.5,2024-01-01,2024-01-01T10:00:00,true,a,
-2,2,2024-02-29,2024-01-01T10:00:00.250,FALSE,1,
,,,,,,null
3,1e3,2024-12-31,2024-01-01T12:00:00+02:00,True,2024-01-01,
";
        let batch = read(csv, &[]).unwrap();
        assert_eq!(
            types(&batch),
            [
                "int: Int32",
                "float: Float64",
                "date: Date32",
                "ts: Timestamp(µs)",
                "flag: Boolean",
                "text: Utf8",
                "empty: Int32"
            ]
        );
        assert_eq!(column(&batch, "int"), ["1", "-2", "NULL", "3"]);
        assert_eq!(column(&batch, "float"), ["1.5", "2.0", "NULL", "1000.0"]);
        assert_eq!(column(&batch, "date"), ["2024-01-01", "2024-02-29", "NULL", "2024-12-31"]);
        assert_eq!(
            column(&batch, "ts"),
            ["2024-01-01T10:00:00", "2024-01-01T10:00:00.250", "NULL", "2024-01-01T10:00:00"]
        );
        assert_eq!(column(&batch, "flag"), ["true", "false", "NULL", "true"]);
        assert_eq!(column(&batch, "text"), ["a", "1", "NULL", "2024-01-01"]);
        assert_eq!(column(&batch, "empty"), ["NULL"; 4]);
    }

    #[test]
    fn numbers_read_like_dbt_whole_ones_as_integers() {
        let csv = "whole,big,money,share,grouped,name\n1,3000000000,$5,5%,\"1,234\",null\n2.0,1,-$1.25,12.5%,999,NULL\n3,,,,,x\n";
        let batch = read(csv, &[]).unwrap();
        assert_eq!(
            types(&batch),
            ["whole: Int32", "big: Int64", "money: Float64", "share: Float64", "grouped: Int32", "name: Utf8"]
        );
        assert_eq!(column(&batch, "whole"), ["1", "2", "3"]);
        assert_eq!(column(&batch, "money"), ["5.0", "-1.25", "NULL"]);
        assert_eq!(column(&batch, "grouped"), ["1234", "999", "NULL"]);
        assert_eq!(column(&batch, "name"), ["NULL", "NULL", "x"], "`null` in any case is NULL");
        // Not thousands separators, and not numbers at all.
        let batch = read("a,b\n\"1,2\",inf\n", &[]).unwrap();
        assert_eq!(types(&batch), ["a: Utf8", "b: Utf8"]);
    }

    #[test]
    fn a_column_mixing_the_two_timestamp_spellings_is_text_and_minus_zero_is_zero() {
        let batch = read(
            "a,b,n\n2024-01-01 10:00:00,2024-01-01T10:00:00Z,-0\n2024-01-01T11:00:00,2024-01-02T00:00:00+02:00,1.5\n",
            &[],
        )
        .unwrap();
        assert_eq!(types(&batch), ["a: Utf8", "b: Timestamp(µs)", "n: Float64"]);
        assert_eq!(column(&batch, "n"), ["0.0", "1.5"]);
    }

    #[test]
    fn nan_malformed_dates_and_spaced_timestamps_with_a_fraction_stay_text() {
        let batch = read(
            "a,b,c,d\nNaN,2024-1-5,2024-01-01 10:00,2024-01-01 10:00:00.5\n1,2024-01-05,2024-01-01 10:00,x\n",
            &[],
        )
        .unwrap();
        assert_eq!(types(&batch), ["a: Utf8", "b: Utf8", "c: Utf8", "d: Utf8"]);
    }

    #[test]
    fn a_declared_decimal_rounds_half_away_from_zero_and_numeric_keeps_every_digit() {
        let csv = "p,q\n10.005,123456789012345678.12\n-0.125,1.10\n2.675,25\n";
        let batch = read(csv, &[("p", "numeric(12,2)"), ("q", "numeric")]).unwrap();
        assert_eq!(types(&batch), ["p: Decimal128(12, 2)", "q: Decimal128(38, 2)"]);
        assert_eq!(column(&batch, "p"), ["10.01", "-0.13", "2.68"]);
        assert_eq!(column(&batch, "q"), ["123456789012345678.12", "1.10", "25.00"]);
        let err = read("p\n1000.5\n", &[("p", "numeric(4,1)")]).unwrap_err();
        assert!(matches!(err, SeedError::InvalidValue { line: 2, .. }), "{err}");
    }

    // Regression: #18, rounding up the largest i128 overflowed.
    #[test]
    fn a_decimal_too_large_to_round_is_an_invalid_value() {
        let csv = "p\n170141183460469231731687303715884105727.5\n";
        let err = read(csv, &[("p", "numeric(38,0)")]).unwrap_err();
        assert!(matches!(err, SeedError::InvalidValue { line: 2, .. }), "{err}");
    }

    #[test]
    fn column_types_override_inference() {
        let csv = "zip,amount,price,day,ok,n\n01234,1,10.50,2024-01-01,true,7\n";
        let overrides = [
            ("zip", "varchar(5)"),
            ("amount", "double precision"),
            ("price", "decimal(10, 2)"),
            ("day", "text"),
            ("ok", "BOOLEAN"),
            ("n", "bigint"),
        ];
        let batch = read(csv, &overrides).unwrap();
        assert_eq!(
            types(&batch),
            ["zip: Utf8", "amount: Float64", "price: Decimal128(10, 2)", "day: Utf8", "ok: Boolean", "n: Int64"]
        );
        assert_eq!(column(&batch, "zip"), ["01234"]);
        assert_eq!(column(&batch, "price"), ["10.50"]);
    }

    #[test]
    fn a_value_that_does_not_parse_under_an_override_names_line_and_column() {
        let err = read("id,day\n1,2024-01-01\n2,soon\n", &[("day", "date")]).unwrap_err();
        assert_eq!(err.to_string(), "line 3, column `day`: `soon` is not a valid date (YYYY-MM-DD)");
        let err = read("id\n1\n", &[("id", "money")]).unwrap_err();
        assert!(matches!(err, SeedError::UnknownType { .. }), "{err}");
        let err = read("id\n1\n", &[("idd", "int")]).unwrap_err();
        assert!(matches!(err, SeedError::UnknownColumn { .. }), "{err}");
    }

    #[test]
    fn ragged_rows_report_their_file_line() {
        let err = read("a,b\n1,2\n\"multi\nline\",3\n4,5,6\n", &[]).unwrap_err();
        assert_eq!(err.to_string(), "line 5: this row has 3 fields but the header has 2");
        let err = read("a,b\n1\n", &[]).unwrap_err();
        assert!(matches!(err, SeedError::Malformed { line: 2, .. }), "{err}");
    }

    #[test]
    fn an_unclosed_quote_reports_the_line_it_opens_on() {
        let err = read("a,b\n1,2\n3,\"never closed\n4,5\n", &[]).unwrap_err();
        assert!(matches!(err, SeedError::Malformed { line: 3, .. }), "{err}");
        // Quotes inside unquoted fields and escaped quotes are fine.
        let batch = read("a,b\n5\" screen,\"say \"\"hi\"\"\"\n", &[]).unwrap();
        assert_eq!(column(&batch, "a"), ["5\" screen"]);
        assert_eq!(column(&batch, "b"), ["say \"hi\""]);
    }

    #[test]
    fn header_spelling_is_kept_unless_quote_columns_is_off() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("seed.csv");
        std::fs::write(&path, "CustomerID,First Name\n1,a\n").unwrap();
        let names = |quote| {
            let batch = read_seed_csv(&path, &BTreeMap::new(), quote).unwrap();
            batch.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(true), ["CustomerID", "First Name"]);
        assert_eq!(names(false), ["customerid", "first name"]);
    }

    #[test]
    fn headers_must_be_present_named_and_unique() {
        assert!(matches!(read("", &[]), Err(SeedError::EmptyHeader)));
        assert!(matches!(read("a,,c\n1,2,3\n", &[]), Err(SeedError::EmptyColumnName { position: 2 })));
        assert!(matches!(read("a,b,a\n1,2,3\n", &[]), Err(SeedError::DuplicateColumn { column }) if column == "a"));
        let batch = read("a,b\n", &[]).unwrap();
        assert_eq!((batch.num_rows(), types(&batch)), (0, vec!["a: Int32".to_string(), "b: Int32".to_string()]));
    }
}
