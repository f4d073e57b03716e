//! Seeds are read and typed before anything is written, so a malformed CSV stops the
//! command with a diagnostic at its line (exit code 2) and nothing half-loaded.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use rayon::prelude::*;

use crate::compile::CompiledProject;
use crate::diagnostics::{Code, Diagnostic, SourceMap, Span};
use crate::graph::ResourceType;
use crate::seed_csv::{SeedError, read_seed_csv};

/// Reads every seed among `ids`, in parallel. Returns batches by unique id.
pub fn read_seeds(
    compiled: &CompiledProject,
    ids: &[String],
    sources: &SourceMap,
) -> Result<BTreeMap<String, RecordBatch>, Vec<Diagnostic>> {
    let results: Vec<(String, Result<RecordBatch, SeedError>)> = ids
        .par_iter()
        .filter(|id| compiled.nodes[*id].resource_type == ResourceType::Seed)
        .map(|id| {
            let node = &compiled.nodes[id];
            let path = compiled.project.root.join(&node.path);
            (id.clone(), read_seed_csv(&path, &node.config.column_types, node.config.quote_columns))
        })
        .collect();
    let mut batches = BTreeMap::new();
    let mut errors = Vec::new();
    for (id, result) in results {
        match result {
            Ok(batch) => {
                batches.insert(id, batch);
            }
            Err(e) => errors.push(seed_diagnostic(compiled, &id, &e, sources)),
        }
    }
    if errors.is_empty() { Ok(batches) } else { Err(errors) }
}

fn seed_diagnostic(compiled: &CompiledProject, id: &str, e: &SeedError, sources: &SourceMap) -> Diagnostic {
    let node = &compiled.nodes[id];
    let line = match e {
        SeedError::Malformed { line, .. } | SeedError::InvalidValue { line, .. } => Some(*line as usize),
        _ => None,
    };
    let text = std::fs::read_to_string(compiled.project.root.join(&node.path)).unwrap_or_default();
    let file = sources.add(node.path.clone(), text);
    let span = match line {
        Some(l) => {
            let f = sources.file(file);
            let start = f.offset(l, 1);
            Span::new(file, start..start + f.line_text(l).len())
        }
        None => Span::file_start(file),
    };
    let code = if line.is_some() { Code::SeedMalformed } else { Code::SeedInvalid };
    Diagnostic::error(code, format!("seed `{}` cannot be loaded: {e}", node.name)).with_label(span, "here")
}
