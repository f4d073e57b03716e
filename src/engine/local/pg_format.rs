//! Postgres' date and time template patterns (`to_char(d, 'FMDay, DD Mon YYYY')`), for the
//! embedded engine's `to_char`, whose own patterns are chrono's (`%Y-%m-%d`). SQL written for
//! Postgres, as packages' `postgres__` macros are, uses these.

use chrono::{Datelike, NaiveDateTime, Timelike};

/// A piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Text(String),
    /// A field, and whether `FM` (no padding) precedes it.
    Field(Field, bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Hour24,
    Hour12,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    Meridiem { upper: bool, dots: bool },
    Year4,
    Year3,
    Year2,
    Year1,
    IsoYear,
    MonthName(Case),
    MonthAbbrev(Case),
    Month,
    DayName(Case),
    DayAbbrev(Case),
    DayOfYear,
    IsoDayOfYear,
    DayOfMonth,
    DayOfWeek,
    IsoDayOfWeek,
    IsoWeek,
    WeekOfYear,
    WeekOfMonth,
    Quarter,
}

/// How a name is written: `MONTH`, `Month` or `month`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Upper,
    Capital,
    Lower,
}

/// Patterns, longest first where one is a prefix of another. Names are matched with their
/// case (it sets the output's); numeric fields in any case, as Postgres does.
const NAMED: [(&str, Field); 20] = [
    ("MONTH", Field::MonthName(Case::Upper)),
    ("Month", Field::MonthName(Case::Capital)),
    ("month", Field::MonthName(Case::Lower)),
    ("MON", Field::MonthAbbrev(Case::Upper)),
    ("Mon", Field::MonthAbbrev(Case::Capital)),
    ("mon", Field::MonthAbbrev(Case::Lower)),
    ("DAY", Field::DayName(Case::Upper)),
    ("Day", Field::DayName(Case::Capital)),
    ("day", Field::DayName(Case::Lower)),
    ("DY", Field::DayAbbrev(Case::Upper)),
    ("Dy", Field::DayAbbrev(Case::Capital)),
    ("dy", Field::DayAbbrev(Case::Lower)),
    ("A.M.", Field::Meridiem { upper: true, dots: true }),
    ("P.M.", Field::Meridiem { upper: true, dots: true }),
    ("a.m.", Field::Meridiem { upper: false, dots: true }),
    ("p.m.", Field::Meridiem { upper: false, dots: true }),
    ("AM", Field::Meridiem { upper: true, dots: false }),
    ("PM", Field::Meridiem { upper: true, dots: false }),
    ("am", Field::Meridiem { upper: false, dots: false }),
    ("pm", Field::Meridiem { upper: false, dots: false }),
];

const NUMERIC: [(&str, Field); 22] = [
    ("HH24", Field::Hour24),
    ("HH12", Field::Hour12),
    ("HH", Field::Hour12),
    ("MI", Field::Minute),
    ("SS", Field::Second),
    ("MS", Field::Millisecond),
    ("US", Field::Microsecond),
    ("IYYY", Field::IsoYear),
    ("YYYY", Field::Year4),
    ("YYY", Field::Year3),
    ("YY", Field::Year2),
    ("Y", Field::Year1),
    ("MM", Field::Month),
    ("IDDD", Field::IsoDayOfYear),
    ("DDD", Field::DayOfYear),
    ("DD", Field::DayOfMonth),
    ("ID", Field::IsoDayOfWeek),
    ("D", Field::DayOfWeek),
    ("IW", Field::IsoWeek),
    ("WW", Field::WeekOfYear),
    ("W", Field::WeekOfMonth),
    ("Q", Field::Quarter),
];

