//! `target/manifest.json`: every node with its unique id, resource type, file, checksums,
//! dependencies, effective config, columns, tests, plus the parent and child maps; and
//! what change detection (`etlm diff`, `state:` selectors, `--defer`) reads: the vars
//! and macros each node uses, var values, macro checksums, output columns, relations and
//! the embedded engine's warehouse folder.
//! Everything is a `BTreeMap` or a sorted list, and nothing time-dependent is written,
//! so two compiles of the same project are byte-identical.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::compile::CompiledProject;
use crate::graph::ResourceType;
use crate::lineage::NodeLineage;
use crate::node::{ColumnDoc, GivenRows, Node};
use crate::project::unit_tests::{Fixture, Row, Rows, UnitTestDef};

/// `text` (compiled SQL, a relation name) with the target's schema as a placeholder:
/// `"prod"."orders"` and `"prod_marts"."x"` read `"{target}"."orders"` and
/// `"{target}_marts"."x"`, so a change of target alone (production, a CI schema) is no
/// change to a model.
pub fn portable(text: &str, target_schema: &str) -> String {
    let quoted = crate::relation::quote_ident(target_schema);
    let prefix = &quoted[..quoted.len() - 1];
    text.replace(&quoted, "\"{target}\"").replace(&format!("{prefix}_"), "\"{target}_")
}

/// The manifest's schema version; bumped on incompatible changes.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Serialize)]
struct Metadata<'a> {
    manifest_version: u32,
    etlm_version: &'static str,
    project_name: &'a str,
    target_name: &'a str,
    /// The target's schema: `compiled_checksum` and relation comparisons read it as a
    /// placeholder, so two targets of one project compare equal (see `portable`).
    target_schema: &'a str,
    adapter_type: &'a str,
    /// The embedded engine's warehouse folder (absolute), so `--defer` in another build
    /// can read this build's relations.
    #[serde(skip_serializing_if = "Option::is_none")]
    warehouse_path: Option<String>,
}

#[derive(Serialize)]
struct Checksum {
    name: &'static str,
    checksum: String,
}

#[derive(Serialize)]
struct DependsOn<'a> {
    nodes: &'a [String],
    macros: Vec<&'a str>,
}

#[derive(Serialize)]
struct TestMetadata<'a> {
    name: &'a str,
    column_name: Option<&'a str>,
    attached_node: &'a str,
    kwargs: BTreeMap<&'a str, &'a Json>,
}

#[derive(Serialize)]
struct ManifestNode<'a> {
    unique_id: &'a str,
    resource_type: &'static str,
    name: &'a str,
    fqn: &'a [String],
    original_file_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relation_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<Checksum>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_checksum: Option<Checksum>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compiled_path: Option<String>,
    depends_on: DependsOn<'a>,
    config: &'a BTreeMap<String, Json>,
    materialized: &'static str,
    tags: &'a [String],
    description: &'a str,
    columns: BTreeMap<&'a str, &'a ColumnDoc>,
    vars: Vec<&'a str>,
    /// Output columns in order, with types where known; left out when lineage could not
    /// list them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    output_columns: Option<Vec<OutputColumn<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metadata: Option<TestMetadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_name: Option<&'a str>,
}

/// A `unit_tests` entry, as dbt writes its unit test definitions.
#[derive(Serialize)]
struct ManifestUnitTest<'a> {
    unique_id: &'a str,
    resource_type: &'static str,
    name: &'a str,
    model: &'a str,
    package_name: &'a str,
    fqn: &'a [String],
    original_file_path: String,
    description: &'a str,
    /// SHA-256 of the given and expected rows and the overrides: a change to them is a
    /// change to the test (`state:modified`).
    checksum: Checksum,
    depends_on: DependsOn<'a>,
    config: &'a BTreeMap<String, Json>,
    tags: &'a [String],
    vars: Vec<&'a str>,
    given: Vec<ManifestFixture<'a>>,
    expect: ManifestFixture<'a>,
    overrides: ManifestOverrides<'a>,
}

/// Given or expected rows: a list of rows (`dict`, `csv`), or the query (`sql`).
#[derive(Serialize)]
struct ManifestFixture<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a str>,
    format: &'static str,
    rows: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixture: Option<&'a str>,
}

#[derive(Serialize)]
struct ManifestOverrides<'a> {
    vars: &'a BTreeMap<String, Json>,
    env_vars: &'a BTreeMap<String, String>,
    macros: &'a BTreeMap<String, Json>,
}

fn manifest_fixture<'a>(
    input: Option<&'a str>,
    fixture: &'a Fixture,
    compiled: Option<&GivenRows>,
) -> ManifestFixture<'a> {
    let rows_json =
        |rows: &[Row]| Json::Array(rows.iter().map(|r| Json::Object(r.iter().cloned().collect())).collect());
    let rows = match (compiled, &fixture.rows) {
        (Some(GivenRows::Values(rows)), _) | (None, Rows::Values(rows)) => rows_json(rows),
        (Some(GivenRows::Sql(sql)), _) | (None, Rows::Sql(sql)) => Json::String(sql.clone()),
        (None, Rows::Absent | Rows::Fixture(_)) => Json::Null,
    };
    ManifestFixture { input, format: fixture.format.as_str(), rows, fixture: fixture.name.as_deref() }
}

