//! The nodes the project's files define. A model's or snapshot's config is its effective
//! one (project folders < YAML properties < in-file `config()`), worked out on every
//! core; seeds and sources bring theirs from loading; each node gets its rendered
//! description and column docs. Singular tests are added by a later call, once the
//! files' dependencies are resolved (a ref never names a test).
//!
//! Takes the parse pass's recordings; hands on the nodes (no relation but a source's, no
//! compiled SQL, no dependencies yet) and which node each parsed file defines.

use rayon::prelude::*;

use super::Compiler;
use super::parse::{Files, Parsed};
use super::spans;
use crate::diagnostics::{Collector, Diagnostic, Span};
use crate::graph::ResourceType;
use crate::node::{ColumnDoc, Node, Nodes};
use crate::project::config::{self, ConfigEntry, ConfigFor, ConfigLayer};
use crate::project::snapshot::SnapshotConfig;
use crate::project::{ColumnProps, Description, NodeConfig};
use crate::relation::Relation;
use crate::template::Renderer;

/// The node each parsed file defines, index for index with [`Parsed`].
pub(super) struct FileIds {
    /// `None` for a model that is disabled or whose config is invalid.
    pub models: Vec<Option<String>>,
    /// Every singular test's id (a disabled one has no node).
    pub tests: Vec<String>,
}

/// The nodes of the models, snapshots, seeds and sources, with the problems of their
/// configs and docs.
pub(super) fn project_nodes(c: &Compiler, parsed: &Parsed, diags: &mut Collector) -> (Nodes, FileIds) {
    let Compiler { project, renderer, .. } = *c;
    let Files { texts, recorded, .. } = &parsed.models;
    let mut nodes = Nodes::new();
    let mut model_ids: Vec<Option<String>> = Vec::new();
    // Each model's config, and so its node, is independent of the others': built on every
    // core. With a model's node come its problems: unknown config keys, an invalid config,
    // or (for an enabled model) rendering its description and columns.
    let built: Vec<(Vec<Diagnostic>, Option<Box<Node>>)> = project
        .models
        .par_iter()
        .enumerate()
        .map(|(i, m)| {
            let mut problems = Vec::new();
            let mut in_file = ConfigLayer::new();
            for (key, value) in &recorded[i].config {
                let name = config::normalize_key(key);
                let range = spans::find_config_key(&texts[i].text, key).unwrap_or(0..0);
                let span = Span::new(m.file, range);
                if !config::is_known_key(&name) {
                    problems.push(config::unknown_key(key, span));
                    continue;
                }
                in_file.insert(name, ConfigEntry { value: value.clone(), span });
            }
            let yaml_layer = m.props.as_ref().map(|p| p.config.clone()).unwrap_or_default();
            let layer = config::merge(&[&m.folder_config, &yaml_layer, &in_file]);
            let snapshot = m.resource_type == ResourceType::Snapshot;
            let config =
                match NodeConfig::from_layer(&layer, if snapshot { ConfigFor::Snapshot } else { ConfigFor::Model }) {
                    Ok(config) if config.enabled => config,
                    Ok(_) => return (problems, None),
                    Err(e) => {
                        problems.extend(e);
                        return (problems, None);
                    }
                };
            let config = match snapshot {
                false => config,
                true => match SnapshotConfig::from_layer(&layer, m.span) {
                    Ok(snapshot) => NodeConfig { snapshot: Some(snapshot), ..config },
                    Err(e) => {
                        problems.extend(e);
                        return (problems, None);
                    }
                },
            };
            let (description, columns, described) =
                describe(m.props.as_ref().map(|p| (&p.description, &p.columns)), renderer);
            problems.extend(described);
            let unique_id = format!("{}.{}.{}", m.resource_type.as_str(), m.package, m.name);
            let node = Node {
                file: Some(m.file),
                raw_sql: Some(texts[i].text.clone()),
                description,
                columns,
                vars_used: recorded[i].vars.clone(),
                macros_used: recorded[i].macros.clone(),
                ..Node::new(unique_id, m.resource_type, m.name.clone(), m.fqn.clone(), m.path.clone(), config)
            };
            (problems, Some(Box::new(node)))
        })
        .collect();
    for (problems, node) in built {
        diags.extend(problems);
        model_ids.push(node.as_ref().map(|n| n.unique_id.clone()));
        if let Some(node) = node {
            nodes.insert(node.unique_id.clone(), node);
        }
    }
    for seed in &project.seeds {
        let unique_id = format!("seed.{}.{}", seed.package, seed.name);
        let (description, columns, problems) =
            describe(seed.props.as_ref().map(|p| (&p.description, &p.columns)), renderer);
        diags.extend(problems);
        nodes.insert(
            unique_id.clone(),
            Box::new(Node {
                description,
                columns,
                ..Node::new(
                    unique_id,
                    ResourceType::Seed,
                    seed.name.clone(),
                    seed.fqn.clone(),
                    seed.path.clone(),
                    seed.config.clone(),
                )
            }),
        );
    }
    for src in &project.sources {
        let unique_id = format!("source.{}.{}.{}", src.package, src.source_name, src.table.name);
        let (description, columns, problems) = describe(Some((&src.table.description, &src.table.columns)), renderer);
        diags.extend(problems);
        nodes.insert(
            unique_id.clone(),
            Box::new(Node {
                relation: Some(Relation {
                    database: src.database.clone(),
                    schema: src.schema.clone(),
                    identifier: src.identifier().to_string(),
                }),
                description,
                columns,
                source_name: Some(src.source_name.clone()),
                ..Node::new(
                    unique_id,
                    ResourceType::Source,
                    src.table.name.clone(),
                    vec![src.package.clone(), src.source_name.clone(), src.table.name.clone()],
                    src.path.clone(),
                    src.config.clone(),
                )
            }),
        );
    }
    let test_ids = project.singular_tests.iter().map(|t| format!("test.{}.{}", t.package, t.name)).collect();
    (nodes, FileIds { models: model_ids, tests: test_ids })
}