/// Reads a pattern. Text in double quotes is literal, `\` escapes the next character, and
/// anything that is not a pattern is copied.
pub fn parse(pattern: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut rest = pattern;
    let mut fill_mode = false;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            let body = &rest[1..];
            let end = body.find('"').unwrap_or(body.len());
            text.push_str(&body[..end]);
            rest = body.get(end + 1..).unwrap_or("");
            continue;
        }
        if c == '\\' {
            let mut chars = rest[1..].chars();
            if let Some(next) = chars.next() {
                text.push(next);
            }
            rest = chars.as_str();
            continue;
        }
        if rest.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("FM")) {
            fill_mode = true;
            rest = &rest[2..];
            continue;
        }
        let named = NAMED.iter().find(|(p, _)| rest.starts_with(p));
        let numeric = || NUMERIC.iter().find(|(p, _)| rest.get(..p.len()).is_some_and(|r| r.eq_ignore_ascii_case(p)));
        match named.or_else(numeric) {
            Some((p, field)) => {
                if !text.is_empty() {
                    tokens.push(Token::Text(std::mem::take(&mut text)));
                }
                tokens.push(Token::Field(*field, fill_mode));
                fill_mode = false;
                rest = &rest[p.len()..];
            }
            None => {
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if !text.is_empty() {
        tokens.push(Token::Text(text));
    }
    tokens
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

fn cased(name: &str, case: Case) -> String {
    match case {
        Case::Upper => name.to_uppercase(),
        Case::Capital => name.to_string(),
        Case::Lower => name.to_lowercase(),
    }
}

/// Formats `at` as Postgres' `to_char(at, pattern)` does.
pub fn format(at: &NaiveDateTime, tokens: &[Token]) -> String {
    let mut out = String::new();
    for token in tokens {
        match token {
            Token::Text(text) => out.push_str(text),
            Token::Field(field, fill) => {
                let number = |value: i64, width: usize| {
                    if *fill { value.to_string() } else { format!("{value:0width$}") }
                };
                let name = |name: String| if *fill { name } else { format!("{name:<9}") };
                let month0 = at.month0() as usize;
                let weekday = at.weekday().num_days_from_sunday() as usize;
                let piece = match *field {
                    Field::Hour24 => number(at.hour().into(), 2),
                    Field::Hour12 => number(at.hour12().1.into(), 2),
                    Field::Minute => number(at.minute().into(), 2),
                    Field::Second => number(at.second().into(), 2),
                    Field::Millisecond => number((at.nanosecond() / 1_000_000).into(), 3),
                    Field::Microsecond => number((at.nanosecond() / 1_000).into(), 6),
                    Field::Meridiem { upper, dots } => {
                        let pm = at.hour12().0;
                        let text = match (pm, dots) {
                            (false, false) => "am",
                            (true, false) => "pm",
                            (false, true) => "a.m.",
                            (true, true) => "p.m.",
                        };
                        if upper { text.to_uppercase() } else { text.to_string() }
                    }
                    Field::Year4 => number(at.year().into(), 4),
                    Field::Year3 => number((at.year() % 1000).into(), 3),
                    Field::Year2 => number((at.year() % 100).into(), 2),
                    Field::Year1 => number((at.year() % 10).into(), 1),
                    Field::IsoYear => number(at.iso_week().year().into(), 4),
                    Field::MonthName(case) => name(cased(MONTHS[month0], case)),
                    Field::MonthAbbrev(case) => cased(&MONTHS[month0][..3], case),
                    Field::Month => number(at.month().into(), 2),
                    Field::DayName(case) => name(cased(DAYS[weekday], case)),
                    Field::DayAbbrev(case) => cased(&DAYS[weekday][..3], case),
                    Field::DayOfYear => number(at.ordinal().into(), 3),
                    Field::IsoDayOfYear => {
                        let week = i64::from(at.iso_week().week());
                        number((week - 1) * 7 + i64::from(at.weekday().number_from_monday()), 3)
                    }
                    Field::DayOfMonth => number(at.day().into(), 2),
                    Field::DayOfWeek => number(weekday as i64 + 1, 1),
                    Field::IsoDayOfWeek => number(at.weekday().number_from_monday().into(), 1),
                    Field::IsoWeek => number(at.iso_week().week().into(), 2),
                    Field::WeekOfYear => number(i64::from(at.ordinal0() / 7 + 1), 2),
                    Field::WeekOfMonth => number(i64::from(at.day0() / 7 + 1), 1),
                    Field::Quarter => number(i64::from(at.month0() / 3 + 1), 1),
                };
                out.push_str(&piece);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    /// Each expected value is what Postgres 15 prints for `to_char(timestamp '2020-11-29
    /// 14:05:09.123456', pattern)`.
    #[test]
    fn patterns_format_as_postgres_does() {
        let at = chrono::NaiveDate::from_ymd_opt(2020, 11, 29).unwrap().and_hms_micro_opt(14, 5, 9, 123_456).unwrap();
        let cases = [
            ("YYYY-MM-DD HH24:MI:SS", "2020-11-29 14:05:09"),
            ("FMDay", "Sunday"),
            ("Day|", "Sunday   |"),
            ("Dy DY dy", "Sun SUN sun"),
            ("FMMonth Mon MON", "November Nov NOV"),
            ("month|", "november |"),
            ("HH12 AM am P.M.", "02 PM pm P.M."),
            ("WW IW D ID DDD Q W", "48 48 1 7 334 4 5"),
            ("FMDD/FMMM/YY", "29/11/20"),
            ("MS US", "123 123456"),
            ("\"week\" WW", "week 48"),
            ("IYYY-IW-ID IDDD", "2020-48-7 336"),
            ("yyyy", "2020"),
        ];
        for (pattern, expected) in cases {
            assert_eq!(format(&at, &parse(pattern)), expected, "{pattern}");
        }
    }
}
