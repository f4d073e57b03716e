//! Quality tests at run time: how a test's failing-row count becomes pass, warn or fail
//! (`severity`, `warn_if`, `error_if`), the row-count anomaly check over a model's
//! history, and source freshness. The tests' SQL is rendered at compile time (`compile::tests`); running it
//! is the engine's job. Everything here is pure, so it is unit-tested directly.

mod anomaly;
pub mod freshness;

pub use self::anomaly::{Anomaly, check_row_count};

use crate::project::{TestSeverity, Threshold};

/// What a test's failing-row count means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// dbt's rule: with `severity: error`, `error_if` decides a failure; otherwise (or if it
/// does not hold) `warn_if` decides a warning; else the test passes.
pub fn judge(failures: u64, severity: TestSeverity, warn_if: &Threshold, error_if: &Threshold) -> Verdict {
    if severity == TestSeverity::Error && error_if.holds(failures) {
        Verdict::Fail
    } else if warn_if.holds(failures) {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Threshold {
        Threshold::parse(s).unwrap()
    }

    #[test]
    fn severity_and_thresholds_decide_the_verdict() {
        assert_eq!(judge(0, TestSeverity::Error, &t("!=0"), &t("!=0")), Verdict::Pass);
        assert_eq!(judge(3, TestSeverity::Error, &t("!=0"), &t("!=0")), Verdict::Fail);
        assert_eq!(judge(3, TestSeverity::Warn, &t("!=0"), &t("!=0")), Verdict::Warn);
        assert_eq!(judge(3, TestSeverity::Error, &t("!=0"), &t(">10")), Verdict::Warn);
        assert_eq!(judge(11, TestSeverity::Error, &t("!=0"), &t(">10")), Verdict::Fail);
        assert_eq!(judge(3, TestSeverity::Error, &t(">5"), &t(">10")), Verdict::Pass);
    }
}
