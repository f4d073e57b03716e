//! dbt's `modules`: the Python modules its Jinja context offers, as far as packages use
//! them: `modules.datetime` (`datetime(y, m, d)`, `datetime.now()`, `utcnow()`, `strptime`,
//! `fromisoformat`, `date(y, m, d)`, `date.today()`) and `modules.re` (`sub`, `match`, `search`, `fullmatch`, `findall`,
//! `split`, `escape`, `compile`, with `re.I`). Python's regular expressions are read as
//! Rust's `regex` reads them (no look-around); a pattern it cannot read is an error.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, Utc};
use minijinja::value::{Kwargs, Object, ObjectRepr, Value, from_args};
use minijinja::{Error, ErrorKind, State};

use super::objects::Timestamp;
use crate::project::jinja::map_value;

/// The `modules` global.
pub fn modules() -> Value {
    let datetime =
        map_value([("datetime", Value::from_object(DateTimeClass)), ("date", Value::from_object(DateClass))]);
    map_value([("datetime", datetime), ("re", Value::from_object(Re))])
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

/// `datetime.datetime`.
#[derive(Debug)]
struct DateTimeClass;

impl Object for DateTimeClass {
    /// `datetime.datetime(year, month, day, hour=0, minute=0, second=0)`.
    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let parts: Vec<i64> =
            args.iter().map(|a| i64::try_from(a.clone())).collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?;
        let part = |i: usize| parts.get(i).copied().unwrap_or(0);
        let (y, m, d) = (part(0), part(1), part(2));
        let at = NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)
            .and_then(|day| day.and_hms_opt(part(3) as u32, part(4) as u32, part(5) as u32))
            .filter(|_| parts.len() >= 3)
            .ok_or_else(|| bad(format!("{parts:?} is not a date and time")))?;
        Ok(Value::from_object(Timestamp(at.and_utc())))
    }

    fn call_method(self: &Arc<Self>, _state: &mut State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let at = |t: chrono::DateTime<Utc>| Ok(Value::from_object(Timestamp(t)));
        match method {
            "now" | "utcnow" => at(Utc::now()),
            "strptime" => {
                let (text, format): (String, String) = from_args(args)?;
                let parsed = NaiveDateTime::parse_from_str(&text, &format)
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, &format).map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                    })
                    .map_err(|e| bad(format!("`{text}` does not match `{format}`: {e}")))?;
                at(parsed.and_utc())
            }
            "fromisoformat" => {
                let (text,): (String,) = from_args(args)?;
                let parsed = chrono::DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
                    .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc()))
                    .or_else(|_| {
                        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                            .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                    })
                    .map_err(|_| bad(format!("`{text}` is not an ISO date or time")))?;
                at(parsed)
            }
            _ => Err(Error::new(ErrorKind::UnknownMethod, format!("datetime.datetime has no `{method}` in etlm"))),
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
                Ok(Value::from(self.0.format(&fmt).to_string()))
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
}
