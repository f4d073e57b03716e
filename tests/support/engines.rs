//! The engines a conformance test runs on: the same project and the same expected rows,
//! on the embedded engine (schema `main`), on a real Postgres (schema `public`) and, in
//! builds with the `delta` feature, on Delta Lake tables in a folder (schema `main`).

use std::path::{Path, PathBuf};

use super::postgres::{self, Database};

/// Where a conformance test builds.
pub enum Backend {
    DataFusion,
    Postgres(Database),
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    Delta,
}

impl Backend {
    /// The embedded engine.
    pub fn datafusion(_test: &str) -> Option<Backend> {
        Some(Backend::DataFusion)
    }

    /// Delta Lake tables in the folder `lake/` of the project.
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    pub fn delta(_test: &str) -> Option<Backend> {
        Some(Backend::Delta)
    }

    /// A fresh database on the test Postgres, or `None` when there is none (skipped).
    pub fn postgres(test: &str) -> Option<Backend> {
        postgres::database(test).map(Backend::Postgres)
    }

    /// The schema models build into.
    pub fn schema(&self) -> &'static str {
        match self {
            Backend::DataFusion | Backend::Delta => "main",
            Backend::Postgres(_) => "public",
        }
    }

    /// A copy of a fixture project pointed at this engine.
    pub fn project(&self, fixture: &str) -> (tempfile::TempDir, PathBuf) {
        let (tmp, dir) = super::copy_project(fixture);
        self.point_at(&dir);
        (tmp, dir)
    }

    /// Writes the project's `profiles.yml` for this engine (the embedded engine needs
    /// none).
    pub fn point_at(&self, dir: &Path) {
        let name = project_name(dir);
        match self {
            Backend::Postgres(db) => db.write_profile(dir, &name, ""),
            Backend::Delta => {
                let text = format!(
                    "{name}:\n  target: lake\n  outputs:\n    lake:\n      type: delta\n      location: lake\n"
                );
                std::fs::write(dir.join("profiles.yml"), text).expect("write profiles.yml");
            }
            Backend::DataFusion => {}
        }
    }

    /// Rows of a query through `etlm show`, every value as text (`NULL` for null), so
    /// both engines compare against the same expected rows. `{schema}` in `sql` is the
    /// engine's schema.
    pub fn rows(&self, dir: &Path, sql: &str) -> Vec<Row> {
        let sql = sql.replace("{schema}", self.schema());
        super::rows(dir, &sql)
            .into_iter()
            .map(|row| {
                let object = row.as_object().expect("a row is an object");
                object.iter().map(|(k, v)| (k.clone(), text(v))).collect()
            })
            .collect()
    }

    /// The relations etlm left in its staging and audit schemas, and staging schemas left
    /// by a run that finished (always none on the embedded engine, whose staging is
    /// directories swept by the next run).
    pub fn leftovers(&self) -> Vec<Vec<String>> {
        match self {
            Backend::DataFusion | Backend::Delta => Vec::new(),
            Backend::Postgres(db) => db.rows(
                "select table_schema, table_name from information_schema.tables \
                 where table_schema like '\\_etlm\\_staging%' or table_schema = '_etlm_audit' \
                 union all select nspname, '(schema)' from pg_namespace where nspname like '\\_etlm\\_staging%' \
                 order by 1, 2",
            ),
        }
    }
}

impl Backend {
    /// Folders a finished run left in a Delta location: `*.staging` folders, and version
    /// folders beyond the two a table keeps (its current version and the one before).
    /// None on the other engines, whose staging `leftovers` lists.
    pub fn leftover_folders(&self, dir: &Path) -> Vec<String> {
        let Backend::Delta = self else { return Vec::new() };
        let mut found = Vec::new();
        let schema = dir.join("lake").join(self.schema());
        for table in std::fs::read_dir(&schema).into_iter().flatten().flatten() {
            let mut versions: Vec<String> = std::fs::read_dir(table.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('_'))
                .collect();
            versions.sort();
            let name = table.file_name().to_string_lossy().into_owned();
            let staging = versions.iter().filter(|v| v.ends_with(".staging"));
            found.extend(staging.map(|v| format!("{name}/{v}")));
            versions.retain(|v| !v.ends_with(".staging"));
            let extra = versions.len().saturating_sub(2);
            found.extend(versions[..extra].iter().map(|v| format!("{name}/{v} (older than the previous version)")));
        }
        found
    }
}

/// A value as text; a whole float reads like an integer (`106.0` is `106`), since one
/// engine's double is another's integer for the same SQL.
fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The profile the project looks up: its `profile:`, else its `name:` (etlm.yml, else
/// dbt_project.yml).
fn project_name(dir: &Path) -> String {
    let file =
        ["etlm.yml", "dbt_project.yml"].iter().map(|f| dir.join(f)).find(|p| p.is_file()).expect("a project file");
    let text = std::fs::read_to_string(file).expect("project file");
    let key =
        |k: &str| text.lines().find_map(|l| l.strip_prefix(k)).map(|n| n.trim().trim_matches(['"', '\'']).to_string());
    key("profile:").or_else(|| key("name:")).expect("a project name")
}

/// A row: column name to value as text.
pub type Row = std::collections::BTreeMap<String, String>;

/// Expected rows, written compactly: `table(&["id", "name"], &[&["1", "a"], &["2", "b"]])`.
pub fn table(columns: &[&str], rows: &[&[&str]]) -> Vec<Row> {
    rows.iter()
        .map(|r| {
            assert_eq!(r.len(), columns.len(), "expected row {r:?} has one value per column");
            columns.iter().zip(r.iter()).map(|(c, v)| (c.to_string(), v.to_string())).collect()
        })
        .collect()
}
