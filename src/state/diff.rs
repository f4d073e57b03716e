//! Change detection: the current project against another build's manifest.
//!
//! A node present in both is *modified* when its compiled SQL, effective config or
//! relation changed, when a var it reads or a macro it calls changed (only those: a var
//! or macro it does not use never selects it), or when an upstream node's output columns
//! changed. Each reason is kept, so `etlm diff` can say why and `state:modified.<reason>`
//! can select by it. A removed model whose code reappears under another name is a rename.
//!
//! For modified models the output columns are compared, and the downstream columns and
//! clauses that read a changed column are found from column lineage (the other build's
//! lineage for removed columns, which the current one no longer has), each with the path
//! it takes. A removed or retyped column that something reads is `breaking` (types are
//! inferred at compile time, `sql/types.rs`); so is a removed or renamed model, whose
//! relation disappears. A column whose derivation changed (its lineage fingerprint), or
//! a model whose rows may differ (its rows fingerprint, or a seed's data), makes every
//! reader `values may change`. A change that nothing reads is `non-breaking`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use super::artifacts::{LineageNode, OutputColumn, State, StateLineage, StateManifest, StateNode};

/// Why a node counts as modified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Its compiled SQL (or, without SQL, its code) changed.
    Body,
    /// Its effective config changed.
    Config,
    /// It is built under another relation name.
    Relation,
    /// A var it reads has another value.
    Vars,
    /// A macro it calls changed.
    Macros,
    /// An upstream node gained or lost columns.
    UpstreamSchema,
    /// An upstream column this node reads was retyped.
    UpstreamRetyped,
}

impl Reason {
    /// The name used in `state:modified.<name>` and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Body => "body",
            Reason::Config => "config",
            Reason::Relation => "relation",
            Reason::Vars => "vars",
            Reason::Macros => "macros",
            Reason::UpstreamSchema => "upstream_schema",
            Reason::UpstreamRetyped => "upstream_retyped",
        }
    }

    /// Every reason, in report order.
    pub const ALL: [Reason; 7] = [
        Reason::Body,
        Reason::Config,
        Reason::Relation,
        Reason::Vars,
        Reason::Macros,
        Reason::UpstreamSchema,
        Reason::UpstreamRetyped,
    ];
}

/// One reason with what it names: vars, macros, config keys or upstream nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub reason: Reason,
    pub names: Vec<String>,
}

/// Whether a change can break readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Nothing downstream reads what changed.
    NonBreaking,
    /// Something downstream reads a column whose derivation changed, or rows that may differ.
    ValuesMayChange,
    /// Something downstream reads a removed or retyped column, or a removed relation.
    Breaking,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::NonBreaking => "non-breaking",
            Class::ValuesMayChange => "values may change",
            Class::Breaking => "breaking",
        }
    }
}

/// A node that exists on one side only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeRef {
    pub unique_id: String,
    pub name: String,
    pub resource_type: String,
    pub class: Class,
}

/// A model that moved to a new name with the same code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rename {
    pub from: NodeRef,
    pub to: NodeRef,
    pub class: Class,
}

/// A column whose type changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Retyped {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// Output column changes of a model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ColumnChanges {
    pub added: Vec<OutputColumn>,
    pub removed: Vec<OutputColumn>,
    pub retyped: Vec<Retyped>,
}

impl ColumnChanges {
    /// The names of the added and removed columns, lowercase.
    fn shape_names(&self) -> BTreeSet<String> {
        let added = self.added.iter().map(|c| &c.name);
        added.chain(self.removed.iter().map(|c| &c.name)).map(|n| n.to_lowercase()).collect()
    }
}

/// A downstream use of a changed column: a column derived from it (`copy`,
/// `transform`, `aggregate`, possibly through other models) or a clause reading it
/// (`filter`, `join`, `group`, `order`, `window`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Use {
    pub model: String,
    /// The derived column; `None` for a clause.
    pub column: Option<String>,
    pub how: String,
    /// The columns in between, `model.column`, from the changed column's first reader
    /// to the one this use reads; empty when it reads the changed column itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// For a removed column: the reader was changed too and reads something else now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub updated: bool,
}

/// A changed column (or, for `rows`, the model's rows) and what reads it downstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Impact {
    /// The column, or `*` for `rows`.
    pub column: String,
    /// `removed`, `retyped`, `added`, `expression` (its derivation changed) or `rows`
    /// (a filter, join, grouping or the data changed).
    pub change: &'static str,
    pub class: Class,
    /// For `retyped`: `from -> to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The column's type is unknown on one side, so a retype cannot be ruled out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub type_unknown: bool,
    pub downstream: Vec<Use>,
}

