//! Source freshness: how old a source table's newest row is, against its rule
//! (`warn_after`, `error_after`). Times without an offset are read as UTC, as dbt does.

use chrono::{DateTime, Duration, NaiveDateTime};

use crate::project::Freshness;

/// What a freshness check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreshnessStatus {
    Pass,
    Warn,
    /// Older than `error_after`, or no row at all.
    Error,
}

/// One source table's check, as `target/sources.json` and `metrics.prom` record it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceCheck {
    pub unique_id: String,
    /// `schema.table`.
    pub relation: String,
    /// `pass`, `warn` or `error`.
    pub status: &'static str,
    pub max_loaded_at: Option<String>,
    pub age_s: Option<i64>,
    pub warn_after_s: Option<i64>,
    pub error_after_s: Option<i64>,
    pub error: Option<String>,
}

/// Judges the newest `loaded_at` value (`None`: the table has no row) at `now`.
pub fn judge(latest: Option<NaiveDateTime>, now: NaiveDateTime, rule: &Freshness) -> FreshnessStatus {
    let Some(latest) = latest else { return FreshnessStatus::Error };
    let age = now - latest;
    let older = |limit: Option<Duration>| limit.is_some_and(|l| age > l);
    if older(rule.error_after) {
        FreshnessStatus::Error
    } else if older(rule.warn_after) {
        FreshnessStatus::Warn
    } else {
        FreshnessStatus::Pass
    }
}

/// A `max(loaded_at_field)` as the engine prints it: a date, a time (`T` or space,
/// optional fraction) or a time with an offset (converted to UTC).
pub fn parse_loaded_at(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    let with_offset = ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"]
        .iter()
        .find_map(|f| DateTime::parse_from_str(t, f).ok())
        .map(|d| d.naive_utc());
    with_offset
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        })
        .or_else(|| crate::window::parse_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(warn_h: Option<i64>, error_h: Option<i64>) -> Freshness {
        Freshness {
            loaded_at_field: "loaded_at".into(),
            warn_after: warn_h.map(Duration::hours),
            error_after: error_h.map(Duration::hours),
            filter: None,
        }
    }

    #[test]
    fn the_age_decides_against_warn_and_error_after() {
        let now = parse_loaded_at("2024-01-02 12:00:00").unwrap();
        let at = |t: &str| parse_loaded_at(t);
        assert_eq!(judge(at("2024-01-02 06:00:00"), now, &rule(Some(12), Some(24))), FreshnessStatus::Pass);
        assert_eq!(judge(at("2024-01-01 23:00:00"), now, &rule(Some(12), Some(24))), FreshnessStatus::Warn);
        assert_eq!(judge(at("2024-01-01 11:00:00"), now, &rule(Some(12), Some(24))), FreshnessStatus::Error);
        assert_eq!(judge(at("2023-01-01"), now, &rule(Some(12), None)), FreshnessStatus::Warn);
        assert_eq!(judge(None, now, &rule(Some(12), None)), FreshnessStatus::Error, "no row at all");
    }

    #[test]
    fn loaded_at_values_parse_as_each_engine_prints_them() {
        let utc = parse_loaded_at("2024-01-02 12:00:00").unwrap();
        for text in ["2024-01-02T12:00:00", "2024-01-02 12:00:00.000", "2024-01-02 14:00:00+02", "2024-01-02T12:00:00Z"]
        {
            assert_eq!(parse_loaded_at(text), Some(utc), "{text}");
        }
        assert_eq!(parse_loaded_at("2024-01-02"), parse_loaded_at("2024-01-02 00:00:00"));
        assert_eq!(parse_loaded_at("soon"), None);
    }
}
