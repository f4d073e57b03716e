//! dbt's `modules`: the Python modules its Jinja context offers, as far as packages use
//! them:
//! - `modules.datetime`: `datetime(y, m, d, ...)` (positional or keyword, `tzinfo=`),
//!   `datetime.now()`, `utcnow()`, `today()`, `strptime`, `fromisoformat`, `date(y, m, d)`,
//!   `date.today()`; a datetime renders as Python's `str()` does.
//! - `modules.pytz`: `timezone(name)` (the IANA database), `utc`; `tz.localize(dt)`.
//! - `modules.re`: `sub`, `match`, `search`, `fullmatch`, `findall`, `split`, `escape`,
//!   `compile`, with `re.I`. Python's regular expressions are read as Rust's `regex` reads
//!   them (no look-around); a pattern it cannot read is an error.

use std::sync::Arc;

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use minijinja::value::{Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};

use crate::project::jinja::map_value;

/// The `modules` global.
pub fn modules() -> Value {
    let datetime =
        map_value([("datetime", Value::from_object(DateTimeClass)), ("date", Value::from_object(DateClass))]);
    map_value([("datetime", datetime), ("re", Value::from_object(Re)), ("pytz", Value::from_object(Pytz))])
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// A Python `datetime`: a wall-clock time, with a UTC offset when it is aware.
#[derive(Debug, Clone, Copy)]
pub struct DateTime {
    local: NaiveDateTime,
    offset: Option<FixedOffset>,
}

impl DateTime {
    /// An aware datetime in UTC (`run_started_at`).
    pub fn utc(at: chrono::DateTime<Utc>) -> DateTime {
        DateTime { local: at.naive_utc(), offset: Some(Utc.fix()) }
    }

    fn naive(local: NaiveDateTime) -> DateTime {
        DateTime { local, offset: None }
    }

    pub fn into_value(self) -> Value {
        Value::from_object(self)
    }

    /// Python's `str()` (`sep` ' ') and `isoformat()` (`sep` 'T').
    fn python(&self, sep: char) -> String {
        let micros = self.local.nanosecond() / 1000;
        let mut text = self.local.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string();
        if micros != 0 {
            text.push_str(&format!(".{micros:06}"));
        }
        if let Some(offset) = self.offset {
            let seconds = offset.local_minus_utc();
            let sign = if seconds < 0 { '-' } else { '+' };
            let seconds = seconds.unsigned_abs();
            text.push_str(&format!("{sign}{:02}:{:02}", seconds / 3600, seconds / 60 % 60));
            if seconds % 60 != 0 {
                text.push_str(&format!(":{:02}", seconds % 60));
            }
        }
        text
    }

    /// The instant in UTC; a naive datetime is taken as UTC (the machine time of a server).
    /// An error at the calendar's ends, where the offset would leave it.
    fn instant(&self) -> Result<chrono::DateTime<Utc>, Error> {
        let local = self.local.checked_sub_offset(self.offset.unwrap_or(Utc.fix()));
        local.map(|t| t.and_utc()).ok_or_else(|| bad(format!("{} is out of range in UTC", self.python(' '))))
    }
}

/// `value` (a date or datetime's `format(fmt)`) as text, or an error for a directive
/// chrono does not know (`%Q`) or the value lacks (`%H` of a date): `to_string` panics then.
fn strftime(value: impl std::fmt::Display, fmt: &str) -> Result<String, Error> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{value}").map_err(|_| bad(format!("`{fmt}` is not a format etlm can apply here")))?;
    Ok(out)
}

const PARTS: [&str; 7] = ["year", "month", "day", "hour", "minute", "second", "microsecond"];

/// `datetime.datetime(year, month, day, hour=0, minute=0, second=0, microsecond=0, tzinfo=None)`,
/// positional or keyword.
fn construct(args: &[Value]) -> Result<DateTime, Error> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Some(Kwargs::try_from(last.clone())?)),
        _ => (args, None),
    };
    let mut parts = [0i64; 7];
    for (i, value) in positional.iter().enumerate().take(7) {
        parts[i] = i64::try_from(value.clone()).map_err(|e| bad(e.to_string()))?;
    }
    let mut given = positional.len();
    let mut tzinfo = None;
    if let Some(kwargs) = &kwargs {
        for (i, name) in PARTS.iter().enumerate() {
            if let Some(v) = kwargs.get::<Option<i64>>(name)? {
                parts[i] = v;
                given = given.max(i + 1);
            }
        }
        tzinfo = kwargs.get::<Option<Value>>("tzinfo")?;
        kwargs.assert_all_used()?;
    }
    if given < 3 {
        return Err(bad("datetime() needs a year, a month and a day"));
    }
    from_parts(parts, tzinfo.map_or(Ok(None), |tz| offset_of(&tz))?)
}

