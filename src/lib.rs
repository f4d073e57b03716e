//! etlm: a single-binary, dbt-like ELT tool.
//!
//! Data flows one way: `project` (files, YAML) -> `template` (Jinja, parse pass) ->
//! `graph` (DAG, selection) -> `template` (compile pass) -> `sql` (parse, checks) ->
//! `lineage` (schemas, column checks, column lineage) -> `state` (manifest) and `docs`
//! (the docs site); `compile` runs that pipeline, `cli` drives it and `report` prints.
//! Compiling never needs a database.
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
pub mod lineage;
pub mod node;
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
