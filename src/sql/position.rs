//! Maps positions in compiled SQL back to the Jinja source.
//!
//! Rendering is not a simple substitution, so the map is a character diff between the
//! source and its output: text that survived rendering maps to itself; text produced by
//! Jinja maps to the start of the expression that produced it.

use similar::{Algorithm, DiffOp, TextDiff};

/// Compiled byte offset -> source byte offset.
pub struct PositionMap {
    /// (compiled start, compiled end, source start, same text?) in compiled order, bytes.
    segments: Vec<(usize, usize, usize, bool)>,
}

impl PositionMap {
    /// Builds the map for one render.
    pub fn new(source: &str, compiled: &str) -> PositionMap {
        let diff = TextDiff::configure()
            .algorithm(Algorithm::Myers)
            .timeout(std::time::Duration::from_millis(200))
            .diff_chars(source, compiled);
        let src_bytes = char_to_byte(source);
        let out_bytes = char_to_byte(compiled);
        let mut segments = Vec::new();
        for op in diff.ops() {
            let (old, new, same) = match *op {
                DiffOp::Equal { old_index, new_index, len } => {
                    (old_index..old_index + len, new_index..new_index + len, true)
                }
                DiffOp::Insert { old_index, new_index, new_len } => {
                    (old_index..old_index, new_index..new_index + new_len, false)
                }
                DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    (old_index..old_index + old_len, new_index..new_index + new_len, false)
                }
                DiffOp::Delete { .. } => continue,
            };
            segments.push((out_bytes[new.start], out_bytes[new.end], src_bytes[old.start], same));
        }
        PositionMap { segments }
    }

    /// The source offset of a compiled offset.
    pub fn to_source(&self, compiled: usize) -> usize {
        let i = self.segments.partition_point(|s| s.1 <= compiled);
        match self.segments.get(i).or(self.segments.last()) {
            Some(&(start, _, src, true)) => src + compiled.saturating_sub(start),
            Some(&(_, _, src, false)) => src,
            None => 0,
        }
    }
}

/// Byte offset of every char index, plus one past the end.
fn char_to_byte(text: &str) -> Vec<usize> {
    text.char_indices().map(|(i, _)| i).chain(std::iter::once(text.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_kept_text_exactly_and_rendered_text_to_its_expression() {
        let source = "select id,\n  amount\nfrom {{ ref('orders') }}\nwhere x";
        let compiled = "select id,\n  amount\nfrom \"main\".\"orders\"\nwhere x";
        let map = PositionMap::new(source, compiled);
        let amount = compiled.find("amount").unwrap();
        assert_eq!(map.to_source(amount), source.find("amount").unwrap());
        let w = compiled.find("where").unwrap();
        assert_eq!(map.to_source(w), source.find("where").unwrap());
        let rel = compiled.find("\"main\"").unwrap() + 2;
        let mapped = map.to_source(rel);
        let expr = source.find("{{").unwrap();
        assert!(mapped >= expr && mapped < source.find("}}").unwrap() + 2, "{mapped}");
    }
}