/// The offset a `tzinfo=` argument gives: none for `None`, else its pytz zone's.
fn offset_of(tzinfo: &Value) -> Result<Option<FixedOffset>, Error> {
    if tzinfo.is_none() {
        return Ok(None);
    }
    let zone = tzinfo.downcast_object_ref::<Zone>().ok_or_else(|| bad("tzinfo must be a pytz timezone"))?;
    Ok(Some(zone.attached()))
}

fn from_parts(parts: [i64; 7], offset: Option<FixedOffset>) -> Result<DateTime, Error> {
    let part = |i: usize| u32::try_from(parts[i]).ok();
    let local = i32::try_from(parts[0])
        .ok()
        .and_then(|year| NaiveDate::from_ymd_opt(year, part(1)?, part(2)?))
        .and_then(|day| day.and_hms_micro_opt(part(3)?, part(4)?, part(5)?, part(6)?))
        .ok_or_else(|| bad(format!("{parts:?} is not a date and time")))?;
    Ok(DateTime { local, offset })
}

/// `datetime.datetime`.
#[derive(Debug)]
struct DateTimeClass;

impl Object for DateTimeClass {
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        Ok(construct(args)?.into_value())
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let naive = |t: NaiveDateTime| Ok(DateTime::naive(t).into_value());
        match method {
            "now" => {
                let (tz,): (Option<Value>,) = from_args(args)?;
                match tz.as_ref().and_then(|tz| tz.downcast_object_ref::<Zone>()) {
                    Some(zone) => Ok(zone.at_instant(Utc::now())?.into_value()),
                    None => naive(Utc::now().naive_utc()),
                }
            }
            "utcnow" | "today" => naive(Utc::now().naive_utc()),
            "strptime" => {
                let (text, format): (String, String) = from_args(args)?;
                let parsed = NaiveDateTime::parse_from_str(&text, &format)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, &format).map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|e| bad(format!("`{text}` does not match `{format}`: {e}")))?;
                naive(parsed)
            }
            "fromisoformat" => {
                let (text,): (String,) = from_args(args)?;
                if let Ok(aware) = chrono::DateTime::parse_from_rfc3339(&text)
                    .or_else(|_| chrono::DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f%:z"))
                {
                    return Ok(DateTime { local: aware.naive_local(), offset: Some(*aware.offset()) }.into_value());
                }
                let parsed = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f"))
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|_| bad(format!("`{text}` is not an ISO date or time")))?;
                naive(parsed)
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("datetime.datetime has no `{method}` in etlm"))),
        }
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.local;
        match key.as_str()? {
            "year" => Some(Value::from(t.year())),
            "month" => Some(Value::from(t.month())),
            "day" => Some(Value::from(t.day())),
            "hour" => Some(Value::from(t.hour())),
            "minute" => Some(Value::from(t.minute())),
            "second" => Some(Value::from(t.second())),
            "microsecond" => Some(Value::from(t.nanosecond() / 1000)),
            "tzinfo" => Some(self.offset.map_or(Value::from(()), |o| Value::from_object(Zone::Fixed(o)))),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                let offset = self.offset.unwrap_or(Utc.fix());
                let at = offset.from_local_datetime(&self.local).single().ok_or_else(|| bad("no such local time"))?;
                let fmt = if self.offset.is_none() { fmt.replace("%z", "").replace("%Z", "") } else { fmt };
                Ok(Value::from(strftime(at.format(&fmt), &fmt)?))
            }
            "isoformat" => Ok(Value::from(self.python('T'))),
            "date" => Ok(Value::from_object(Day(self.local.date()))),
            "timestamp" => Ok(Value::from(self.instant()?.timestamp_micros() as f64 / 1e6)),
            "astimezone" => {
                let (tz,): (Value,) = from_args(args)?;
                let zone = tz.downcast_object_ref::<Zone>().ok_or_else(|| bad("astimezone takes a pytz timezone"))?;
                Ok(zone.at_instant(self.instant()?)?.into_value())
            }
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                let t = &self.local;
                let mut parts = [
                    t.year().into(),
                    t.month().into(),
                    t.day().into(),
                    t.hour().into(),
                    t.minute().into(),
                    t.second().into(),
                    (t.nanosecond() / 1000).into(),
                ];
                for (i, name) in PARTS.iter().enumerate() {
                    if let Some(v) = kwargs.get::<Option<i64>>(name)? {
                        parts[i] = v;
                    }
                }
                let offset = match kwargs.get::<Option<Value>>("tzinfo")? {
                    Some(tz) => offset_of(&tz)?,
                    None => self.offset,
                };
                kwargs.assert_all_used()?;
                Ok(from_parts(parts, offset)?.into_value())
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("datetimes have no method `{method}`"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.python(' '))
    }
}

