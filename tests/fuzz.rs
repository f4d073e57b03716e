//! Fuzz targets (#18, matrix row 32): YAML loading, Jinja rendering, SQL parsing with
//! column lineage, and selector parsing with selection, fed the checked-in corpus
//! (`tests/fuzz_corpus/<target>/`) and then, for `ETLM_FUZZ_SECONDS` (default 10; CI
//! gives 60) per target, proptest-made mutations of it: inserted, deleted and duplicated
//! runs of characters. Any input may be an error; none may panic. A panic fails the
//! test, prints the input and writes it to `target/fuzz-crashes/`; add it to the corpus
//! as a regression case once fixed.

mod support;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etlm::diagnostics::SourceMap;
use etlm::project::LoadOptions;
use etlm::run::invocation::{Compile, Invocation};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// The project every case compiles: a seed, a staging model, and the file under test.
fn base_project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fuzz");
    std::fs::create_dir_all(dir.join("models")).unwrap();
    std::fs::create_dir_all(dir.join("seeds")).unwrap();
    std::fs::write(dir.join("etlm.yml"), "name: fuzz\nvars:\n  min: 1\n").unwrap();
    std::fs::write(dir.join("seeds/raw.csv"), "id,name,amount,dt\n1,a,3,2024-01-01\n2,b,20,2024-01-02\n").unwrap();
    std::fs::write(dir.join("models/stg.sql"), "select * from {{ ref('raw') }}\n").unwrap();
    std::fs::write(dir.join("models/m.sql"), "select id from {{ ref('stg') }}\n").unwrap();
    (tmp, dir)
}

fn invocation(dir: &Path) -> Invocation {
    Invocation {
        load: LoadOptions { project_dir: dir.to_path_buf(), ..LoadOptions::default() },
        ..Invocation::default()
    }
}

/// Loads and compiles the project at `dir` (parsing, rendering, SQL checks, lineage),
/// and renders what it reports as text.
fn compile(dir: &Path) {
    let sources = SourceMap::default();
    let result = invocation(dir).compile(&sources, Compile { which: "compile", ..Compile::default() });
    let diagnostics = match result {
        Ok(compiled) => compiled.warnings,
        Err(errors) => errors,
    };
    for d in &diagnostics {
        let _ = (etlm::diagnostics::render_human(d, &sources), etlm::diagnostics::render_json(d, &sources));
    }
}

/// The corpus of `target`: every file of `tests/fuzz_corpus/<target>/`, split into
/// lines for `selectors`.
fn corpus(target: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let texts = files.iter().map(|f| std::fs::read_to_string(f).unwrap());
    let texts: Vec<String> = if target == "selectors" {
        texts.flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>()).collect()
    } else {
        texts.collect()
    };
    assert!(!texts.is_empty(), "the {target} corpus is empty");
    texts
}

/// One edit of a text, at a position given as a fraction of its length.
#[derive(Clone, Debug)]
enum Edit {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize),
}

/// A corpus entry with up to eight edits, the inserted text drawn from `alphabet`.
fn mutations(corpus: Vec<String>, alphabet: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop::sample::select(alphabet.to_vec()).prop_map(str::to_string);
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), piece).prop_map(|(i, p)| Edit::Insert(i, p)),
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ];
    (prop::sample::select(corpus), prop::collection::vec(edit, 0..8)).prop_map(|(base, edits)| {
        let mut chars: Vec<char> = base.chars().collect();
        for edit in edits {
            let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
            match edit {
                Edit::Insert(i, text) => {
                    let at = at(&i, chars.len());
                    chars.splice(at..at, text.chars());
                }
                Edit::Delete(i, n) => {
                    let at = at(&i, chars.len());
                    chars.drain(at..(at + n).min(chars.len()));
                }
                Edit::Duplicate(i, n) => {
                    let at = at(&i, chars.len());
                    let run: Vec<char> = chars[at..(at + n).min(chars.len())].to_vec();
                    chars.splice(at..at, run);
                }
            }
        }
        chars.into_iter().collect()
    })
}

