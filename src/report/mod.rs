//! What users see: diagnostics, result lines and summaries, as text or JSON; the run's
//! progress (`progress.rs`, the terminal and JSON `Reporter`); `etlm diff` reports
//! (`diff.rs`).
#![allow(clippy::print_stdout)]

pub mod diff;
pub mod progress;

use std::io::Write;

use crate::diagnostics::{Diagnostic, SourceMap, render_human, render_json};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
    /// Markdown, for a pull request comment (`etlm diff` only).
    Markdown,
}

/// Where command output goes, in the chosen format.
pub struct Output {
    format: Format,
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output { format }
    }

    /// Result lines (already formatted for the chosen format) on stdout.
    pub fn lines(&self, lines: &[String]) {
        let mut stdout = std::io::stdout().lock();
        for line in lines {
            let _ = writeln!(stdout, "{line}");
        }
    }

    /// A closing summary: text for people, one JSON object for machines.
    pub fn summary(&self, text: &str, json: serde_json::Value) {
        match self.format {
            Format::Human | Format::Markdown => println!("{text}"),
            Format::Json => println!("{json}"),
        }
    }
}

/// Prints diagnostics on stderr (rustc's layout, or JSON lines).
pub fn print_diagnostics(out: &Output, diags: &[Diagnostic], sources: &SourceMap) {
    let mut stderr = std::io::stderr().lock();
    for d in diags {
        let _ = match out.format {
            Format::Human | Format::Markdown => writeln!(stderr, "{}", render_human(d, sources)),
            Format::Json => writeln!(stderr, "{}", render_json(d, sources)),
        };
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    if errors > 0 && out.format != Format::Json {
        let _ = writeln!(stderr, "error: stopped after {errors} error{}", if errors == 1 { "" } else { "s" });
    }
}