/// A node present on both sides that changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Modified {
    pub unique_id: String,
    pub name: String,
    pub resource_type: String,
    pub class: Class,
    pub changes: Vec<Change>,
    pub columns: ColumnChanges,
    pub impacts: Vec<Impact>,
    /// Every downstream model that reads something that changed, sorted.
    pub reaches: Vec<String>,
    /// Unified diff of the compiled SQL; `None` when it did not change or the other
    /// build's compiled file is not there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql_diff: Option<String>,
}

/// The comparison of the current project with another build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: Vec<NodeRef>,
    pub removed: Vec<NodeRef>,
    pub renamed: Vec<Rename>,
    pub modified: Vec<Modified>,
}

impl Diff {
    /// How many changes are of `class`.
    pub fn count(&self, class: Class) -> usize {
        let removed = self.removed.iter().filter(|n| n.class == class).count();
        let renamed = self.renamed.iter().filter(|r| r.class == class).count();
        removed + renamed + self.modified.iter().filter(|m| m.class == class).count()
    }

    /// Keeps the added, renamed and modified nodes in `selected` (removed nodes, which
    /// no selector can name, stay).
    pub fn retain_selected(&mut self, selected: &BTreeSet<String>) {
        self.added.retain(|n| selected.contains(&n.unique_id));
        self.renamed.retain(|r| selected.contains(&r.to.unique_id));
        self.modified.retain(|m| selected.contains(&m.unique_id));
    }

    /// `state:new`: nodes that are not in the other build (renamed ones included).
    pub fn new_ids(&self) -> BTreeSet<String> {
        self.added
            .iter()
            .map(|n| n.unique_id.clone())
            .chain(self.renamed.iter().map(|r| r.to.unique_id.clone()))
            .collect()
    }

    /// `state:modified.<reason>`: the nodes changed for that reason (`state:modified`
    /// is every reason's nodes plus the new ones).
    pub fn modified_ids(&self, reason: Reason) -> BTreeSet<String> {
        let changed = self.modified.iter().filter(|m| m.changes.iter().any(|c| c.reason == reason));
        changed.map(|m| m.unique_id.clone()).collect()
    }
}

/// The current side of a comparison: its manifest and lineage, and its compiled SQL.
pub struct Current<'a> {
    pub manifest: &'a StateManifest,
    pub lineage: &'a StateLineage,
    pub compiled_sql: &'a dyn Fn(&str) -> Option<String>,
}

/// Compares a compiled project with another build.
pub fn diff_project(compiled: &crate::compile::CompiledProject, other: &State) -> Diff {
    let written = |write: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| {
        let mut text = Vec::new();
        write(&mut text).expect("writing to memory cannot fail");
        String::from_utf8(text).expect("etlm writes UTF-8 JSON")
    };
    let manifest = super::artifacts::parse_manifest(&written(&|out| super::manifest::write_manifest(compiled, out)))
        .expect("a manifest etlm writes reads back");
    let lineage = super::artifacts::parse_lineage(&written(&|out| compiled.lineage.write_json(out)))
        .expect("a lineage etlm writes reads back");
    let compiled_sql = |id: &str| compiled.nodes.get(id).and_then(|n| n.compiled_sql.clone());
    diff(&Current { manifest: &manifest, lineage: &lineage, compiled_sql: &compiled_sql }, other)
}

/// The `state:` selector sets of a diff.
pub fn state_sets(diff: &Diff) -> crate::graph::StateSets {
    crate::graph::StateSets {
        new: diff.new_ids(),
        modified: Reason::ALL.iter().map(|r| (r.as_str().to_string(), diff.modified_ids(*r))).collect(),
    }
}