fn manifest_unit_test<'a>(node: &'a Node, def: &'a UnitTestDef, package: &'a str) -> ManifestUnitTest<'a> {
    let case = node.unit_test.as_ref().expect("unit test nodes carry their case");
    let given: Vec<ManifestFixture<'a>> = def
        .given
        .iter()
        .zip(&case.inputs)
        .map(|(g, input)| manifest_fixture(Some(g.input.trim()), &g.fixture, Some(&input.rows)))
        .collect();
    let expect = manifest_fixture(None, &def.expect, Some(&case.expect));
    let overrides = ManifestOverrides {
        vars: &def.overrides.vars,
        env_vars: &def.overrides.env_vars,
        macros: &def.overrides.macros,
    };
    let definition = serde_json::json!({"given": given, "expect": expect, "overrides": overrides});
    ManifestUnitTest {
        unique_id: &node.unique_id,
        resource_type: node.resource_type.as_str(),
        name: &node.name,
        model: &def.model,
        package_name: package,
        fqn: &node.fqn,
        original_file_path: node.path.display().to_string(),
        description: &node.description,
        checksum: Checksum { name: "sha256", checksum: checksum(&definition.to_string()) },
        depends_on: DependsOn {
            nodes: &node.depends_on,
            macros: node.macros_used.iter().map(String::as_str).collect(),
        },
        config: &node.config.raw,
        tags: &node.config.tags,
        vars: node.vars_used.iter().map(String::as_str).collect(),
        given,
        expect,
        overrides,
    }
}

#[derive(Serialize)]
struct OutputColumn<'a> {
    name: &'a str,
    data_type: Option<&'a str>,
}

#[derive(Serialize)]
struct ManifestMacro {
    original_file_path: String,
}

/// SHA-256 of a text, hex.
pub fn checksum(text: &str) -> String {
    hex_sha256(text.as_bytes())
}

fn hex_sha256(bytes: &[u8]) -> String {
    crate::hex::hex(&Sha256::digest(bytes))
}

/// A seed's checksum is its CSV file's, so a change to its data is a change to the seed
/// (none when the file cannot be read; `etlm seed` reports why).
fn seed_checksum(root: &Path, node: &Node) -> Option<Checksum> {
    let bytes = std::fs::read(root.join(&node.path)).ok()?;
    Some(Checksum { name: "sha256", checksum: hex_sha256(&bytes) })
}

fn manifest_node<'a>(
    node: &'a Node,
    lineage: Option<&'a NodeLineage>,
    root: &Path,
    target_path: &str,
    target_schema: &str,
) -> ManifestNode<'a> {
    let sha = |t: &str| Checksum { name: "sha256", checksum: checksum(t) };
    ManifestNode {
        unique_id: &node.unique_id,
        resource_type: node.resource_type.as_str(),
        name: &node.name,
        fqn: &node.fqn,
        original_file_path: node.path.display().to_string(),
        database: node.relation.as_ref().and_then(|r| r.database.as_deref()),
        schema: node.relation.as_ref().map(|r| r.schema.as_str()),
        identifier: node.relation.as_ref().map(|r| r.identifier.as_str()),
        relation_name: node.relation.as_ref().map(ToString::to_string),
        checksum: match node.resource_type {
            ResourceType::Seed => seed_checksum(root, node),
            _ => node.raw_sql.as_deref().map(sha),
        },
        compiled_checksum: node.compiled_sql.as_deref().map(|sql| sha(&portable(sql, target_schema))),
        raw_code: node.raw_sql.as_deref(),
        compiled_path: node
            .compiled_sql
            .as_ref()
            .map(|_| format!("{target_path}/compiled/{}", node.compiled_path().display())),
        depends_on: DependsOn {
            nodes: &node.depends_on,
            macros: node.macros_used.iter().map(String::as_str).collect(),
        },
        config: &node.config.raw,
        materialized: node.config.materialized.as_str(),
        tags: &node.config.tags,
        description: &node.description,
        columns: node.columns.iter().map(|c| (c.name.as_str(), c)).collect(),
        vars: node.vars_used.iter().map(String::as_str).collect(),
        output_columns: lineage.filter(|l| l.columns_complete).map(|l| {
            l.columns.iter().map(|c| OutputColumn { name: &c.name, data_type: c.data_type.as_deref() }).collect()
        }),
        test_metadata: node.generic_test.as_ref().map(|t| TestMetadata {
            name: &t.def.test_name,
            column_name: t.def.column.as_deref(),
            attached_node: &t.attached_to,
            kwargs: t.def.args.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        }),
        source_name: node.source_name.as_deref(),
    }
}

