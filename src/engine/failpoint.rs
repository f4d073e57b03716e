//! Failpoints: named places where a test can make etlm abort, to prove crash safety.
//! `ETLM_FAILPOINT=<point>:<model>[:<n>][:pause]` (read by the CLI, passed in here)
//! aborts the process the moment `<model>` reaches `<point>` (the `n`th time, for a
//! model built in batches; default the first), or with `pause` holds it there for
//! `PAUSE` (printing `failpoint ... pausing` on stderr), so a test can act meanwhile, e.g.
//! kill etlm's database connection in the middle of a publish. Points: `after-stage`,
//! `before-publish` (on Postgres: inside the publishing transaction, before its
//! commit), `before-rename` and `before-swap` (embedded engine: after the new version's
//! fsync, and after its rename, before the symlink swap), `after-publish`,
//! `before-state-write`.
//!
//! Only builds with the cargo feature `failpoints` (the test suite's) have them: in any
//! other build a set `ETLM_FAILPOINT` is an error, and `hit` compiles to nothing.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

/// The armed failpoint, if any.
#[derive(Clone, Debug, Default)]
pub struct Failpoints {
    armed: Option<(String, String, usize)>,
    action: Action,
    #[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
    hits: Arc<AtomicUsize>,
}

/// What a hit does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Action {
    #[default]
    Abort,
    Pause,
}

/// How long a `pause` failpoint holds the run.
pub const PAUSE: std::time::Duration = std::time::Duration::from_secs(4);

impl PartialEq for Failpoints {
    fn eq(&self, other: &Failpoints) -> bool {
        self.armed == other.armed && self.action == other.action
    }
}

/// The points a run passes through for each model, in order.
pub const POINTS: &[&str] =
    &["after-stage", "before-publish", "before-rename", "before-swap", "after-publish", "before-state-write"];

impl Failpoints {
    /// Parses `<point>:<model>[:<n>]`; `None` or an empty string arms nothing.
    pub fn parse(spec: Option<&str>) -> Result<Failpoints, String> {
        let Some(spec) = spec.filter(|s| !s.is_empty()) else { return Ok(Failpoints::default()) };
        if !cfg!(feature = "failpoints") {
            return Err(format!(
                "ETLM_FAILPOINT is set (`{spec}`), but this etlm was built without failpoints; \
                 they exist only in test builds (`cargo build --features failpoints`). Unset it."
            ));
        }
        let usage = || format!("ETLM_FAILPOINT must be `<point>:<model>[:<n>][:pause]`, got `{spec}`");
        let (spec_points, action) = match spec.strip_suffix(":pause") {
            Some(rest) => (rest, Action::Pause),
            None => (spec, Action::Abort),
        };
        let mut parts = spec_points.split(':');
        let (Some(point), Some(model)) = (parts.next(), parts.next()) else { return Err(usage()) };
        let nth = match parts.next() {
            None => 1,
            Some(n) => n.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(usage)?,
        };
        if parts.next().is_some() {
            return Err(usage());
        }
        if !POINTS.contains(&point) {
            return Err(format!("unknown failpoint `{point}`; known: {}", POINTS.join(", ")));
        }
        Ok(Failpoints { armed: Some((point.to_string(), model.to_string(), nth)), action, hits: Default::default() })
    }

    /// Aborts the process (no cleanup, like `kill -9`), or pauses it, if this point is
    /// armed for `model` and this is its `n`th hit.
    #[cfg_attr(not(feature = "failpoints"), allow(unused_variables))]
    pub fn hit(&self, point: &str, model: &str) {
        #[cfg(feature = "failpoints")]
        if let Some((p, m, nth)) = &self.armed
            && p == point
            && m == model
            && self.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == *nth
        {
            match self.action {
                Action::Abort => {
                    eprintln!("etlm: failpoint {point}:{model} hit, aborting");
                    std::process::abort();
                }
                Action::Pause => {
                    eprintln!("etlm: failpoint {point}:{model} hit, pausing");
                    std::thread::sleep(PAUSE);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "failpoints"))]
    fn a_build_without_the_feature_refuses_to_arm_any() {
        assert_eq!(Failpoints::parse(None).unwrap(), Failpoints::default());
        assert_eq!(Failpoints::parse(Some("")).unwrap(), Failpoints::default());
        let err = Failpoints::parse(Some("before-publish:orders")).unwrap_err();
        assert!(err.contains("built without failpoints"), "{err}");
    }

    #[test]
    #[cfg(feature = "failpoints")]
    fn parses_point_and_model() {
        assert_eq!(Failpoints::parse(None).unwrap(), Failpoints::default());
        let f = Failpoints::parse(Some("before-publish:orders")).unwrap();
        assert_eq!(f.armed, Some(("before-publish".into(), "orders".into(), 1)));
        let f = Failpoints::parse(Some("after-publish:daily:4")).unwrap();
        assert_eq!(f.armed, Some(("after-publish".into(), "daily".into(), 4)));
        assert!(Failpoints::parse(Some("after-publish:daily:0")).is_err());
        assert!(Failpoints::parse(Some("nowhere:orders")).is_err());
        assert!(Failpoints::parse(Some("orders")).is_err());
        let f = Failpoints::parse(Some("before-publish:orders:pause")).unwrap();
        assert_eq!((f.armed.unwrap().2, f.action), (1, Action::Pause));
        let f = Failpoints::parse(Some("before-publish:orders:2:pause")).unwrap();
        assert_eq!((f.armed.unwrap().2, f.action), (2, Action::Pause));
    }
}