/// Compares `current` with `other`.
pub fn diff(current: &Current<'_>, other: &State) -> Diff {
    let (new, old) = (current.manifest, &other.manifest);
    let new_ids: BTreeSet<&String> = new.all_nodes().map(|(id, _)| id).collect();
    let old_ids: BTreeSet<&String> = old.all_nodes().map(|(id, _)| id).collect();
    let node_ref = |n: &StateNode, class| NodeRef {
        unique_id: n.unique_id.clone(),
        name: n.name.clone(),
        resource_type: n.resource_type.clone(),
        class,
    };
    let mut added: Vec<NodeRef> =
        new_ids.difference(&old_ids).map(|id| node_ref(new.node(id).expect("listed"), Class::NonBreaking)).collect();
    let mut removed: Vec<NodeRef> = old_ids
        .difference(&new_ids)
        .map(|id| node_ref(old.node(id).expect("listed"), removal_class(old, id)))
        .collect();

    // A removed model whose code is now under another name was renamed.
    let mut renamed = Vec::new();
    removed.retain(|r| {
        let from = old.node(&r.unique_id).expect("listed");
        let twin = added.iter().position(|a| {
            let to = new.node(&a.unique_id).expect("listed");
            to.resource_type == "model"
                && from.resource_type == "model"
                && to.checksum.is_some()
                && to.checksum == from.checksum
        });
        match twin {
            Some(i) => {
                let to = added.remove(i);
                renamed.push(Rename { from: r.clone(), to, class: Class::Breaking });
                false
            }
            None => true,
        }
    });

    let readers = (LazyReaders::new(&other.lineage), LazyReaders::new(current.lineage));
    let modified = new_ids
        .intersection(&old_ids)
        .filter_map(|id| modified(id, current, other, (&readers.0, &readers.1)))
        .collect();
    added.sort_by(|a, b| a.unique_id.cmp(&b.unique_id));
    Diff { added, removed, renamed, modified }
}

/// A removed model or seed takes its relation with it; tests and sources break nothing.
fn removal_class(old: &StateManifest, id: &str) -> Class {
    match old.node(id).map(|n| n.resource_type.as_str()) {
        Some("model" | "seed") => Class::Breaking,
        _ => Class::NonBreaking,
    }
}

fn modified(
    id: &str,
    current: &Current<'_>,
    other: &State,
    readers: (&LazyReaders<'_>, &LazyReaders<'_>),
) -> Option<Modified> {
    let (new_manifest, old_manifest) = (current.manifest, &other.manifest);
    let (new, old) = (new_manifest.node(id)?, old_manifest.node(id)?);
    let mut changes = Vec::new();
    let code = |n: &StateNode| n.compiled_checksum.clone().or_else(|| n.checksum.clone());
    if code(new) != code(old) {
        changes.push(Change { reason: Reason::Body, names: Vec::new() });
    }
    let config_keys: Vec<String> = new
        .config
        .keys()
        .chain(old.config.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| new.config.get(*k) != old.config.get(*k))
        .cloned()
        .collect();
    if !config_keys.is_empty() {
        changes.push(Change { reason: Reason::Config, names: config_keys });
    }
    let portable = |m: &StateManifest, n: &StateNode| {
        n.relation_name.as_deref().map(|r| super::manifest::portable(r, &m.metadata.target_schema))
    };
    if portable(new_manifest, new) != portable(old_manifest, old) {
        changes.push(Change { reason: Reason::Relation, names: new.relation_name.iter().cloned().collect() });
    }
    let vars: Vec<String> = used(&new.vars, &old.vars)
        .filter(|v| new_manifest.vars.get(*v) != old_manifest.vars.get(*v))
        .cloned()
        .collect();
    if !vars.is_empty() {
        changes.push(Change { reason: Reason::Vars, names: vars });
    }
    let macros: Vec<String> = used(&new.depends_on.macros, &old.depends_on.macros)
        .filter(|m| new_manifest.macro_checksums.get(*m) != old_manifest.macro_checksums.get(*m))
        .cloned()
        .collect();
    if !macros.is_empty() {
        changes.push(Change { reason: Reason::Macros, names: macros });
    }
    // An upstream column change counts where it reaches this node: it reads a changed
    // column, or its own columns changed with it (`select *`).
    let own_columns_changed = new.output_columns != old.output_columns;
    let (mut reshaped, mut retyped) = (Vec::new(), Vec::new());
    for p in &new.depends_on.nodes {
        let columns = |m: &StateManifest| m.node(p).and_then(|n| n.output_columns.clone());
        let (Some(after), Some(before)) = (columns(new_manifest), columns(old_manifest)) else { continue };
        let changes = column_changes(Some(&before), Some(&after));
        let reached = |names: &BTreeSet<String>| {
            !names.is_empty()
                && (own_columns_changed || reads(current.lineage, id, p, names) || reads(&other.lineage, id, p, names))
        };
        let name = new_manifest.node(p).map_or_else(|| p.clone(), |n| n.name.clone());
        if reached(&changes.shape_names()) {
            reshaped.push(name.clone());
        }
        if reached(&changes.retyped.iter().map(|c| c.name.to_lowercase()).collect()) {
            retyped.push(name);
        }
    }
    if !reshaped.is_empty() {
        changes.push(Change { reason: Reason::UpstreamSchema, names: reshaped });
    }
    if !retyped.is_empty() {
        changes.push(Change { reason: Reason::UpstreamRetyped, names: retyped });
    }
    if changes.is_empty() {
        return None;
    }
    let columns = column_changes(old.output_columns.as_deref(), new.output_columns.as_deref());
    let mut impacts = impacts(id, &columns, readers, current.lineage);
    let body_changed = changes.iter().any(|c| c.reason == Reason::Body);
    if body_changed {
        let sides = (other.lineage.nodes.get(id), current.lineage.nodes.get(id));
        impacts.extend(value_impacts(id, sides, &columns, readers.1));
    }
    let class = impacts.iter().map(|i| i.class).max().unwrap_or(Class::NonBreaking);
    let sql_diff = match (body_changed, other.compiled_sql(old), (current.compiled_sql)(id)) {
        (true, Some(before), Some(after)) => Some(unified_diff(&before, &after, &old.original_file_path)),
        _ => None,
    };
    let reaches: BTreeSet<String> = impacts.iter().flat_map(|i| &i.downstream).map(|u| u.model.clone()).collect();
    Some(Modified {
        unique_id: id.to_string(),
        name: new.name.clone(),
        resource_type: new.resource_type.clone(),
        class,
        changes,
        columns,
        impacts,
        reaches: reaches.into_iter().collect(),
        sql_diff,
    })
}

