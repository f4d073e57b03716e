//! Row-count anomalies: a model's new row count against its last successful runs. With
//! at least `min_history` earlier counts, a count outside mean ± `sigma` standard
//! deviations is an anomaly. The deviation is floored at 1% of the mean (and at one
//! row), so a table whose count never moved does not flag a change of a row or two.

use crate::project::AnomalyConfig;

/// The band a count was held against, and whether it left it.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub rows: u64,
    pub low: f64,
    pub high: f64,
    pub outside: bool,
}

/// Checks `rows` against `history` (newest first; only the first `window` are used).
/// `None` when the history is too short to judge.
pub fn check_row_count(rows: u64, history: &[u64], config: &AnomalyConfig) -> Option<Anomaly> {
    let recent = &history[..history.len().min(config.window)];
    if recent.len() < config.min_history.max(1) {
        return None;
    }
    let n = recent.len() as f64;
    let mean = recent.iter().map(|&r| r as f64).sum::<f64>() / n;
    let variance = recent.iter().map(|&r| (r as f64 - mean).powi(2)).sum::<f64>() / n;
    let deviation = variance.sqrt().max(mean * 0.01).max(1.0);
    let (low, high) = (mean - config.sigma * deviation, mean + config.sigma * deviation);
    let value = rows as f64;
    Some(Anomaly { rows, low, high, outside: value < low || value > high })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenfold_drop_after_steady_counts_is_an_anomaly() {
        let config = AnomalyConfig::default();
        let steady = [1000, 1010, 990, 1005, 995, 1000];
        assert!(check_row_count(100, &steady, &config).unwrap().outside);
        assert!(!check_row_count(1003, &steady, &config).unwrap().outside);
        assert!(!check_row_count(1001, &[1000; 5], &config).unwrap().outside, "1% floor");
    }

    #[test]
    fn too_little_history_gives_no_verdict() {
        assert_eq!(check_row_count(1, &[1000, 1000, 1000, 1000], &AnomalyConfig::default()), None);
    }

    #[test]
    fn only_the_window_counts() {
        let config = AnomalyConfig { window: 5, ..AnomalyConfig::default() };
        let history = [10, 10, 10, 10, 10, 5000, 5000, 5000];
        assert!(check_row_count(5000, &history, &config).unwrap().outside);
    }
}
