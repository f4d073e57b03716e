//! Skipping what provably did not change (`--skip-unchanged`). After every run, each
//! node that built and each test that passed leaves a [`Proof`]: what it was (its
//! definition), the fingerprint of every relation it read, and the fingerprint of what it
//! published. A later run reuses the node instead of building it when its definition and
//! every input's fingerprint are the same as in its proof and its own relation is still
//! the one it published: building it again would give the same data.
//!
//! A fingerprint is the engine's ([`Engine::fingerprint`]); where the engine cannot give
//! one (Postgres), nothing reading that relation is reused. Snapshots, windowed models,
//! models whose SQL reads the clock or a random source, and `--full-refresh` runs are
//! never reused.
//!
//! Proofs are kept in `target/reuse_<target>.json`. A missing or unreadable file only
//! means nothing is reused; a proof is checked against the warehouse as it is, so a
//! stale one is never trusted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compile::CompiledProject;
use crate::engine::Engine;
use crate::graph::ResourceType;
use crate::history::{RunSummary, Status};
use crate::node::Node;
use crate::project::Materialization;
use crate::relation::Relation;

/// Why a node built, or what its reuse relied on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The run that built it (or that a test passed in).
    pub run_id: String,
    /// sha256 of what the node is: its compiled SQL, effective config, hooks and
    /// relation (a seed: its file's bytes), and etlm's version.
    pub definition: String,
    /// Each relation it reads, through views and ephemeral models, with its fingerprint.
    pub inputs: BTreeMap<String, String>,
    /// Its relation's fingerprint after it published (tests: none).
    pub output: Option<String>,
    /// The rows it wrote.
    pub rows: Option<u64>,
}

/// Every kept proof, by node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Proofs {
    nodes: BTreeMap<String, Proof>,
}

impl Proofs {
    /// The proofs kept for the project's target (none if there are none, or they cannot
    /// be read).
    pub fn load(compiled: &CompiledProject) -> Proofs {
        std::fs::read(path(compiled)).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default()
    }

    pub fn get(&self, id: &str) -> Option<&Proof> {
        self.nodes.get(id)
    }
}

fn path(compiled: &CompiledProject) -> PathBuf {
    compiled.project.target_dir().join(format!("reuse_{}.json", compiled.project.target.name))
}

/// What a run knows for `--skip-unchanged`.
#[derive(Clone, Debug, Default)]
pub struct Reuse {
    /// The proofs nodes may be reused on; `None` when skipping is off.
    pub proofs: Option<Arc<Proofs>>,
    /// The fingerprints asked for so far, shared with what records the new proofs.
    pub fingerprints: Arc<Fingerprints>,
}

/// The fingerprints of relations, asked of the engine once each; a relation that is
/// published again is forgotten.
#[derive(Debug, Default)]
pub struct Fingerprints {
    known: Mutex<HashMap<Relation, Option<String>>>,
}

impl Fingerprints {
    fn of(&self, engine: &dyn Engine, relation: &Relation) -> Option<String> {
        if let Some(known) = self.known.lock().expect("fingerprints").get(relation) {
            return known.clone();
        }
        let fingerprint = engine.fingerprint(relation);
        self.known.lock().expect("fingerprints").insert(relation.clone(), fingerprint.clone());
        fingerprint
    }

    /// `relation` may have changed.
    pub fn forget(&self, relation: &Relation) {
        self.known.lock().expect("fingerprints").remove(relation);
    }
}

/// Why `node` is built whatever its proof says, if it is.
pub fn never_reused(node: &Node, full_refresh: bool) -> Option<&'static str> {
    const CLOCK_OR_CHANCE: &[&str] = &[
        "now(",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtimestamp",
        "clock_timestamp",
        "statement_timestamp",
        "random(",
        "uuid(",
    ];
    if full_refresh {
        return Some("--full-refresh rebuilds everything");
    }
    if node.config.materialized == Materialization::Snapshot {
        return Some("a snapshot records the time it runs");
    }
    if node.is_windowed() {
        return Some("a windowed model processes the periods due now");
    }
    let sql = node.compiled_sql.as_deref().unwrap_or_default().to_ascii_lowercase();
    CLOCK_OR_CHANCE.iter().any(|f| sql.contains(f)).then_some("its SQL reads the clock or a random source")
}

/// What `node` is and reads now, as a proof of this run would say (`None` when a
/// relation it reads or writes has no fingerprint).
pub fn current(
    compiled: &CompiledProject,
    engine: &dyn Engine,
    fingerprints: &Fingerprints,
    node: &Node,
    run_id: &str,
    rows: Option<u64>,
) -> Option<Proof> {
    let mut inputs = BTreeMap::new();
    for relation in read_by(compiled, node) {
        inputs.insert(format!("{}.{}", relation.schema, relation.identifier), fingerprints.of(engine, &relation)?);
    }
    let output = match node.resource_type {
        ResourceType::Test => None,
        _ => Some(fingerprints.of(engine, node.relation.as_ref()?)?),
    };
    Some(Proof { run_id: run_id.to_string(), definition: definition(compiled, node)?, inputs, output, rows })
}