/// True when `node` reads one of `columns` (lowercase) of `parent`, in an output column
/// or a clause.
fn reads(lineage: &StateLineage, node: &str, parent: &str, columns: &BTreeSet<String>) -> bool {
    let Some(entry) = lineage.nodes.get(node) else { return false };
    let hit = |n: &str, c: &str| n == parent && columns.contains(&c.to_lowercase());
    entry.columns.iter().flat_map(|c| &c.upstream).any(|e| hit(&e.node, &e.column))
        || entry.usage.values().flatten().any(|r| hit(&r.node, &r.column))
}

/// The names in either list, each once, sorted.
fn used<'a>(a: &'a [String], b: &'a [String]) -> impl Iterator<Item = &'a String> {
    a.iter().chain(b).collect::<BTreeSet<_>>().into_iter()
}

/// Added, removed and retyped columns; nothing when either side's columns are unknown.
fn column_changes(old: Option<&[OutputColumn]>, new: Option<&[OutputColumn]>) -> ColumnChanges {
    let (Some(old), Some(new)) = (old, new) else { return ColumnChanges::default() };
    let find = |list: &[OutputColumn], name: &str| list.iter().find(|c| c.name.eq_ignore_ascii_case(name)).cloned();
    ColumnChanges {
        added: new.iter().filter(|c| find(old, &c.name).is_none()).cloned().collect(),
        removed: old.iter().filter(|c| find(new, &c.name).is_none()).cloned().collect(),
        retyped: new
            .iter()
            .filter_map(|c| {
                let before = find(old, &c.name)?;
                match (before.data_type, &c.data_type) {
                    (Some(from), Some(to)) if &from != to => {
                        Some(Retyped { name: c.name.clone(), from, to: to.clone() })
                    }
                    _ => None,
                }
            })
            .collect(),
    }
}

fn impacts(
    id: &str,
    columns: &ColumnChanges,
    (old, new): (&LazyReaders<'_>, &LazyReaders<'_>),
    current: &StateLineage,
) -> Vec<Impact> {
    let impact = |column: &str, change, downstream: Vec<Use>, breaks: bool| {
        let class = if breaks && !downstream.is_empty() { Class::Breaking } else { Class::NonBreaking };
        Impact { column: column.to_string(), change, class, detail: None, type_unknown: false, downstream }
    };
    // A removed column that main's models read is breaking even where this change
    // updated them: the relation lost a column something read.
    let mut out: Vec<Impact> = columns
        .removed
        .iter()
        .map(|c| impact(&c.name, "removed", updated_uses(old.get().downstream(id, &c.name), current), true))
        .collect();
    out.extend(columns.retyped.iter().map(|c| Impact {
        detail: Some(format!("{} -> {}", c.from, c.to)),
        ..impact(&c.name, "retyped", new.get().downstream(id, &c.name), true)
    }));
    out.extend(columns.added.iter().map(|c| impact(&c.name, "added", new.get().downstream(id, &c.name), false)));
    out
}

