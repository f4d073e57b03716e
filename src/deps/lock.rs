//! `package-lock.yml` in dbt's layout: every package installed (the transitive ones too),
//! pinned (a hub version, a git commit), and `sha1_hash` of the package file's entries,
//! so a changed `packages.yml` is resolved again.

use std::path::Path;

use serde_json::Value as Json;
use sha1::{Digest, Sha1};

use super::spec::Spec;
use super::version::VersionReq;
use crate::diagnostics::{Code, Diagnostic, SourceMap};
use crate::project::yaml::Yaml;

pub const FILE_NAME: &str = "package-lock.yml";

/// One pinned package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    /// The package's project name: its folder under the install path.
    pub name: String,
    pub spec: Spec,
}

/// dbt's hash of a package file's entries: each entry as Python's `json.dumps` with sorted
/// keys writes it, sorted, joined by newlines.
pub fn hash(entries: &[Json]) -> String {
    let mut lines: Vec<String> = entries.iter().map(py_json).collect();
    lines.sort();
    let digest = Sha1::digest(lines.join("\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn py_json(value: &Json) -> String {
    match value {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.iter().map(|k| format!("{}: {}", Json::String((*k).clone()), py_json(&map[*k]))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Json::Array(items) => format!("[{}]", items.iter().map(py_json).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// The lock file's packages, when it exists and was written for entries hashing to `hash`.
pub fn read(dir: &Path, hash: &str, sources: &SourceMap) -> Result<Option<Vec<Pinned>>, Vec<Diagnostic>> {
    let path = dir.join(FILE_NAME);
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let file = sources.add(FILE_NAME, text);
    let yaml = Yaml::parse(file, sources).map_err(|d| vec![d])?;
    if yaml.get("sha1_hash").and_then(Yaml::as_str) != Some(hash) {
        return Ok(None);
    }
    let items = yaml.get("packages").map(|p| p.expect_seq("packages")).transpose().map_err(|d| vec![d])?;
    let mut pinned = Vec::new();
    for item in items.unwrap_or_default() {
        let text = |key: &str| item.get(key).and_then(|v| v.expect_string(key).ok());
        let broken = || {
            vec![
                Diagnostic::error(Code::InvalidLock, "this lock entry is not one etlm or dbt writes")
                    .with_label(item.span, "this entry")
                    .with_help(format!(
                        "delete `{FILE_NAME}` or run `etlm deps --upgrade` to resolve the packages again"
                    )),
            ]
        };
        let spec = if let Some(path) = text("local") {
            Spec::Local { path }
        } else if let Some(url) = text("git") {
            Spec::Git { url, revision: text("revision"), subdirectory: text("subdirectory") }
        } else if let Some(url) = text("tarball") {
            Spec::Tarball { url, name: text("name").ok_or_else(broken)? }
        } else if let Some(package) = text("package") {
            let version = VersionReq::parse(&[text("version").ok_or_else(broken)?]).map_err(|_| broken())?;
            Spec::Hub { package, version }
        } else {
            return Err(broken());
        };
        let name = text("name").unwrap_or_default();
        pinned.push(Pinned { name, spec });
    }
    Ok(Some(pinned))
}

/// The lock file's text.
pub fn render(pinned: &[Pinned], hash: &str) -> String {
    let mut out = String::from("packages:\n");
    for p in pinned {
        let line = |key: &str, value: &str| format!("    {key}: {}\n", quote(value));
        match &p.spec {
            Spec::Local { path } => out.push_str(&format!("  - local: {}\n", quote(path))),
            Spec::Git { url, revision, subdirectory } => {
                out.push_str(&format!("  - git: {}\n", quote(url)));
                if let Some(r) = revision {
                    out.push_str(&line("revision", r));
                }
                if let Some(s) = subdirectory {
                    out.push_str(&line("subdirectory", s));
                }
            }
            Spec::Tarball { url, .. } => out.push_str(&format!("  - tarball: {}\n", quote(url))),
            Spec::Hub { package, version } => {
                out.push_str(&format!("  - package: {}\n", quote(package)));
                out.push_str(&line("version", version.to_string().trim_matches(['[', ']', '='])));
            }
        }
        out.push_str(&line("name", &p.name));
    }
    out.push_str(&format!("sha1_hash: {hash}\n"));
    out
}

/// A YAML scalar that reads back as the same string.
fn quote(text: &str) -> String {
    if text.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c)) && text.parse::<f64>().is_err() {
        text.to_string()
    } else {
        Json::String(text.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_dbts_over_sorted_entries() {
        let a = serde_json::json!({"package": "dbt-labs/dbt_utils", "version": [">=1.0.0", "<2.0.0"]});
        let b = serde_json::json!({"local": "../"});
        assert_eq!(py_json(&a), r#"{"package": "dbt-labs/dbt_utils", "version": [">=1.0.0", "<2.0.0"]}"#);
        assert_eq!(hash(&[a.clone(), b.clone()]), hash(&[b, a]));
        assert_eq!(hash(&[]).len(), 40);
    }

    #[test]
    fn a_written_lock_reads_back() {
        let pinned = vec![
            Pinned { name: "toolkit".into(), spec: Spec::Local { path: "vendor/toolkit".into() } },
            Pinned {
                name: "dbt_utils".into(),
                spec: Spec::Hub {
                    package: "dbt-labs/dbt_utils".into(),
                    version: VersionReq::parse(&["1.1.1".into()]).unwrap(),
                },
            },
            Pinned {
                name: "g".into(),
                spec: Spec::Git {
                    url: "file:///tmp/g.git".into(),
                    revision: Some("abc123".into()),
                    subdirectory: None,
                },
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), render(&pinned, "h1")).unwrap();
        let sources = SourceMap::default();
        assert_eq!(read(dir.path(), "h1", &sources).unwrap().unwrap(), pinned);
        assert_eq!(read(dir.path(), "other", &sources).unwrap(), None);
    }
}
