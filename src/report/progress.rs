//! Per-node result lines while a run goes (`  3 of 12  OK  table main.customers  1,234
//! rows  0.21 s`), a live progress bar on a terminal, JSON lines for machines, and the
//! closing summary.
#![allow(clippy::print_stdout)]

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use super::{Format, Output, print_diagnostics};
use crate::diagnostics::{Diagnostic, SourceMap};
use crate::history::{NodeResult, ResultLine, RunSummary, Status};
use crate::run::reporter::Reporter;
use indicatif::{ProgressBar, ProgressStyle};

/// The word a result line shows for a status.
fn label(status: Status) -> &'static str {
    match status {
        Status::Success => "OK",
        Status::Error => "ERROR",
        Status::Skipped => "SKIP",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::Pass => "PASS",
        Status::Reused => "REUSE",
    }
}

/// Prints results as they come.
pub struct Progress {
    format: Format,
    total: std::sync::atomic::AtomicUsize,
    done: Mutex<usize>,
    bar: Option<ProgressBar>,
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Progress {
    /// A reporter for `total` nodes; the bar shows only on a terminal in human format.
    pub fn new(format: Format, total: usize, verb: &str) -> Progress {
        let bar = (format == Format::Human && std::io::stderr().is_terminal() && total > 0).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_message(verb.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { format, total: total.into(), done: Mutex::new(0), bar }
    }

    /// One more line than planned will be reported.
    pub fn add_total(&self, n: usize) {
        self.total.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
        if let Some(bar) = &self.bar {
            bar.inc_length(n as u64);
        }
    }

    /// Reports one finished node.
    pub fn report(&self, line: &ResultLine) {
        let mut done = self.done.lock().expect("progress lock poisoned");
        *done += 1;
        match self.format {
            Format::Json => {
                let json = serde_json::to_string(line).expect("result lines serialize");
                println!("{json}");
            }
            Format::Human | Format::Markdown => {
                let text = self.human(*done, line);
                match &self.bar {
                    Some(bar) => {
                        bar.println(text);
                        bar.inc(1);
                    }
                    None => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{text}");
                    }
                }
            }
        }
    }

    fn human(&self, n: usize, line: &ResultLine) -> String {
        let total = self.total.load(std::sync::atomic::Ordering::SeqCst);
        let width = total.to_string().len();
        let mut text = format!("{n:>width$} of {total}  {:<5}  {} {}", label(line.status), line.kind, line.name);
        if let Some(rows) = line.rows {
            text.push_str(&format!("  {} rows", thousands(rows)));
        }
        if line.status != Status::Skipped {
            text.push_str(&format!("  {:.2} s", line.seconds));
        }
        if let Some(m) = &line.message {
            for l in m.lines() {
                text.push_str(&format!("\n{:width$}      {l}", ""));
            }
        }
        format!("  {text}")
    }

    /// Clears the bar and prints the summary.
    pub fn finish(&self, summary: &str, json: serde_json::Value) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        match self.format {
            Format::Human | Format::Markdown => println!("{summary}"),
            Format::Json => println!("{json}"),
        }
    }
}

/// A run's progress on the terminal (or as JSON lines): result lines with a bar, and the
/// closing summary.
pub struct RunReport<'s> {
    format: Format,
    sources: &'s SourceMap,
    /// The progress of the pass running now (a run may build in two passes).
    progress: Mutex<Option<Progress>>,
}

impl<'s> RunReport<'s> {
    /// Reports in `format`; diagnostics point into `sources`.
    pub fn new(format: Format, sources: &'s SourceMap) -> RunReport<'s> {
        RunReport { format, sources, progress: Mutex::new(None) }
    }

    fn with_progress(&self, f: impl FnOnce(&Progress)) {
        if let Some(progress) = self.progress.lock().expect("progress lock poisoned").as_ref() {
            f(progress);
        }
    }
}

impl Reporter for RunReport<'_> {
    fn warnings(&self, diagnostics: &[Diagnostic]) {
        print_diagnostics(&Output::new(self.format), diagnostics, self.sources);
    }

    fn note(&self, text: &str) {
        Output::new(self.format).lines(&[text.to_string()]);
    }

    fn start(&self, total: usize, verb: &str) {
        *self.progress.lock().expect("progress lock poisoned") = Some(Progress::new(self.format, total, verb));
    }

    fn add_total(&self, n: usize) {
        self.with_progress(|p| p.add_total(n));
    }

    fn result(&self, result: &NodeResult) {
        self.with_progress(|p| p.report(&result.line));
    }

    fn finish(&self, summary: &RunSummary) {
        let count = |s| summary.count(s);
        let (ok, errors, skipped) = (count(Status::Success), count(Status::Error), count(Status::Skipped));
        let (pass, warn, fail) = (count(Status::Pass), count(Status::Warn), count(Status::Fail));
        let elapsed = summary.seconds();
        let mut parts = vec![format!("{ok} OK")];
        if pass + warn + fail > 0 {
            parts.push(format!("{pass} passed, {warn} warned, {fail} failed"));
        }
        parts.push(format!("{errors} error{}, {skipped} skipped", if errors == 1 { "" } else { "s" }));
        let reused = count(Status::Reused);
        if reused > 0 {
            parts.push(format!("{reused} reused"));
        }
        let text = format!(
            "\n{}: {} in {elapsed:.2} s",
            if summary.failed() { "Finished with errors" } else { "Done" },
            parts.join(", ")
        );
        let json = serde_json::json!({"summary": {
            "run_id": summary.run_id, "ok": ok, "error": errors, "skipped": skipped,
            "pass": pass, "warn": warn, "fail": fail, "reused": reused, "elapsed_s": elapsed,
        }});
        match self.progress.lock().expect("progress lock poisoned").take() {
            Some(progress) => progress.finish(&text, json),
            None => Progress::new(self.format, 0, summary.command).finish(&text, json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn lines_read_like_the_design() {
        let p = Progress::new(Format::Human, 12, "run");
        let line = ResultLine {
            unique_id: "model.shop.customers".into(),
            status: Status::Success,
            kind: "table".into(),
            name: "main.customers".into(),
            rows: Some(1234),
            seconds: 0.21,
            message: None,
            proof: None,
        };
        assert_eq!(p.human(3, &line), "   3 of 12  OK     table main.customers  1,234 rows  0.21 s");
    }
}