/// Marks the uses of a removed column (found in the other build's lineage) that this
/// project no longer has: their column still exists, so it reads something else now
/// (compiling checks that no model reads a missing column).
fn updated_uses(uses: Vec<Use>, current: &StateLineage) -> Vec<Use> {
    uses.into_iter()
        .map(|u| {
            let node = current.nodes.values().find(|n| n.name == u.model);
            let updated = match (node, &u.column) {
                (Some(n), Some(column)) => n.columns.iter().any(|c| c.name.eq_ignore_ascii_case(column)),
                (Some(_), None) => true,
                (None, _) => false,
            };
            Use { updated, ..u }
        })
        .collect()
}

/// What a change of a node's code does to the values it hands on: each column present on
/// both sides, neither removed nor retyped, whose derivation changed, and the node's rows
/// when what decides them changed (a seed's rows when its data did).
fn value_impacts(
    id: &str,
    (old, new): (Option<&LineageNode>, Option<&LineageNode>),
    columns: &ColumnChanges,
    readers: &LazyReaders<'_>,
) -> Vec<Impact> {
    let (Some(old), Some(new)) = (old, new) else { return Vec::new() };
    let class = |downstream: &[Use]| if downstream.is_empty() { Class::NonBreaking } else { Class::ValuesMayChange };
    let mut out = Vec::new();
    let rows_changed = match (&old.rows_fingerprint, &new.rows_fingerprint) {
        (Some(a), Some(b)) => a != b,
        // A node without SQL (a seed) whose code changed: its data did.
        (None, None) => true,
        _ => false,
    };
    if rows_changed {
        let all: BTreeSet<Use> = new.columns.iter().flat_map(|c| readers.get().downstream(id, &c.name)).collect();
        let downstream: Vec<Use> = all.into_iter().collect();
        let (class, type_unknown) = (class(&downstream), false);
        out.push(Impact { column: "*".into(), change: "rows", class, detail: None, type_unknown, downstream });
    }
    let retyped: BTreeSet<String> = columns.retyped.iter().map(|c| c.name.to_lowercase()).collect();
    for col in &new.columns {
        let Some(before) = old.columns.iter().find(|c| c.name.eq_ignore_ascii_case(&col.name)) else { continue };
        let changed = matches!((&before.fingerprint, &col.fingerprint), (Some(a), Some(b)) if a != b);
        if !changed || retyped.contains(&col.name.to_lowercase()) {
            continue;
        }
        let downstream = readers.get().downstream(id, &col.name);
        out.push(Impact {
            column: col.name.clone(),
            change: "expression",
            class: class(&downstream),
            detail: None,
            type_unknown: before.data_type.is_none() || col.data_type.is_none(),
            downstream,
        });
    }
    out
}

/// The readers of a lineage, built on first use: most nodes change no column.
struct LazyReaders<'a> {
    lineage: &'a StateLineage,
    built: std::cell::OnceCell<Readers>,
}

impl<'a> LazyReaders<'a> {
    fn new(lineage: &'a StateLineage) -> LazyReaders<'a> {
        LazyReaders { lineage, built: std::cell::OnceCell::new() }
    }

    fn get(&self) -> &Readers {
        self.built.get_or_init(|| Readers::new(self.lineage))
    }
}

/// A column of a node: (unique id, lowercase column name).
type ColumnKey = (String, String);

/// Who reads each column, from one lineage: the reverse of its edges.
pub struct Readers {
    /// Column -> (reading node, its column, edge kind).
    columns: BTreeMap<ColumnKey, Vec<(String, String, String)>>,
    /// Column -> (reading node, clause role).
    clauses: BTreeMap<ColumnKey, Vec<(String, String)>>,
    names: BTreeMap<String, String>,
}

impl Readers {
    pub fn new(lineage: &StateLineage) -> Readers {
        let mut readers = Readers { columns: BTreeMap::new(), clauses: BTreeMap::new(), names: BTreeMap::new() };
        for (id, node) in &lineage.nodes {
            readers.names.insert(id.clone(), node.name.clone());
            for col in &node.columns {
                for e in &col.upstream {
                    readers.columns.entry((e.node.clone(), e.column.to_lowercase())).or_default().push((
                        id.clone(),
                        col.name.clone(),
                        e.kind.clone(),
                    ));
                }
            }
            for (role, refs) in &node.usage {
                for r in refs {
                    readers
                        .clauses
                        .entry((r.node.clone(), r.column.to_lowercase()))
                        .or_default()
                        .push((id.clone(), role.clone()));
                }
            }
        }
        readers
    }

