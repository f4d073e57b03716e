//! Reading the artifacts of a build back: another build's `manifest.json` and
//! `lineage.json` (a `--state` folder, usually production's or main's `target/`) and the
//! statuses of the last `run_results.json`.
//!
//! Only the fields change detection, `--defer` and `result:` selectors need are read, so
//! manifests from builds with more fields still load. The current project is compared in
//! the same shape: its manifest and lineage are serialized and read back with these types,
//! so both sides of a comparison go through one code path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use crate::diagnostics::{Code, Diagnostic};

/// A manifest, as change detection reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct StateManifest {
    pub metadata: StateMetadata,
    pub nodes: BTreeMap<String, StateNode>,
    #[serde(default)]
    pub sources: BTreeMap<String, StateNode>,
    #[serde(default)]
    pub unit_tests: BTreeMap<String, StateNode>,
    #[serde(default)]
    pub macro_checksums: BTreeMap<String, String>,
    #[serde(default)]
    pub vars: BTreeMap<String, Json>,
}

/// The manifest's `metadata`.
#[derive(Clone, Debug, Deserialize)]
pub struct StateMetadata {
    pub adapter_type: String,
    /// The target schema of that build (see `manifest::portable`).
    #[serde(default)]
    pub target_schema: String,
    /// The embedded engine's warehouse folder of that build.
    #[serde(default)]
    pub warehouse_path: Option<PathBuf>,
}

/// One node of a manifest.
#[derive(Clone, Debug, Deserialize)]
pub struct StateNode {
    pub unique_id: String,
    pub resource_type: String,
    pub name: String,
    pub original_file_path: String,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub identifier: Option<String>,
    #[serde(default)]
    pub relation_name: Option<String>,
    #[serde(default)]
    pub checksum: Option<Checksum>,
    #[serde(default)]
    pub compiled_checksum: Option<Checksum>,
    pub depends_on: DependsOn,
    #[serde(default)]
    pub config: BTreeMap<String, Json>,
    #[serde(default)]
    pub vars: Vec<String>,
    #[serde(default)]
    pub output_columns: Option<Vec<OutputColumn>>,
}

impl StateNode {
    /// The relation it was built as, if it is built (not ephemeral, not a test).
    pub fn relation(&self) -> Option<crate::relation::Relation> {
        Some(crate::relation::Relation {
            database: self.database.clone(),
            schema: self.schema.clone()?,
            identifier: self.identifier.clone()?,
        })
    }
}

/// A checksum entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Checksum {
    pub checksum: String,
}

/// `depends_on`: parent node ids and macro names.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DependsOn {
    #[serde(default)]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub macros: Vec<String>,
}

/// An output column and its type when known.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct OutputColumn {
    pub name: String,
    pub data_type: Option<String>,
}

impl StateManifest {
    /// Every node, sources included, by unique id.
    pub fn all_nodes(&self) -> impl Iterator<Item = (&String, &StateNode)> {
        self.nodes.iter().chain(&self.sources).chain(&self.unit_tests)
    }

    /// A node or source by unique id.
    pub fn node(&self, id: &str) -> Option<&StateNode> {
        self.nodes.get(id).or_else(|| self.sources.get(id)).or_else(|| self.unit_tests.get(id))
    }
}

/// `lineage.json`, as impact analysis reads it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct StateLineage {
    pub nodes: BTreeMap<String, LineageNode>,
}

/// One node of `lineage.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct LineageNode {
    pub name: String,
    pub columns: Vec<LineageColumn>,
    /// What decides the rows the node returns; models only.
    #[serde(default)]
    pub rows_fingerprint: Option<String>,
    /// Upstream columns per clause role (`filter`, `join`, ...).
    #[serde(default)]
    pub usage: BTreeMap<String, Vec<LineageRef>>,
}

/// An output column and the upstream columns it derives from.
#[derive(Clone, Debug, Deserialize)]
pub struct LineageColumn {
    pub name: String,
    #[serde(default)]
    pub data_type: Option<String>,
    /// How the node derives the column; models only.
    #[serde(default)]
    pub fingerprint: Option<String>,
    pub upstream: Vec<LineageEdge>,
}

