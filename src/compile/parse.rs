//! The parse pass: every model's and singular test's Jinja compiled and rendered in
//! parse mode, on every core, recording its `ref`, `source` and `config` calls and the
//! vars and macros it reaches.
//!
//! Takes the loaded project; hands on each file's text, the name it renders under and
//! what it recorded, in the project's order. A file that fails to render is a problem,
//! and the compile stops after this stage.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::Value as Json;

use super::Compiler;
use crate::diagnostics::{Collector, Diagnostic, SourceFile};
use crate::relation::Relation;
use crate::template::{Mode, Recorded, RenderInput};
use crate::window;

/// The parsed files of one kind (models or singular tests), index for index in the
/// project's order.
pub(super) struct Files {
    pub texts: Vec<Arc<SourceFile>>,
    /// The template name each renders under.
    pub names: Vec<String>,
    /// What the parse pass recorded of each (nothing for a file that failed).
    pub recorded: Vec<Recorded>,
}

/// What the parse pass hands on.
pub(super) struct Parsed {
    pub models: Files,
    pub tests: Files,
}

/// Renders every model and singular test in parse mode.
pub(super) fn parse_files(c: &Compiler, diags: &mut Collector) -> Parsed {
    let Compiler { project, renderer, sources, .. } = *c;
    let texts: Vec<Arc<SourceFile>> = project.models.iter().map(|m| sources.file(m.file)).collect();
    // Named `.sql` whatever the file (a snapshot defined in YAML): the name decides
    // Jinja's auto-escaping, which SQL must not get.
    let names: Vec<String> =
        project.models.iter().map(|m| m.path.with_extension("sql").display().to_string()).collect();
    let test_texts: Vec<Arc<SourceFile>> = project.singular_tests.iter().map(|t| sources.file(t.file)).collect();
    let test_names: Vec<String> = project.singular_tests.iter().map(|t| t.path.display().to_string()).collect();
    let parse_input = |name: &str, package: &str| RenderInput {
        mode: Mode::Parse,
        this: Some(Relation::new(project.target.schema.clone(), name)),
        // Where the node is built is known only after this pass: the target's schema
        // stands in, as `this` does.
        model: BTreeMap::from([
            ("name", Json::String(name.to_string())),
            ("package_name", Json::String(package.to_string())),
            ("database", project.target.database.clone().map_or(Json::Null, Json::String)),
            ("schema", Json::String(project.target.schema.clone())),
            ("alias", Json::String(name.to_string())),
        ]),
        config: BTreeMap::new(),
        // Which models are windowed is known only after this pass.
        extra: window::variables(),
        overrides: None,
    };
    let parsed: Vec<Result<_, Diagnostic>> = project
        .models
        .par_iter()
        .enumerate()
        .map(|(i, m)| {
            let compiled = renderer.compile(m.file, &names[i], &texts[i].text);
            Ok(renderer.render(&compiled, &parse_input(&m.name, &m.package), sources)?.recorded)
        })
        .collect();
    let parsed_tests: Vec<Result<_, Diagnostic>> = project
        .singular_tests
        .par_iter()
        .enumerate()
        .map(|(i, t)| {
            let compiled = renderer.compile(t.file, &test_names[i], &test_texts[i].text);
            Ok(renderer.render(&compiled, &parse_input(&t.name, &t.package), sources)?.recorded)
        })
        .collect();
    let mut recorded_of = |results: Vec<Result<Recorded, Diagnostic>>| -> Vec<_> {
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|d| {
                    diags.push(d);
                    Default::default()
                })
            })
            .collect()
    };
    let recorded = recorded_of(parsed);
    let test_recorded = recorded_of(parsed_tests);
    Parsed {
        models: Files { texts, names, recorded },
        tests: Files { texts: test_texts, names: test_names, recorded: test_recorded },
    }
}
