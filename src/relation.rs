//! A relation: a schema-qualified warehouse object (table or view).

use std::fmt;

use serde::Serialize;

/// `"schema"."identifier"` in the active target.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Relation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
}

/// Why `name` cannot name a schema, relation or test, or `None` when it can. Such names
/// become file and folder names (the embedded warehouse, `target/compiled/`, stored
/// failures), so a separator or `..` would write outside them.
pub fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("it is empty")
    } else if name.contains(['/', '\\']) {
        Some("it holds a path separator")
    } else if name == "." || name == ".." {
        Some("it names a folder")
    } else if name.contains('\0') {
        Some("it holds a NUL character")
    } else {
        None
    }
}

impl Relation {
    pub fn new(schema: impl Into<String>, identifier: impl Into<String>) -> Relation {
        Relation { database: None, schema: schema.into(), identifier: identifier.into() }
    }

    /// Where a run puts this relation's staged data while its tests audit it:
    /// `"_etlm_audit"."<schema>__<identifier>"`, one per relation, so concurrent models
    /// never share one. A name longer than Postgres' 63 bytes, which Postgres would cut
    /// (and so could share), is cut here instead and ends with a hash of the whole name.
    pub fn audit(&self) -> Relation {
        let full = format!("{}__{}", self.schema, self.identifier);
        if full.len() <= MAX_IDENTIFIER_BYTES {
            return Relation::new(AUDIT_SCHEMA, full);
        }
        let hash = &crate::hex::md5_hex(&full)[..12];
        let mut cut = MAX_IDENTIFIER_BYTES - hash.len() - 1;
        while !full.is_char_boundary(cut) {
            cut -= 1;
        }
        Relation::new(AUDIT_SCHEMA, format!("{}_{hash}", &full[..cut]))
    }
}

/// The longest identifier Postgres keeps whole (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The schema of audit relations (see `Relation::audit`).
pub const AUDIT_SCHEMA: &str = "_etlm_audit";

/// Quotes an identifier with double quotes, doubling any inside it.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl fmt::Display for Relation {
    /// The quoted, schema-qualified name: `"main"."orders"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", quote_ident(&self.schema), quote_ident(&self.identifier))
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_IDENTIFIER_BYTES, Relation};

    #[test]
    fn audit_names_are_unique_and_fit_postgres() {
        assert_eq!(Relation::new("main", "orders").audit().identifier, "main__orders");
        let long = "a_model_name_that_goes_on_and_on_well_past_what_postgres_keeps";
        let (a, b) =
            (Relation::new("analytics", format!("{long}_one")), Relation::new("analytics", format!("{long}_two")));
        let (a, b) = (a.audit().identifier, b.audit().identifier);
        assert_ne!(a, b, "names alike in their first 63 bytes stay apart");
        assert!(a.len() <= MAX_IDENTIFIER_BYTES && b.len() <= MAX_IDENTIFIER_BYTES, "{a} {b}");
        assert!(a.starts_with("analytics__a_model_name"), "{a}");
        let accented = Relation::new("s", "é".repeat(40)).audit().identifier;
        assert!(accented.len() <= MAX_IDENTIFIER_BYTES, "cut on a character boundary: {accented}");
    }
}
