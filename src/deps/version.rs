//! Package versions and dbt's version specifiers: an exact version (`1.1.1`, `=1.1.1`) or
//! ranges (`>=1.0.0`, `<2.0.0`), one or a list, all of which must hold.

use std::cmp::Ordering;
use std::fmt;

/// `major.minor.patch`, with an optional pre-release (`1.0.0-b1`), which sorts before the
/// release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: Option<String>,
}

impl Version {
    /// Reads `1`, `1.2`, `1.2.3` or `1.2.3-rc1` (a leading `v` allowed).
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim().trim_start_matches('v');
        let (core, pre) = match text.split_once(['-', '+']) {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (text, None),
        };
        let mut parts = core.split('.').map(|p| p.parse::<u64>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().transpose().ok()?.unwrap_or(0);
        let patch = parts.next().transpose().ok()?.unwrap_or(0);
        if parts.next().is_some() {
            return None;
        }
        Some(Version { major, minor, patch, pre })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch)).then_with(|| {
            match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            }
        })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        match &self.pre {
            Some(p) => write!(f, "-{p}"),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// Every bound a version must meet.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VersionReq(Vec<(Op, Version)>);

impl VersionReq {
    /// Reads one specifier per item (`1.1.1`, `=1.1.1`, `>=1.0.0`, `<2.0.0`).
    pub fn parse(items: &[String]) -> Result<VersionReq, String> {
        let mut bounds = Vec::new();
        for item in items {
            let item = item.trim();
            let (op, rest) =
                [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), (">", Op::Gt), ("<", Op::Lt), ("=", Op::Eq)]
                    .iter()
                    .find_map(|(p, op)| item.strip_prefix(p).map(|r| (*op, r)))
                    .unwrap_or((Op::Eq, item));
            let version = Version::parse(rest).ok_or_else(|| format!("`{item}` is not a version or range"))?;
            bounds.push((op, version));
        }
        Ok(VersionReq(bounds))
    }

    /// Whether `v` meets every bound.
    pub fn matches(&self, v: &Version) -> bool {
        self.0.iter().all(|(op, b)| match op {
            Op::Eq => v == b,
            Op::Ge => v >= b,
            Op::Gt => v > b,
            Op::Le => v <= b,
            Op::Lt => v < b,
        })
    }

    /// Both sets of bounds at once.
    pub fn and(&self, other: &VersionReq) -> VersionReq {
        let mut bounds = self.0.clone();
        bounds.extend(other.0.iter().filter(|b| !self.0.contains(b)).cloned());
        VersionReq(bounds)
    }

    /// Whether a bound names a pre-release, which lets pre-releases be chosen.
    pub fn wants_prerelease(&self) -> bool {
        self.0.iter().any(|(_, v)| v.pre.is_some())
    }

    /// The newest of `versions` that matches (pre-releases only when a bound names one).
    pub fn best<'a>(&self, versions: impl Iterator<Item = &'a Version>) -> Option<&'a Version> {
        versions.filter(|v| self.matches(v) && (v.pre.is_none() || self.wants_prerelease())).max()
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(op, v)| {
                let op = match op {
                    Op::Eq => "=",
                    Op::Ge => ">=",
                    Op::Gt => ">",
                    Op::Le => "<=",
                    Op::Lt => "<",
                };
                format!("{op}{v}")
            })
            .collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(items: &[&str]) -> VersionReq {
        VersionReq::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn ranges_pick_the_newest_release_that_fits() {
        let versions: Vec<Version> = ["0.9.6", "1.0.0", "1.1.1", "1.2.0-b1", "1.3.0", "2.0.0"]
            .iter()
            .map(|v| Version::parse(v).unwrap())
            .collect();
        assert_eq!(req(&[">=1.0.0", "<2.0.0"]).best(versions.iter()).unwrap().to_string(), "1.3.0");
        assert_eq!(req(&["1.1.1"]).best(versions.iter()).unwrap().to_string(), "1.1.1");
        assert_eq!(req(&[">=1.0.0", "<1.3.0"]).best(versions.iter()).unwrap().to_string(), "1.1.1");
        assert_eq!(req(&["=1.2.0-b1"]).best(versions.iter()).unwrap().to_string(), "1.2.0-b1");
        let both = req(&[">=1.0.0", "<2.0.0"]).and(&req(&["<1.0.0"]));
        assert!(both.best(versions.iter()).is_none());
        assert!(VersionReq::parse(&["about 1".into()]).is_err());
        assert!(Version::parse("1.0.0-rc1").unwrap() < Version::parse("1.0.0").unwrap());
    }
}