/// True if `node` is what its proof says it was (its definition; not yet what it reads):
/// a seed whose file is the one it loaded need not be read before the run.
pub fn same_definition(compiled: &CompiledProject, proofs: &Proofs, node: &Node) -> bool {
    proofs.get(&node.unique_id).is_some_and(|p| definition(compiled, node).as_ref() == Some(&p.definition))
}

/// True if `proof` stands for the node as it is now: the same definition, inputs and
/// relation.
pub fn holds(proof: &Proof, now: &Proof) -> bool {
    proof.definition == now.definition && proof.inputs == now.inputs && proof.output == now.output
}

/// The reason a reused node gives, and its proof as `--format json` shows it.
pub fn reason(proof: &Proof) -> String {
    let n = proof.inputs.len();
    format!(
        "reused: its definition and the {n} relation{} it reads are as when run {} built it",
        if n == 1 { "" } else { "s" },
        proof.run_id
    )
}

/// The proofs after a run: those of the run's built nodes and passed tests replace the
/// earlier ones; reused nodes keep theirs. An audit proves something only if the model
/// it audits was published (or reused).
pub fn record(
    compiled: &CompiledProject,
    engine: &dyn Engine,
    fingerprints: &Fingerprints,
    summary: &RunSummary,
    mut proofs: Proofs,
) -> Proofs {
    let published: BTreeSet<&str> = summary
        .results
        .iter()
        .filter(|r| r.test.is_none() && r.line.status == Status::Success)
        .map(|r| r.line.unique_id.as_str())
        .collect();
    let usable: BTreeSet<&str> = summary
        .results
        .iter()
        .filter(|r| r.test.is_none() && matches!(r.line.status, Status::Success | Status::Reused))
        .map(|r| r.line.unique_id.as_str())
        .collect();
    for result in &summary.results {
        let Some(node) = compiled.nodes.get(&result.line.unique_id) else { continue };
        let proven = match &result.test {
            None => published.contains(node.unique_id.as_str()),
            Some(test) => {
                test.status == Status::Pass
                    && node.resource_type == ResourceType::Test
                    && (!test.audit || test.attached.as_deref().is_some_and(|a| usable.contains(a)))
            }
        };
        if !proven || never_reused(node, false).is_some() {
            continue;
        }
        if let Some(proof) = current(compiled, engine, fingerprints, node, &summary.run_id, result.line.rows) {
            proofs.nodes.insert(node.unique_id.clone(), proof);
        }
    }
    proofs
}

/// Writes the proofs where the next run finds them.
pub fn save(compiled: &CompiledProject, proofs: &Proofs) -> Result<(), crate::diagnostics::Diagnostic> {
    let text = serde_json::to_vec(proofs).expect("proofs serialize");
    let path = path(compiled);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    crate::disk::write_atomic(&path, &text)
}

/// The relations `node` reads: those of the nodes it depends on, and through views and
/// ephemeral models, what they read (a view's data changes with what it reads).
fn read_by(compiled: &CompiledProject, node: &Node) -> BTreeSet<Relation> {
    let mut found = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = node.depends_on.iter().map(String::as_str).collect();
    while let Some(id) = todo.pop() {
        let Some(dep) = compiled.nodes.get(id) else { continue };
        if !seen.insert(id) {
            continue;
        }
        if let Some(relation) = &dep.relation {
            found.insert(relation.clone());
        }
        let through = dep.resource_type == ResourceType::Model
            && matches!(dep.config.materialized, Materialization::View | Materialization::Ephemeral);
        if through {
            todo.extend(dep.depends_on.iter().map(String::as_str));
        }
    }
    found
}

/// sha256 of what `node` is; `None` for a seed whose file cannot be read.
fn definition(compiled: &CompiledProject, node: &Node) -> Option<String> {
    let mut hash = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    part(env!("CARGO_PKG_VERSION").as_bytes());
    part(node.unique_id.as_bytes());
    part(node.relation.as_ref().map(Relation::to_string).unwrap_or_default().as_bytes());
    part(node.compiled_sql.as_deref().unwrap_or_default().as_bytes());
    part(serde_json::to_string(&node.config.raw).expect("config serializes").as_bytes());
    for hook in node.hooks.pre.iter().chain(&node.hooks.post) {
        part(hook.as_bytes());
    }
    if node.resource_type == ResourceType::Seed {
        part(&std::fs::read(compiled.project.root.join(&node.path)).ok()?);
    }
    Some(crate::hex::hex(&hash.finalize()))
}
