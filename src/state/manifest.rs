//! `target/manifest.json`: every node with its unique id, resource type, file, checksums,
//! dependencies, effective config, columns, tests, plus the parent and child maps.
//! Everything is a `BTreeMap` or a sorted list, and nothing time-dependent is written,
//! so two compiles of the same project are byte-identical.

use std::collections::BTreeMap;
use std::io::Write;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::compile::{ColumnDoc, CompiledProject, Node};

/// The manifest's schema version; bumped on incompatible changes.
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Serialize)]
struct Manifest<'a> {
    metadata: Metadata<'a>,
    nodes: BTreeMap<&'a str, ManifestNode<'a>>,
    sources: BTreeMap<&'a str, ManifestNode<'a>>,
    macros: BTreeMap<String, ManifestMacro>,
    docs: BTreeMap<&'a str, &'a str>,
    parent_map: BTreeMap<String, Vec<String>>,
    child_map: BTreeMap<String, Vec<String>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    manifest_version: u32,
    etlm_version: &'static str,
    project_name: &'a str,
    target_name: &'a str,
    adapter_type: &'a str,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    test_metadata: Option<TestMetadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_name: Option<&'a str>,
}

#[derive(Serialize)]
struct ManifestMacro {
    original_file_path: String,
}

/// SHA-256 of a text, hex.
pub fn checksum(text: &str) -> String {
    crate::hex::hex(&Sha256::digest(text.as_bytes()))
}

fn manifest_node<'a>(node: &'a Node, target_path: &str) -> ManifestNode<'a> {
    let sha = |t: &str| Checksum { name: "sha256", checksum: checksum(t) };
    ManifestNode {
        unique_id: &node.unique_id,
        resource_type: node.resource_type.as_str(),
        name: &node.name,
        fqn: &node.fqn,
        original_file_path: node.path.display().to_string(),
        database: node.relation.as_ref().and_then(|r| r.database.as_deref()),
        schema: node.relation.as_ref().map(|r| r.schema.as_str()),
        relation_name: node.relation.as_ref().map(ToString::to_string),
        checksum: node.raw_sql.as_deref().map(sha),
        compiled_checksum: node.compiled_sql.as_deref().map(sha),
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
        test_metadata: node.generic_test.as_ref().map(|t| TestMetadata {
            name: &t.def.test_name,
            column_name: t.def.column.as_deref(),
            attached_node: &t.attached_to,
            kwargs: t.def.args.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        }),
        source_name: node.source_name.as_deref(),
    }
}

/// Writes the manifest as pretty JSON text (ending with a newline) to `out`, streamed:
/// the text of 10,000 models (tens of MB) is never built whole.
pub fn write_manifest(compiled: &CompiledProject, out: &mut dyn Write) -> std::io::Result<()> {
    let target_path = &compiled.project.settings.target_path;
    let mut nodes = BTreeMap::new();
    let mut sources = BTreeMap::new();
    // Checksums dominate; compute them on every core, then file the entries in order.
    let entries: Vec<(&Node, ManifestNode<'_>)> =
        compiled.nodes.par_iter().map(|(_, node)| (node, manifest_node(node, target_path))).collect();
    for (node, entry) in entries {
        if node.source_name.is_some() {
            sources.insert(node.unique_id.as_str(), entry);
        } else {
            nodes.insert(node.unique_id.as_str(), entry);
        }
    }
    let project = &compiled.project;
    let manifest = Manifest {
        metadata: Metadata {
            manifest_version: MANIFEST_VERSION,
            etlm_version: env!("CARGO_PKG_VERSION"),
            project_name: project.name(),
            target_name: &project.target.name,
            adapter_type: project.target.engine.as_str(),
        },
        nodes,
        sources,
        macros: project
            .macros
            .iter()
            .map(|m| (m.path.display().to_string(), ManifestMacro { original_file_path: m.path.display().to_string() }))
            .collect(),
        docs: project.docs.iter().map(|(k, v)| (k.as_str(), v.text.as_str())).collect(),
        parent_map: compiled.dag.parent_map(),
        child_map: compiled.dag.child_map(),
    };
    serde_json::to_writer_pretty(&mut *out, &manifest)?;
    out.write_all(b"\n")
}