/// Writes the manifest as compact JSON (as dbt writes it; ending with a newline) to `out`, streamed:
/// the text of 10,000 models (tens of MB) is never built whole.
pub fn write_manifest(compiled: &CompiledProject, out: &mut dyn Write) -> std::io::Result<()> {
    let target_path = &compiled.project.settings.target_path;
    let root = compiled.project.root.as_path();
    let project = &compiled.project;
    let entry = |node: &Node| -> serde_json::Result<Vec<u8>> {
        let lineage = compiled.lineage.nodes.get(&node.unique_id);
        serde_json::to_vec(&manifest_node(node, lineage, root, target_path, &project.target.schema))
    };
    let (unit_tests, nodes): (Vec<&Node>, Vec<&Node>) =
        compiled.nodes.values().map(Box::as_ref).partition(|node| node.unit_test.is_some());
    let (sources, nodes): (Vec<&Node>, Vec<&Node>) = nodes.into_iter().partition(|node| node.source_name.is_some());
    // Unit tests as dbt lists them, next to (not among) the nodes.
    let unit_tests: BTreeMap<&str, ManifestUnitTest<'_>> = unit_tests
        .into_iter()
        .filter_map(|node| {
            let model = &compiled.nodes[&node.depends_on[0]].name;
            let def = project.unit_tests.iter().find(|d| d.model == *model && d.name == node.name)?;
            Some((node.unique_id.as_str(), manifest_unit_test(node, def, project.name())))
        })
        .collect();
    let metadata = Metadata {
        manifest_version: MANIFEST_VERSION,
        etlm_version: env!("CARGO_PKG_VERSION"),
        project_name: project.name(),
        target_name: &project.target.name,
        target_schema: &project.target.schema,
        adapter_type: project.target.engine.as_str(),
        warehouse_path: crate::engine::warehouse_path(&project.target)
            .and_then(|dir| std::path::absolute(dir).ok())
            .map(|p| p.display().to_string()),
    };
    let macros: BTreeMap<String, ManifestMacro> = project
        .macros
        .iter()
        .map(|m| (m.path.display().to_string(), ManifestMacro { original_file_path: m.path.display().to_string() }))
        .collect();
    let macro_checksums: BTreeMap<&str, String> =
        compiled.macro_texts.iter().map(|(name, text)| (name.as_str(), checksum(text))).collect();
    let docs: BTreeMap<&str, &str> = project.docs.iter().map(|(k, v)| (k.as_str(), v.text.as_str())).collect();

    // One compact JSON object, keys in this order, as serde would write a struct. The
    // parent and child maps are made while the nodes are written.
    let mut maps = None;
    rayon::in_place_scope(|scope| {
        scope.spawn(|_| maps = Some((compiled.dag.parent_map(), compiled.dag.child_map())));
        out.write_all(b"{")?;
        field(out, "metadata", &metadata)?;
        out.write_all(b",")?;
        entry_map(out, "nodes", &nodes, &entry)?;
        out.write_all(b",")?;
        entry_map(out, "sources", &sources, &entry)
    })?;
    let (parent_map, child_map) = maps.expect("the scope waited for the maps");
    out.write_all(b",")?;
    field(out, "unit_tests", &unit_tests)?;
    out.write_all(b",")?;
    field(out, "macros", &macros)?;
    out.write_all(b",")?;
    // SHA-256 of each macro's definition by name, for change detection.
    field(out, "macro_checksums", &macro_checksums)?;
    out.write_all(b",")?;
    // The value of every project var (with `--vars` applied); nodes list the ones they read.
    field(out, "vars", &project.vars)?;
    out.write_all(b",")?;
    field(out, "docs", &docs)?;
    out.write_all(b",")?;
    field(out, "parent_map", &parent_map)?;
    out.write_all(b",")?;
    field(out, "child_map", &child_map)?;
    out.write_all(b"}\n")
}

/// `"name":<value>`.
fn field(out: &mut dyn Write, name: &str, value: &impl Serialize) -> std::io::Result<()> {
    write!(out, "\"{name}\":")?;
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)
}

/// `"name":{"<unique id>":<entry>,...}`. Checksums and JSON text dominate the manifest's
/// cost: entries are written on every core, a slice at a time (so the text held at once
/// stays small), and filed in order.
fn entry_map(
    out: &mut dyn Write,
    name: &str,
    nodes: &[&Node],
    entry: &(dyn Fn(&Node) -> serde_json::Result<Vec<u8>> + Sync),
) -> std::io::Result<()> {
    write!(out, "\"{name}\":{{")?;
    for (c, chunk) in nodes.chunks(1024).enumerate() {
        let texts: Vec<Vec<u8>> = chunk.par_iter().map(|node| entry(node)).collect::<serde_json::Result<_>>()?;
        for (i, (node, json)) in chunk.iter().zip(texts).enumerate() {
            if c > 0 || i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &node.unique_id)?;
            out.write_all(b":")?;
            out.write_all(&json)?;
        }
    }
    out.write_all(b"}")
}
