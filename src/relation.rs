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
    /// never share one.
    pub fn audit(&self) -> Relation {
        Relation::new(AUDIT_SCHEMA, format!("{}__{}", self.schema, self.identifier))
    }
}

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