/// An edge into a column.
#[derive(Clone, Debug, Deserialize)]
pub struct LineageEdge {
    pub node: String,
    pub column: String,
    pub kind: String,
}

/// A column used by a clause.
#[derive(Clone, Debug, Deserialize)]
pub struct LineageRef {
    pub node: String,
    pub column: String,
}

/// Another build's artifacts: the `--state` folder.
#[derive(Clone, Debug)]
pub struct State {
    pub dir: PathBuf,
    pub manifest: StateManifest,
    /// Empty when the folder has no `lineage.json`.
    pub lineage: StateLineage,
}

impl State {
    /// Reads `<dir>/manifest.json` (required) and `<dir>/lineage.json` (when present).
    pub fn load(dir: &Path) -> Result<State, Diagnostic> {
        let help = "build the other project first (`etlm compile`, `etlm run` or `etlm build` write \
                    target/manifest.json) and pass its target folder, e.g. `--state ../main/target`";
        if !dir.is_dir() {
            return Err(Diagnostic::error(Code::StateNotFound, format!("`--state {}` is not a folder", dir.display()))
                .with_help(help));
        }
        let manifest_path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| {
            Diagnostic::error(Code::StateNotFound, format!("cannot read `{}`: {e}", manifest_path.display()))
                .with_help(help)
        })?;
        let manifest = parse_manifest(&text).map_err(|e| invalid_state(&manifest_path, &e))?;
        let lineage_path = dir.join("lineage.json");
        let lineage = match std::fs::read_to_string(&lineage_path) {
            Ok(text) => parse_lineage(&text).map_err(|e| invalid_state(&lineage_path, &e))?,
            Err(_) => StateLineage::default(),
        };
        Ok(State { dir: dir.to_path_buf(), manifest, lineage })
    }

    /// The compiled SQL that build wrote for a node, if its file is there.
    pub fn compiled_sql(&self, node: &StateNode) -> Option<String> {
        std::fs::read_to_string(self.dir.join("compiled").join(&node.original_file_path)).ok()
    }
}

fn invalid_state(path: &Path, e: &serde_json::Error) -> Diagnostic {
    Diagnostic::error(Code::InvalidState, format!("`{}` is not an etlm artifact: {e}", path.display()))
        .with_help("rebuild the other project with this version of etlm")
}

/// Parses manifest JSON text.
pub fn parse_manifest(text: &str) -> Result<StateManifest, serde_json::Error> {
    serde_json::from_str(text)
}

/// Parses lineage JSON text.
pub fn parse_lineage(text: &str) -> Result<StateLineage, serde_json::Error> {
    serde_json::from_str(text)
}

/// The status of every node in a `run_results.json`, and the command that ran.
#[derive(Clone, Debug, Deserialize)]
pub struct PreviousRun {
    pub metadata: PreviousRunMetadata,
    pub results: Vec<PreviousResult>,
}

/// `run_results.json`'s `metadata`.
#[derive(Clone, Debug, Deserialize)]
pub struct PreviousRunMetadata {
    pub command: String,
}

/// One node's result.
#[derive(Clone, Debug, Deserialize)]
pub struct PreviousResult {
    pub unique_id: String,
    pub status: String,
}

impl PreviousRun {
    /// Reads `<dir>/run_results.json`.
    pub fn load(dir: &Path) -> Result<PreviousRun, Diagnostic> {
        let path = dir.join("run_results.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Diagnostic::error(Code::NoPreviousRun, format!("cannot read `{}`: {e}", path.display()))
                .with_help("`result:` selectors and `etlm retry` need a run first (`etlm run`, `etlm build`)")
        })?;
        serde_json::from_str(&text).map_err(|e| invalid_state(&path, &e))
    }

    /// Unique id -> status (`success`, `error`, `fail`, `skipped`, `warn`, `pass`).
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.results.iter().map(|r| (r.unique_id.clone(), r.status.clone())).collect()
    }
}
