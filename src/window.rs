//! Time windows of models that declare `event_time` and `batch_size`: the periods a run
//! or a backfill processes, and how a batch's window is spelled into its SQL.
//!
//! A windowed model is compiled once with placeholders for `etlm_start`, `etlm_end` and
//! `ds` (and for the bounds of its filtered upstream refs); each batch substitutes its
//! own window, so a year of hourly batches costs no re-rendering.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

/// The period of one batch of a time-windowed model (its `batch_size` config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchSize {
    Hour,
    Day,
    Month,
    Year,
}

impl BatchSize {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchSize::Hour => "hour",
            BatchSize::Day => "day",
            BatchSize::Month => "month",
            BatchSize::Year => "year",
        }
    }
}

/// Placeholders a windowed model is compiled with.
pub const START: &str = "__etlm_window_start__";
pub const END: &str = "__etlm_window_end__";
pub const DS: &str = "__etlm_window_ds__";

/// `etlm_start`, `etlm_end` and `ds` as a windowed model is rendered with.
pub fn variables() -> std::collections::BTreeMap<&'static str, serde_json::Value> {
    [("etlm_start", START), ("etlm_end", END), ("ds", DS)]
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v.to_string())))
        .collect()
}

/// One batch: the half-open window [start, end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Period {
    /// The batch's date, `ds`.
    pub fn ds(&self) -> String {
        self.start.format("%Y-%m-%d").to_string()
    }

    /// `sql` with this period's window in place of the placeholders.
    pub fn spell(&self, sql: &str) -> String {
        sql.replace(START, &timestamp(self.start)).replace(END, &timestamp(self.end)).replace(DS, &self.ds())
    }
}

/// `2024-01-01 00:00:00`, as the window variables and interval records spell a time.
pub fn timestamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses `2024-01-01` or `2024-01-01 05:00:00` (also with `T`), in years 1 to 9999 (so
/// period arithmetic on it never overflows).
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
        .or_else(|| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok())
        .filter(|t| (1..=9999).contains(&t.year()))
}

/// The most periods one run or backfill of a model processes: an hourly model over a
/// century is 876,600 batches, never what was meant.
pub const MAX_PERIODS: i64 = 100_000;

/// Why processing `from` through `to` in periods of `size` is too many batches, if it is.
pub fn too_many_periods(from: NaiveDateTime, to: NaiveDateTime, size: BatchSize) -> Option<String> {
    let span = to - from;
    let count = match size {
        BatchSize::Hour => span.num_hours(),
        BatchSize::Day => span.num_days(),
        BatchSize::Month => span.num_days() / 28,
        BatchSize::Year => span.num_days() / 365,
    };
    (count > MAX_PERIODS).then(|| {
        format!(
            "{} to {} is about {count} batches of a {}, more than the {MAX_PERIODS} one run processes",
            from.date(),
            to.date(),
            size.as_str()
        )
    })
}

/// The start of the period holding `t`.
pub fn floor(t: NaiveDateTime, size: BatchSize) -> NaiveDateTime {
    let day = t.date();
    match size {
        BatchSize::Hour => day.and_hms_opt(t.hour(), 0, 0).expect("a valid hour"),
        BatchSize::Day => day.and_time(NaiveTime::MIN),
        BatchSize::Month => day.with_day(1).expect("day 1 exists").and_time(NaiveTime::MIN),
        BatchSize::Year => NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("Jan 1 exists").and_time(NaiveTime::MIN),
    }
}

/// The start of the next period after the one starting at `t`.
pub fn next(t: NaiveDateTime, size: BatchSize) -> NaiveDateTime {
    match size {
        BatchSize::Hour => t + Duration::hours(1),
        BatchSize::Day => t + Duration::days(1),
        BatchSize::Month => {
            let (y, m) = if t.month() == 12 { (t.year() + 1, 1) } else { (t.year(), t.month() + 1) };
            NaiveDate::from_ymd_opt(y, m, 1).expect("day 1 exists").and_time(NaiveTime::MIN)
        }
        BatchSize::Year => NaiveDate::from_ymd_opt(t.year() + 1, 1, 1).expect("Jan 1 exists").and_time(NaiveTime::MIN),
    }
}