/// `modules.pytz`.
#[derive(Debug)]
struct Pytz;

impl Object for Pytz {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "utc" | "UTC" => Some(Value::from_object(Zone::Named(chrono_tz::UTC))),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "timezone" => {
                let (name,): (String,) = from_args(args)?;
                let zone: chrono_tz::Tz = name.parse().map_err(|_| bad(format!("unknown time zone `{name}`")))?;
                Ok(Value::from_object(Zone::Named(zone)))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("pytz has no `{method}` in etlm"))),
        }
    }
}

/// A pytz time zone, or the fixed offset of an aware datetime's `tzinfo`.
#[derive(Debug)]
enum Zone {
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Zone {
    /// The offset a pytz zone gives when passed as `tzinfo=` to the constructor: its first
    /// entry (local mean time), in whole minutes, as pytz has it. `localize` is the right way.
    fn attached(&self) -> FixedOffset {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(zone) => {
                let earliest =
                    NaiveDate::from_ymd_opt(1800, 1, 1).unwrap_or_default().and_hms_opt(0, 0, 0).unwrap_or_default();
                let seconds = zone.offset_from_utc_datetime(&earliest).fix().local_minus_utc();
                let minutes = (f64::from(seconds) / 60.0).round() as i32;
                FixedOffset::east_opt(minutes * 60).unwrap_or(Utc.fix())
            }
        }
    }

    /// The wall-clock time at `instant` here; an error at the calendar's ends, where the
    /// offset would leave it.
    fn at_instant(&self, instant: chrono::DateTime<Utc>) -> Result<DateTime, Error> {
        let offset = match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(zone) => zone.offset_from_utc_datetime(&instant.naive_utc()).fix(),
        };
        let local = instant
            .naive_utc()
            .checked_add_offset(offset)
            .ok_or_else(|| bad(format!("{instant} is out of range in {offset}")))?;
        Ok(DateTime { local, offset: Some(offset) })
    }
}

impl Object for Zone {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match (key.as_str()?, self.as_ref()) {
            ("zone", Zone::Named(zone)) => Some(Value::from(zone.name())),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "localize" => {
                let (at,): (Value,) = from_args(args)?;
                let at = at.downcast_object_ref::<DateTime>().ok_or_else(|| bad("localize takes a datetime"))?;
                let offset = match self.as_ref() {
                    Zone::Fixed(offset) => *offset,
                    Zone::Named(zone) => zone
                        .offset_from_local_datetime(&at.local)
                        .earliest()
                        .ok_or_else(|| bad(format!("{} does not exist in {}", at.python(' '), zone.name())))?
                        .fix(),
                };
                Ok(DateTime { local: at.local, offset: Some(offset) }.into_value())
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("time zones have no method `{method}`"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_ref() {
            Zone::Named(zone) => f.write_str(zone.name()),
            Zone::Fixed(offset) => write!(f, "{offset}"),
        }
    }
}

/// `datetime.date`.
#[derive(Debug)]
struct DateClass;

impl Object for DateClass {
    /// `datetime.date(year, month, day)`.
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let (y, m, d): (i32, u32, u32) = from_args(args)?;
        let day = NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| bad(format!("{y}-{m}-{d} is not a date")))?;
        Ok(Value::from_object(Day(day)))
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "today" => Ok(Value::from_object(Day(Utc::now().date_naive()))),
            "fromisoformat" => {
                let (text,): (String,) = from_args(args)?;
                let day = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    .map_err(|_| bad(format!("`{text}` is not an ISO date")))?;
                Ok(Value::from_object(Day(day)))
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("datetime.date has no `{method}` in etlm"))),
        }
    }
}

/// A `datetime.date`: renders `2024-01-31`.
#[derive(Debug)]
pub struct Day(pub NaiveDate);

