//! Helpers for the unit tests.

/// A fixed-seed xorshift generator: the same "random" inputs on every run, so a failure
/// found by a randomized comparison is reproducible.
pub(crate) fn pseudo_random(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    }
}

/// The text of every file under the repository's `dirs` whose name ends in one of
/// `extensions`: the fixtures and templates a fast path is compared on. Build output
/// (`target/` folders) is skipped, so a clean checkout reads what a working tree reads.
pub(crate) fn repository_texts(dirs: &[&str], extensions: &[&str]) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    dirs.iter()
        .flat_map(|dir| {
            walkdir::WalkDir::new(root.join(dir))
                .into_iter()
                .filter_entry(|e| e.file_name() != "target")
                .filter_map(Result::ok)
        })
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.path().extension().is_some_and(|x| extensions.iter().any(|want| x == *want)))
        .map(|e| std::fs::read_to_string(e.path()).expect("repository files are UTF-8"))
        .collect()
}