/// The periods from the one holding `from` through the one holding `to` (both
/// inclusive), in order.
pub fn periods(from: NaiveDateTime, to: NaiveDateTime, size: BatchSize) -> Vec<Period> {
    let mut out = Vec::new();
    let mut start = floor(from, size);
    while start <= to {
        let end = next(start, size);
        out.push(Period { start, end });
        start = end;
    }
    out
}

/// What `etlm run` processes for a windowed model: from `lookback` periods before the
/// latest one done (or from `begin` when none is done) through the current period.
pub fn run_periods(
    begin: NaiveDateTime,
    done: &[Period],
    lookback: u32,
    size: BatchSize,
    now: DateTime<Utc>,
) -> Vec<Period> {
    let now = now.naive_utc();
    let from = match done.iter().map(|p| p.start).max() {
        Some(latest) => {
            let mut t = latest;
            for _ in 0..lookback.saturating_sub(1) {
                t = previous(t, size);
            }
            t.max(begin)
        }
        None => begin,
    };
    periods(from, now, size)
}

fn previous(t: NaiveDateTime, size: BatchSize) -> NaiveDateTime {
    match size {
        BatchSize::Hour => t - Duration::hours(1),
        BatchSize::Day => t - Duration::days(1),
        BatchSize::Month => {
            let (y, m) = if t.month() == 1 { (t.year() - 1, 12) } else { (t.year(), t.month() - 1) };
            NaiveDate::from_ymd_opt(y, m, 1).expect("day 1 exists").and_time(NaiveTime::MIN)
        }
        BatchSize::Year => NaiveDate::from_ymd_opt(t.year() - 1, 1, 1).expect("Jan 1 exists").and_time(NaiveTime::MIN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        parse_time(s).unwrap()
    }

    #[test]
    fn periods_cover_both_ends() {
        let days = periods(t("2024-01-30"), t("2024-02-02"), BatchSize::Day);
        let starts: Vec<String> = days.iter().map(Period::ds).collect();
        assert_eq!(starts, ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02"]);
        assert_eq!(
            days[0].spell("[__etlm_window_start__, __etlm_window_end__)"),
            "[2024-01-30 00:00:00, 2024-01-31 00:00:00)"
        );
        let months = periods(t("2024-11-15"), t("2025-01-01"), BatchSize::Month);
        assert_eq!(months.iter().map(Period::ds).collect::<Vec<_>>(), ["2024-11-01", "2024-12-01", "2025-01-01"]);
        assert_eq!(periods(t("2024-01-01 22:30:00"), t("2024-01-02 01:00:00"), BatchSize::Hour).len(), 4);
        assert_eq!(periods(t("2024-01-01"), t("2024-12-31 23:00:00"), BatchSize::Hour).len(), 366 * 24);
        assert!(
            too_many_periods(t("1900-01-01"), t("2024-01-01"), BatchSize::Hour).is_some_and(|m| m.contains("hour"))
        );
        assert_eq!(too_many_periods(t("1900-01-01"), t("2024-01-01"), BatchSize::Day), None);
        assert_eq!(parse_time("+12345-01-01"), None, "years past 9999 are not dates etlm takes");
    }

    #[test]
    fn a_run_resumes_lookback_periods_before_the_latest_done() {
        let done = periods(t("2024-01-01"), t("2024-01-05"), BatchSize::Day);
        let now = t("2024-01-07 12:00:00").and_utc();
        let one = run_periods(t("2024-01-01"), &done, 1, BatchSize::Day, now);
        assert_eq!(one.iter().map(Period::ds).collect::<Vec<_>>(), ["2024-01-05", "2024-01-06", "2024-01-07"]);
        let three = run_periods(t("2024-01-01"), &done, 3, BatchSize::Day, now);
        assert_eq!(three[0].ds(), "2024-01-03");
        assert_eq!(run_periods(t("2024-01-06"), &[], 1, BatchSize::Day, now).len(), 2);
    }
}
