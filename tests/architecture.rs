//! The module rules of docs/contributing.md ("Architecture"), checked on the source so
//! they cannot come back: layers import only downward, no import cycle between
//! top-level modules, engines and the report never reach up, and the engine kind or
//! the SQL dialect is decided only in `engine/`, `sql/` and the profile parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, from the base up. A module imports only its own layer or
/// those below it (and no cycle forms within a layer).
const LAYERS: &[(&str, &[&str])] = &[
    (
        "base",
        &["diagnostics", "sql", "graph", "relation", "window", "seed_csv", "history", "disk", "hex", "http", "testing"],
    ),
    ("load", &["project"]),
    ("render", &["template", "node"]),
    ("understand", &["compile", "lineage", "quality"]),
    ("engines", &["engine"]),
    ("use cases", &["run", "openlineage", "state", "docs", "deps"]),
    ("output", &["report"]),
    ("shell", &["cli"]),
];

/// Where the engine kind may be matched and dialects compared.
const ENGINE_CHOICE_ALLOWED: &[&str] = &["src/engine/", "src/sql/", "src/project/profiles.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, with its path relative to the crate root and its text
/// without comments.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = walk(&src())
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("source files are UTF-8");
            let rel = p.strip_prefix(root).expect("under the crate").display().to_string();
            (rel, strip_comments(&text))
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The text with `//` comments (doc comments included) removed, line by line.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal (a URL) is rare in imports; keep what
            // precedes a comment, which is what the checks read.
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to (`src/engine/local/mod.rs` -> `engine`).
fn module_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules each module imports through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in sources() {
        let Some(module) = module_of(&path) else { continue };
        let uses = graph.entry(module.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String =
                text[i + "crate::".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if name != module && !name.is_empty() {
                uses.insert(name);
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
        .unwrap_or_else(|| panic!("`src/{module}` is in no layer: add it to LAYERS and docs/contributing.md"))
}

#[test]
fn every_module_imports_only_its_layer_or_below() {
    let mut wrong = Vec::new();
    for (module, uses) in imports() {
        for used in uses {
            if layer_of(&used) > layer_of(&module) {
                wrong.push(format!(
                    "{module} ({}) imports {used} ({})",
                    LAYERS[layer_of(&module)].0,
                    LAYERS[layer_of(&used)].0
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "imports that reach up a layer:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = imports();
    // Depth-first search; a back edge is a cycle, reported with its path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn engines_and_the_report_never_import_what_is_above_them() {
    let graph = imports();
    for (module, forbidden) in [("engine", &["run", "report", "cli"][..]), ("report", &["cli"][..])] {
        let uses = &graph[module];
        for f in forbidden {
            assert!(!uses.contains(*f), "src/{module} imports {f}");
        }
    }
}

#[test]
fn the_engine_kind_and_the_dialect_are_decided_only_in_engine_sql_and_the_profile_parser() {
    let comparisons = ["== SqlDialect::", "!= SqlDialect::", "matches!(dialect, SqlDialect::"];
    let mut found = Vec::new();
    for (path, text) in sources() {
        if ENGINE_CHOICE_ALLOWED.iter().any(|allowed| path.starts_with(allowed)) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let arm = line.trim_start().starts_with("SqlDialect::") && line.contains("=>");
            if line.contains("EngineKind::") || arm || comparisons.iter().any(|c| line.contains(c)) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "engine choices outside engine/, sql/ and project/profiles.rs (use a capability method):\n{}",
        found.join("\n")
    );
}

#[test]
fn nothing_outside_engine_reaches_into_one_engine() {
    let mut found = Vec::new();
    for (path, text) in sources() {
        if path.starts_with("src/engine/") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if ["engine::local", "engine::postgres", "engine::datafusion", "engine::delta"]
                .iter()
                .any(|e| line.contains(e))
            {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "reach into one engine; use the `engine` seam instead:\n{}", found.join("\n"));
}

/// The checks above read the real tree: a module they do not see would pass unchecked.
#[test]
fn the_checks_see_every_top_level_module() {
    let graph = imports();
    for module in ["cli", "engine", "report", "run", "compile", "lineage", "history"] {
        assert!(graph.contains_key(module), "no files found for src/{module}");
    }
    assert!(graph["cli"].contains("run"), "cli uses run: the import scan is broken");
}
