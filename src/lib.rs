//! etlm: a single-binary, dbt-like ELT tool.
//!
//! Modules sit in layers, each importing only its own or those below (docs/contributing.md,
//! "Architecture"; `tests/architecture.rs` keeps it so): the base (`diagnostics`, `sql`,
//! `graph`, `relation`, `window`, `seed_csv`, `history`, `disk`, `hex`, `http`); loading
//! (`project`); rendering (`template`, `node`); understanding without a database
//! (`compile`, `lineage`, `quality`); the engines (`engine`); the use cases (`run`,
//! `openlineage`, `state`, `docs`, `deps`); the output (`report`); and the shell (`cli`).
#![deny(clippy::print_stdout)]

pub mod cli;
pub mod compile;
pub mod deps;
pub mod diagnostics;
pub mod disk;
pub mod docs;
pub mod engine;
pub mod graph;
pub mod hex;
pub mod history;
pub mod http;
pub mod lineage;
pub mod node;
pub mod openlineage;
pub mod project;
pub mod quality;
pub mod relation;
pub mod report;
pub mod run;
pub mod seed_csv;
pub mod sql;
pub mod state;
pub mod template;
#[cfg(test)]
mod testing;
pub mod window;
