//! Diagnostics: every problem a user sees, with its code, message, labelled spans,
//! notes and help, rendered the way rustc renders errors (`render.rs`) or as JSON.
//!
//! Spans are byte ranges into files held by a [`SourceMap`]; line and column are only
//! computed when rendering, so a diagnostic can be built cheaply wherever a problem is
//! found and sorted by file and position before the phase stops.

mod codes;
mod render;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;

pub use codes::Code;
pub use render::{render_human, render_json};

/// Index of a file in a [`SourceMap`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(u32);

/// A byte range in one file of the [`SourceMap`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// A span covering `range` of `file`.
    pub fn new(file: FileId, range: std::ops::Range<usize>) -> Span {
        Span { file, start: range.start, end: range.end.max(range.start) }
    }

    /// The first byte of `file`, for problems about a whole file.
    pub fn file_start(file: FileId) -> Span {
        Span { file, start: 0, end: 0 }
    }
}

/// One file known to the diagnostics: its path relative to the project and its text.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
    /// Byte offset of each line's start, found when a position is first asked for (most
    /// files never are).
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    fn new(path: PathBuf, text: Arc<str>) -> SourceFile {
        SourceFile { path, text, line_starts: std::sync::OnceLock::new() }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts
            .get_or_init(|| std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_starts = self.line_starts();
        let line = line_starts.partition_point(|&s| s <= offset) - 1;
        let start = line_starts[line];
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// Byte offset of a 1-based line and column (in characters), clamped to the file.
    pub fn offset(&self, line: usize, col: usize) -> usize {
        let Some(&start) = self.line_starts().get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let line_text = self.line_text(line);
        let within = line_text.char_indices().nth(col.saturating_sub(1)).map_or(line_text.len(), |(i, _)| i);
        start + within
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let line_starts = self.line_starts();
        let Some(&start) = line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = line_starts.get(line).map_or(self.text.len(), |&e| e - 1);
        self.text[start..end].trim_end_matches('\r')
    }
}

/// Every file a diagnostic may point into. Shared between threads; files are only added.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: RwLock<Vec<Arc<SourceFile>>>,
}

impl SourceMap {
    /// Adds a file and returns its id. `path` is shown to the user as it is given.
    pub fn add(&self, path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> FileId {
        let mut files = self.files.write().expect("source map lock poisoned");
        files.push(Arc::new(SourceFile::new(path.into(), text.into())));
        FileId(u32::try_from(files.len() - 1).expect("fewer than 4 billion files"))
    }

    /// The file behind an id handed out by [`SourceMap::add`].
    pub fn file(&self, id: FileId) -> Arc<SourceFile> {
        self.files.read().expect("source map lock poisoned")[id.0 as usize].clone()
    }

    /// The id of the file added under `path`, if any.
    pub fn find(&self, path: &Path) -> Option<FileId> {
        let files = self.files.read().expect("source map lock poisoned");
        files.iter().position(|f| f.path == path).map(|i| FileId(i as u32))
    }
}

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A span with a short message shown under its caret.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A problem for the user: `error[code]: message`, spans, notes and help.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    /// The first label is the primary location.
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Vec<String>,
}

impl Diagnostic {
    /// An error with a code and a message (lowercase, no period).
    pub fn error(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: Vec::new(),
        }
    }

    /// A warning: reported, but does not stop the phase.
    pub fn warning(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// Adds a labelled span; the first one added is the primary location.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    /// The primary span, used to sort diagnostics by file and position.
    pub fn primary(&self) -> Option<Span> {
        self.labels.first().map(|l| l.span)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of a phase that could not finish, sorted by file and position.
#[derive(Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Sorts by primary location (diagnostics without one last) and then by message.
    pub fn sorted(mut list: Vec<Diagnostic>, sources: &SourceMap) -> Diagnostics {
        list.sort_by_cached_key(|d| {
            let key = d.primary().map(|s| (sources.file(s.file).path.clone(), s.start, s.end));
            (key.is_none(), key, d.message.clone())
        });
        Diagnostics(list)
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
}

/// Collects diagnostics of one phase; the phase stops at its end if any is an error.
#[derive(Debug, Default)]
pub struct Collector {
    list: Vec<Diagnostic>,
}

impl Collector {
    pub fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }

    pub fn extend(&mut self, ds: impl IntoIterator<Item = Diagnostic>) {
        self.list.extend(ds);
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    /// Ends a phase: `Err` with every diagnostic when one of them is an error,
    /// otherwise the warnings, to be reported by the caller.
    pub fn finish(self, sources: &SourceMap) -> Result<Vec<Diagnostic>, Diagnostics> {
        if self.has_errors() {
            Err(Diagnostics::sorted(self.list, sources))
        } else {
            Ok(Diagnostics::sorted(self.list, sources).0)
        }
    }
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a typo.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_in_characters() {
        let map = SourceMap::default();
        let id = map.add("a.sql", "select\n  é, x\nfrom t");
        let f = map.file(id);
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(7), (2, 1));
        let x = f.text.find('x').unwrap();
        assert_eq!(f.line_col(x), (2, 6));
        assert_eq!(f.offset(2, 6), x);
        assert_eq!(f.line_text(3), "from t");
    }

    #[test]
    fn nearest_suggests_typos_only() {
        assert_eq!(nearest("stg_ordrs", ["stg_orders", "customers"]), Some("stg_orders"));
        assert_eq!(nearest("zzz", ["stg_orders", "customers"]), None);
    }
}
