//! Failpoints: named places where a test can make etlm abort, to prove crash safety.
//! `ETLM_FAILPOINT=<point>:<model>` (read by the CLI, passed in here) aborts the process
//! the moment `<model>` reaches `<point>`. Points: `after-stage`, `before-publish`,
//! `after-publish`, `before-state-write`.

/// The armed failpoint, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failpoints {
    armed: Option<(String, String)>,
}

/// The points a run passes through for each model, in order.
pub const POINTS: &[&str] = &["after-stage", "before-publish", "after-publish", "before-state-write"];

impl Failpoints {
    /// Parses `<point>:<model>`; `None` or an empty string arms nothing.
    pub fn parse(spec: Option<&str>) -> Result<Failpoints, String> {
        let Some(spec) = spec.filter(|s| !s.is_empty()) else { return Ok(Failpoints::default()) };
        let (point, model) =
            spec.split_once(':').ok_or_else(|| format!("ETLM_FAILPOINT must be `<point>:<model>`, got `{spec}`"))?;
        if !POINTS.contains(&point) {
            return Err(format!("unknown failpoint `{point}`; known: {}", POINTS.join(", ")));
        }
        Ok(Failpoints { armed: Some((point.to_string(), model.to_string())) })
    }

    /// Aborts the process (no cleanup, like `kill -9`) if this point is armed for `model`.
    pub fn hit(&self, point: &str, model: &str) {
        if let Some((p, m)) = &self.armed {
            if p == point && m == model {
                eprintln!("etlm: failpoint {point}:{model} hit, aborting");
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_point_and_model() {
        assert_eq!(Failpoints::parse(None).unwrap(), Failpoints::default());
        let f = Failpoints::parse(Some("before-publish:orders")).unwrap();
        assert_eq!(f.armed, Some(("before-publish".into(), "orders".into())));
        assert!(Failpoints::parse(Some("nowhere:orders")).is_err());
        assert!(Failpoints::parse(Some("orders")).is_err());
    }
}