impl Object for Day {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        use chrono::Datelike;
        match key.as_str()? {
            "year" => Some(Value::from(self.0.year())),
            "month" => Some(Value::from(self.0.month())),
            "day" => Some(Value::from(self.0.day())),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                Ok(Value::from(strftime(self.0.format(&fmt), &fmt)?))
            }
            "isoformat" => Ok(Value::from(self.0.to_string())),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("dates have no method `{method}`"))),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `re`, and a compiled pattern (`re.compile(p)`), which has the same methods less the
/// pattern argument.
#[derive(Debug)]
struct Re;

#[derive(Debug)]
struct Pattern(regex::Regex);

/// Python's `re.IGNORECASE`.
const IGNORECASE: i64 = 2;

fn compile(pattern: &str, flags: i64) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags & IGNORECASE != 0)
        .build()
        .map_err(|e| bad(format!("etlm cannot read the regular expression `{pattern}`: {e}")))
}

/// Python's replacement syntax (`\1`, `\g<name>`) in Rust's (`${1}`, `${name}`).
fn replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    chars.next();
                    out.push_str(&format!("${{{d}}}"));
                }
                Some('g') => {
                    chars.next();
                    let name: String = chars.by_ref().skip(1).take_while(|c| *c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// Runs `method` of `re` with `regex` as the pattern; `args` are what follows it.
fn apply(regex: &regex::Regex, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "sub" => {
            let (repl, text, kwargs): (String, String, Kwargs) = from_args(args)?;
            let count: Option<usize> = kwargs.get("count")?;
            let _ = kwargs.get::<Option<i64>>("flags")?;
            let repl = replacement(&repl);
            Ok(Value::from(regex.replacen(&text, count.unwrap_or(0), repl.as_str()).into_owned()))
        }
        "match" | "search" | "fullmatch" => {
            let (text,): (String,) = from_args(args)?;
            let found = regex.captures(&text).filter(|c| {
                let whole = c.get(0).expect("a match has group 0");
                match method {
                    "match" => whole.start() == 0,
                    "fullmatch" => whole.start() == 0 && whole.end() == text.len(),
                    _ => true,
                }
            });
            Ok(match found {
                Some(c) => {
                    let groups: Vec<Value> =
                        c.iter().map(|g| g.map_or(Value::from(()), |g| Value::from(g.as_str()))).collect();
                    Value::from_object(Match(groups))
                }
                None => Value::from(()),
            })
        }
        "findall" => {
            let (text,): (String,) = from_args(args)?;
            let found: Vec<Value> = regex
                .captures_iter(&text)
                .map(|c| match c.len() {
                    1 => Value::from(c.get(0).map_or("", |m| m.as_str())),
                    2 => Value::from(c.get(1).map_or("", |m| m.as_str())),
                    _ => Value::from(
                        c.iter().skip(1).map(|g| Value::from(g.map_or("", |m| m.as_str()))).collect::<Vec<_>>(),
                    ),
                })
                .collect();
            Ok(Value::from(found))
        }
        "split" => {
            let (text,): (String,) = from_args(args)?;
            Ok(Value::from(regex.split(&text).map(Value::from).collect::<Vec<_>>()))
        }
        _ => Err(Error::new(ErrorKind::UnknownMethod, format!("re has no `{method}` in etlm"))),
    }
}

impl Object for Re {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "I" | "IGNORECASE" => Some(Value::from(IGNORECASE)),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let Some((pattern, rest)) = args.split_first() else { return Err(bad(format!("re.{method} needs a pattern"))) };
        let pattern = pattern.to_string();
        match method {
            "escape" => Ok(Value::from(regex::escape(&pattern))),
            "compile" => {
                let (flags,): (Option<i64>,) = from_args(rest)?;
                Ok(Value::from_object(Pattern(compile(&pattern, flags.unwrap_or(0))?)))
            }
            _ => {
                // A trailing `flags` argument (re.I) is read, not passed on.
                let (rest, flags) = match rest.last().and_then(|v| i64::try_from(v.clone()).ok()) {
                    Some(flags) if rest.len() > if method == "sub" { 2 } else { 1 } => (&rest[..rest.len() - 1], flags),
                    _ => (rest, 0),
                };
                apply(&compile(&pattern, flags)?, method, rest)
            }
        }
    }
}

impl Object for Pattern {
    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        apply(&self.0, method, args)
    }
}

/// A match: `group(n)`, `groups()`, true in an `if`.
#[derive(Debug)]
struct Match(Vec<Value>);