    /// Every downstream use of `node.column`: columns derived from it, transitively, and
    /// the clauses of models that read it or a column derived from it.
    /// Each use comes with the shortest path to it (breadth first).
    pub fn downstream(&self, node: &str, column: &str) -> Vec<Use> {
        let name = |id: &str| self.names.get(id).cloned().unwrap_or_else(|| id.to_string());
        let start = (node.to_string(), column.to_lowercase());
        let mut seen = BTreeSet::from([start.clone()]);
        // Each column reached, with the path of derived columns that led to it.
        let mut queue = VecDeque::from([(start, Vec::<String>::new())]);
        let mut uses: BTreeMap<(String, Option<String>, String), Vec<String>> = BTreeMap::new();
        while let Some((key, via)) = queue.pop_front() {
            for (id, col, kind) in self.columns.get(&key).into_iter().flatten() {
                uses.entry((name(id), Some(col.clone()), kind.clone())).or_insert_with(|| via.clone());
                let next = (id.clone(), col.to_lowercase());
                if seen.insert(next.clone()) {
                    let mut path = via.clone();
                    path.push(format!("{}.{col}", name(id)));
                    queue.push_back((next, path));
                }
            }
            for (id, role) in self.clauses.get(&key).into_iter().flatten() {
                uses.entry((name(id), None, role.clone())).or_insert_with(|| via.clone());
            }
        }
        let mut uses: Vec<Use> = uses
            .into_iter()
            .map(|((model, column, how), via)| Use { model, column, how, via, updated: false })
            .collect();
        // Direct readers first.
        uses.sort_by_key(|u| u.via.len());
        uses
    }
}

/// A unified diff of two texts, three lines of context.
fn unified_diff(before: &str, after: &str, path: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(false)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::artifacts::parse_lineage;

    fn col(name: &str, data_type: Option<&str>) -> OutputColumn {
        OutputColumn { name: name.into(), data_type: data_type.map(Into::into) }
    }

    #[test]
    fn columns_added_removed_and_retyped_only_where_types_are_known() {
        let old = [col("id", Some("int64")), col("status", Some("utf8")), col("amount", None), col("n", Some("int32"))];
        let new = [col("ID", Some("int64")), col("amount", Some("float64")), col("n", Some("int64")), col("x", None)];
        let changes = column_changes(Some(&old), Some(&new));
        assert_eq!(changes.added, [col("x", None)]);
        assert_eq!(changes.removed, [col("status", Some("utf8"))]);
        assert_eq!(changes.retyped, [Retyped { name: "n".into(), from: "int32".into(), to: "int64".into() }]);
        assert_eq!(column_changes(None, Some(&new)), ColumnChanges::default(), "unknown columns compare as unchanged");
    }

    #[test]
    fn downstream_follows_columns_through_models_and_collects_clauses() {
        let lineage = parse_lineage(
            r#"{"nodes": {
                "model.p.a": {"name": "a", "columns": [{"name": "s", "upstream": []}], "usage": {}},
                "model.p.b": {"name": "b", "columns": [{"name": "s2", "upstream": [{"node": "model.p.a", "column": "S", "kind": "copy"}]}], "usage": {}},
                "model.p.c": {"name": "c", "columns": [{"name": "n", "upstream": [{"node": "model.p.b", "column": "s2", "kind": "aggregate"}]}],
                              "usage": {"filter": [{"node": "model.p.a", "column": "s"}]}}
            }, "version": 1}"#,
        )
        .unwrap();
        let uses = Readers::new(&lineage).downstream("model.p.a", "s");
        let text: Vec<String> =
            uses.iter().map(|u| format!("{}.{}:{}", u.model, u.column.as_deref().unwrap_or("-"), u.how)).collect();
        assert_eq!(text, ["b.s2:copy", "c.-:filter", "c.n:aggregate"]);
        assert!(Readers::new(&lineage).downstream("model.p.c", "n").is_empty());
    }
}
