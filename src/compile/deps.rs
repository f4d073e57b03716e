//! What each model and singular test depends on: the `ref` and `source` calls its file
//! recorded, resolved on every core (a call to what does not exist is an `unknown-ref` or
//! `unknown-source` problem); and for a source declared over a seed's table, the seed.
//!
//! Takes the nodes and the parse pass's recordings; hands on each node's dependencies,
//! with where each is named (for cycle reports), and the index of sources by name.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::nodes::FileIds;
use super::parse::Parsed;
use super::refs::RefIndex;
use super::{Compiler, problems, spans};
use crate::diagnostics::{Collector, Diagnostic, FileId, Span};
use crate::graph::ResourceType;
use crate::node::Nodes;
use crate::project::Project;
use crate::template::Recorded;

/// Source nodes by `(source name, table name)`.
pub(super) type SourceIndex = BTreeMap<(String, String), String>;

/// Each node's dependencies by unique id, with the span that names each.
pub(super) type Dependencies = BTreeMap<String, Vec<(String, Span)>>;

/// The sources by name; the root project's source of a name wins over a package's.
pub(super) fn source_index(project: &Project, nodes: &Nodes) -> SourceIndex {
    let mut by_source = SourceIndex::new();
    for n in nodes.values() {
        if let Some(source) = &n.source_name {
            let key = (source.clone(), n.name.clone());
            if n.package() == project.name() || !by_source.contains_key(&key) {
                by_source.insert(key, n.unique_id.clone());
            }
        }
    }
    by_source
}

/// The dependencies of every file's node, and of sources over seeds.
pub(super) fn dependencies(
    c: &Compiler,
    parsed: &Parsed,
    ids: &FileIds,
    nodes: &Nodes,
    refs: &RefIndex,
    by_source: &SourceIndex,
    diags: &mut Collector,
) -> Dependencies {
    let project = c.project;
    let by_name = refs.by_name();
    let mut deps = Dependencies::new();
    type FileCalls<'a> = (Option<&'a String>, &'a str, FileId, &'a str, &'a Recorded);
    let (models, tests) = (&parsed.models, &parsed.tests);
    let model_files: Vec<FileCalls> = project
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (ids.models[i].as_ref(), m.package.as_str(), m.file, &*models.texts[i].text, &models.recorded[i]))
        .collect();
    let test_files: Vec<FileCalls> = project
        .singular_tests
        .iter()
        .enumerate()
        .map(|(i, t)| (Some(&ids.tests[i]), t.package.as_str(), t.file, &*tests.texts[i].text, &tests.recorded[i]))
        .collect();
    // Each file's dependencies (and the calls to what does not exist), on every core.
    type FileDeps = (String, Vec<(String, Span)>, Vec<Diagnostic>);
    let found: Vec<FileDeps> = model_files
        .par_iter()
        .chain(test_files.par_iter())
        .filter_map(|(id, package, file, text, rec)| {
            let id = (*id)?;
            let (mut list, mut problems) = (Vec::new(), Vec::new());
            for call in &rec.refs {
                let name = &call.name;
                let span = Span::new(*file, spans::find_call(text, "ref", None, name).unwrap_or(0..0));
                match refs.resolve(package, call) {
                    Some(dep) => list.push((dep.to_string(), span)),
                    None => problems.push(problems::unknown_ref(id, name, span, by_name, nodes)),
                }
            }
            for (s, t) in &rec.sources {
                let span = Span::new(*file, spans::find_call(text, "source", Some(s), t).unwrap_or(0..0));
                match by_source.get(&(s.clone(), t.clone())) {
                    Some(dep) => list.push((dep.to_string(), span)),
                    None => problems.push(problems::unknown_source(id, s, t, span, by_source)),
                }
            }
            Some((id.to_string(), list, problems))
        })
        .collect();
    for (id, list, problems) in found {
        diags.extend(problems);
        deps.insert(id, list);
    }

    // A source declared over a seed's table (a project that seeds its own raw data): what
    // reads the source waits for the seed.
    let seed_at: BTreeMap<(String, String), &String> = nodes
        .values()
        .filter(|n| n.resource_type == ResourceType::Seed)
        .filter_map(|n| {
            n.relation.as_ref().map(|r| ((r.schema.to_lowercase(), r.identifier.to_lowercase()), &n.unique_id))
        })
        .collect();
    for src in &project.sources {
        let key = (src.schema.to_lowercase(), src.identifier().to_lowercase());
        if let Some(seed) = seed_at.get(&key) {
            let id = format!("source.{}.{}.{}", src.package, src.source_name, src.table.name);
            deps.insert(id, vec![((*seed).clone(), src.table.span)]);
        }
    }
    deps
}
