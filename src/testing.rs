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