fn seconds() -> Duration {
    Duration::from_secs(std::env::var("ETLM_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10))
}

/// Runs `case` on every corpus entry, then on mutations until the time is up; fails on
/// the first input that panics.
fn fuzz(target: &str, alphabet: &'static [&'static str], case: impl Fn(&str)) {
    let entries = corpus(target);
    let check = |input: &str| {
        if std::panic::catch_unwind(AssertUnwindSafe(|| case(input))).is_err() {
            let crashes = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
            std::fs::create_dir_all(&crashes).unwrap();
            let file = crashes.join(format!("{target}-{:016x}.txt", fingerprint(input)));
            std::fs::write(&file, input).unwrap();
            panic!("{target}: this input panics (saved as {}):\n{input}", file.display());
        }
    };
    for entry in &entries {
        check(entry);
    }
    let strategy = mutations(entries.clone(), alphabet);
    let mut runner = TestRunner::default();
    let deadline = Instant::now() + seconds();
    let mut cases = 0;
    while Instant::now() < deadline {
        let input = strategy.new_tree(&mut runner).expect("a mutation").current();
        check(&input);
        cases += 1;
    }
    eprintln!("{target}: {} corpus entries and {cases} mutations, no panic", entries.len());
}

fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

const YAML: &[&str] = &[
    ":",
    " ",
    "\n",
    "- ",
    "  ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "&a",
    "*a",
    "<<: *a",
    "!!str ",
    "#",
    "|\n  ",
    ">-\n  ",
    "name: x",
    "columns:",
    "data_tests:",
    "config:",
    "null",
    "~",
    "1e999",
    "-1",
    "\t",
    "é",
    "\u{0}",
    "{{ var('x') }}",
    "ref('m')",
    "?",
    "---\n",
    "...\n",
];

const JINJA: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{{ x }}",
    "{% if %}",
    "{% endif %}",
    "{% for x in y %}",
    "{% endfor %}",
    "{% macro f() %}",
    "{% endmacro %}",
    "{% set x = ",
    "|",
    "| upper",
    "(",
    ")",
    "[",
    "]",
    ".",
    "'",
    "\"",
    "~",
    "ref(",
    "source(",
    "var(",
    "config(",
    "this",
    "loop.",
    "-",
    "+",
    "*",
    "/",
    "%",
    "**",
    "9999999999999999999",
    "none",
    "caller()",
    "{% call f() %}",
    "{% endcall %}",
    "{% raw %}",
    "{% endraw %}",
    "é",
    "\n",
];

const SQL: &[&str] = &[
    " ",
    "select ",
    "from ",
    "where ",
    "join ",
    "on ",
    "using (id)",
    "group by ",
    "order by ",
    "having ",
    "with ",
    " as ",
    "(",
    ")",
    ",",
    "*",
    ".",
    ";",
    "'",
    "\"",
    "--",
    "/*",
    "*/",
    "::",
    "id",
    "main.raw",
    "main.stg",
    "x",
    "union ",
    "over (",
    "partition by ",
    "case when ",
    " then ",
    " end",
    "null",
    "1",
    "-",
    "+",
    "/",
    "||",
    "e'",
    "$1",
    "[",
    "]",
    "lateral ",
    "natural ",
    "values (1)",
    "é",
    "\n",
];

const SELECTORS: &[&str] = &[
    "+",
    "@",
    "*",
    ",",
    " ",
    ":",
    ".",
    "/",
    "tag:",
    "path:",
    "config.",
    "state:",
    "result:",
    "source:",
    "fqn:",
    "package:",
    "1",
    "9999999999999999999",
    "stg",
    "m",
    "raw",
    "--exclude",
    "'",
    "\"",
    "\\",
    "é",
    "..",
];

#[test]
fn yaml_loading_never_panics() {
    let (_tmp, dir) = base_project();
    fuzz("yaml", YAML, |text| {
        std::fs::write(dir.join("models/schema.yml"), text).unwrap();
        compile(&dir);
    });
}

#[test]
fn jinja_rendering_never_panics() {
    let (_tmp, dir) = base_project();
    fuzz("jinja", JINJA, |text| {
        std::fs::write(dir.join("models/m.sql"), text).unwrap();
        compile(&dir);
    });
}

#[test]
fn sql_parsing_and_lineage_never_panic() {
    let (_tmp, dir) = base_project();
    fuzz("sql", SQL, |text| {
        // Raw: the text is SQL, not a template.
        std::fs::write(dir.join("models/m.sql"), format!("{{% raw %}}{text}{{% endraw %}}")).unwrap();
        compile(&dir);
    });
}

#[test]
fn selector_parsing_never_panics() {
    let (_tmp, dir) = base_project();
    let sources = SourceMap::default();
    let compiled = invocation(&dir).compile(&sources, Compile::default()).expect("the base project compiles");
    fuzz("selectors", SELECTORS, |text| {
        let words: Vec<String> = text.split(' ').map(str::to_string).collect();
        let (select, exclude) = match words.iter().position(|w| w == "--exclude") {
            Some(i) => (words[..i].to_vec(), words[i + 1..].to_vec()),
            None => (words, Vec::new()),
        };
        let invocation = Invocation { select, exclude, ..invocation(&dir) };
        let _ = invocation.selected(&compiled);
        let _ = invocation.empty_selectors(&compiled);
    });
}