impl Object for Match {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "group" => {
                let (n,): (Option<usize>,) = from_args(args)?;
                Ok(self.0.get(n.unwrap_or(0)).cloned().unwrap_or(Value::from(())))
            }
            "groups" => Ok(Value::from(self.0[1..].to_vec())),
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("matches have no method `{method}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn re_and_datetime_work_as_packages_use_them() {
        let mut env = crate::project::jinja::python::environment();
        env.add_global("modules", super::modules());
        let text = "{{ modules.re.sub('[ -]+', '_', 'a b-c') }} {{ modules.re.sub('^([0-9])', 'n\\\\1', '1x') }} \
                    {{ modules.re.match('a(b)', 'abc').group(1) }} {{ modules.re.match('b', 'abc') is none }} \
                    {{ modules.re.search('B', 'abc', modules.re.I).group(0) }} {{ modules.re.findall('[0-9]', 'a1b2') }} \
                    {{ modules.datetime.datetime.strptime('2024-01-31', '%Y-%m-%d').strftime('%d/%m') }} \
                    {{ modules.datetime.date.fromisoformat('2024-02-01').isoformat() }} \
                    {{ modules.datetime.date(1997, 9, 29) }} {{ modules.datetime.datetime(2024, 1, 2, 3).strftime('%H') }}";
        assert_eq!(env.render_str(text, ()).unwrap(), "a_b_c n1x b True b ['1', '2'] 31/01 2024-02-01 1997-09-29 03");
    }

    #[test]
    fn datetimes_render_as_python_and_pytz_zones_offset_them() {
        let mut env = crate::project::jinja::python::environment();
        env.add_global("modules", super::modules());
        let render = |text: &str| env.render_str(text, ()).unwrap();
        assert_eq!(render("{{ modules.datetime.datetime(1997, 9, 29, 6, 14) }}"), "1997-09-29 06:14:00");
        assert_eq!(
            render("{{ modules.datetime.datetime(year=2024, month=1, day=2, microsecond=5).isoformat() }}"),
            "2024-01-02T00:00:00.000005"
        );
        // pytz's zone passed as tzinfo= is its local mean time (-07:53 in Los Angeles), as in Python.
        let la = "modules.pytz.timezone('America/Los_Angeles')";
        assert_eq!(
            render(&format!("{{{{ modules.datetime.datetime(1997, 9, 29, 6, 14, 0, tzinfo={la}) }}}}")),
            "1997-09-29 06:14:00-07:53"
        );
        assert_eq!(
            render(&format!("{{{{ {la}.localize(modules.datetime.datetime(1997, 9, 29, 6, 14)) }}}}")),
            "1997-09-29 06:14:00-07:00"
        );
        assert_eq!(
            render(&format!(
                "{{{{ modules.datetime.datetime(2024, 1, 15, 12, tzinfo=modules.pytz.utc).astimezone({la}).strftime('%H:%M %z') }}}}"
            )),
            "04:00 -0800"
        );
        assert_eq!(render("{{ modules.datetime.datetime(2024, 3, 1).replace(day=5).date() }}"), "2024-03-05");
        let err = env.render_str("{{ modules.pytz.timezone('Mars/Olympus') }}", ()).unwrap_err();
        assert!(err.to_string().contains("unknown time zone `Mars/Olympus`"), "{err}");
    }

    // Regression: #18, an unknown strftime directive and a time zone at the calendar's
    // ends panicked instead of failing the render.
    #[test]
    fn bad_formats_and_times_out_of_range_are_render_errors() {
        let mut env = crate::project::jinja::python::environment();
        env.add_global("modules", super::modules());
        let error = |text: &str| env.render_str(text, ()).unwrap_err().to_string();
        assert!(error("{{ modules.datetime.datetime(2024, 1, 2).strftime('%Q') }}").contains("`%Q`"));
        assert!(error("{{ modules.datetime.date(2024, 1, 2).strftime('%H') }}").contains("`%H`"));
        let tokyo = "modules.pytz.timezone('Asia/Tokyo')";
        let late = format!("{{{{ modules.datetime.datetime(262142, 12, 31, 23).astimezone({tokyo}) }}}}");
        assert!(error(&late).contains("out of range"), "{}", error(&late));
        let early = format!("{{{{ modules.datetime.datetime(-262143, 1, 1, tzinfo={tokyo}).timestamp() }}}}");
        assert!(error(&early).contains("out of range"));
    }
}