/// Adds the enabled singular tests (`ids`, index for index with `files`) as nodes, with
/// the problems of their configs.
pub(super) fn add_singular_tests(
    c: &Compiler,
    files: &Files,
    ids: &[String],
    nodes: &mut Nodes,
    diags: &mut Collector,
) {
    for (i, t) in c.project.singular_tests.iter().enumerate() {
        let layer = t.folder_config.clone();
        let in_file: ConfigLayer = files.recorded[i]
            .config
            .iter()
            .map(|(k, v)| (config::normalize_key(k), ConfigEntry { value: v.clone(), span: Span::file_start(t.file) }))
            .collect();
        match NodeConfig::from_layer(&config::merge(&[&layer, &in_file]), ConfigFor::Test) {
            // `{{ config(enabled=false) }}` in the file, or its folder's config.
            Ok(cfg) if !cfg.enabled => {}
            Ok(cfg) => {
                let id = ids[i].clone();
                nodes.insert(
                    id.clone(),
                    Box::new(Node {
                        file: Some(t.file),
                        raw_sql: Some(files.texts[i].text.clone()),
                        vars_used: files.recorded[i].vars.clone(),
                        macros_used: files.recorded[i].macros.clone(),
                        ..Node::new(id, ResourceType::Test, t.name.clone(), t.fqn.clone(), t.path.clone(), cfg)
                    }),
                );
            }
            Err(e) => diags.extend(e),
        }
    }
}

/// A node's rendered description and column docs, and the problems rendering them.
fn describe(
    props: Option<(&Option<Description>, &Vec<ColumnProps>)>,
    renderer: &Renderer,
) -> (String, Vec<ColumnDoc>, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    let Some((desc, cols)) = props else { return (String::new(), Vec::new(), problems) };
    let mut text = |d: &Option<Description>| match d {
        None => String::new(),
        Some(d) => renderer.render_description(&d.text, d.span).unwrap_or_else(|e| {
            problems.push(e);
            String::new()
        }),
    };
    let description = text(desc);
    let columns = cols
        .iter()
        .map(|c| ColumnDoc { name: c.name.clone(), description: text(&c.description), data_type: c.data_type.clone() })
        .collect();
    (description, columns, problems)
}
