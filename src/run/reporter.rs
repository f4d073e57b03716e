//! What a run tells as it goes. The runner owns this trait and calls it; `report/`
//! implements it for the terminal and for JSON lines, and tests implement it to record.
//! The runner never prints.

use crate::diagnostics::Diagnostic;
use crate::history::{NodeResult, RunSummary};

/// Receives a run's progress, in order: `warnings`, `note`s, `start`, then `began` and a `result`
/// per node and test (more than `start` said when a test is added while running), then
/// `finish`. A run that builds what compile-time queries read first starts twice.
pub trait Reporter: Send + Sync {
    /// Problems found while compiling that do not stop the run.
    fn warnings(&self, diagnostics: &[Diagnostic]);

    /// A line about what the run does next.
    fn note(&self, text: &str);

    /// The run is about to report `total` results; `verb` is the command (`build`).
    fn start(&self, total: usize, verb: &str);

    /// `n` more results will be reported than `start` said.
    fn add_total(&self, n: usize);

    /// A node's job begins (audits run inside their model's job and only end).
    fn began(&self, _unique_id: &str) {}

    /// One finished node or test.
    fn result(&self, result: &NodeResult);

    /// The run ended (its history is recorded).
    fn finish(&self, summary: &RunSummary);
}
