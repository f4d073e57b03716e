//! Name resolution: the relations visible in one `FROM` clause and how a column name
//! finds its relation (USING-merged columns first, ambiguity, unknown schemas).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ColumnRef, EdgeKind, fingerprint};
use crate::sql::types::Type;

/// Where a value comes from: upstream columns and the strongest edge kind to each.
pub(super) type Origin = BTreeMap<ColumnRef, EdgeKind>;

/// Adds `from` into `into`, raising every kind to at least `floor`.
pub(super) fn merge(into: &mut Origin, from: &Origin, floor: EdgeKind) {
    for (col, kind) in from {
        let k = (*kind).max(floor);
        into.entry(col.clone()).and_modify(|e| *e = (*e).max(k)).or_insert(k);
    }
}

/// A column of a relation in scope.
#[derive(Clone, Debug)]
pub(super) struct Col {
    pub name: String,
    pub origin: Origin,
    pub ty: Type,
    /// How the value is derived within the model: changes when the expression, or a CTE
    /// or subquery column it reads, changes (see `walk.rs`).
    pub fp: u64,
}

impl Col {
    /// A column read as it is from an upstream node.
    pub fn upstream(node: &Arc<str>, name: &str, ty: Type) -> Col {
        Col {
            name: name.to_string(),
            origin: Origin::from([(ColumnRef { column: name.to_string(), node: node.clone() }, EdgeKind::Copy)]),
            ty,
            fp: fingerprint(&(&**node, name.to_lowercase())),
        }
    }

    /// A value of unknown type derived from `origin`.
    pub fn untyped(name: &str, origin: Origin) -> Col {
        let fp = fingerprint(&(name.to_lowercase(), origin.keys().collect::<Vec<_>>()));
        Col { name: name.to_string(), origin, ty: Type::Unknown, fp }
    }
}

/// A relation in a `FROM` clause: a node, a CTE or a derived table.
#[derive(Clone, Debug)]
pub(super) struct Rel {
    /// How the user sees it in messages: the node or CTE name, or the alias.
    pub display: String,
    /// What qualifies its columns: the alias, or the relation's last name part.
    pub qualifier: String,
    /// Known columns.
    pub cols: Vec<Col>,
    /// Whether `cols` is the whole list; if not, an unknown name is not an error.
    pub complete: bool,
    /// Nodes whose unknown columns pass through unchanged (a node without a known
    /// schema, or `select *` over one): an unknown name is attributed to them.
    pub passthrough: Vec<Arc<str>>,
    /// Columns merged by `USING`/`NATURAL`, hidden from unqualified lookup here.
    pub hidden: Vec<String>,
    /// Part of `select *` (not for the right side of semi and anti joins).
    pub in_star: bool,
}

impl Rel {
    /// A relation read from a node with a known or unknown schema.
    pub fn node(id: &Arc<str>, display: &str, qualifier: &str, columns: Option<&[(String, Type)]>) -> Rel {
        let (cols, complete) = match columns {
            Some(cols) => (cols.iter().map(|(name, ty)| Col::upstream(id, name, ty.clone())).collect(), true),
            None => (Vec::new(), false),
        };
        let passthrough = if complete { Vec::new() } else { vec![id.clone()] };
        Rel {
            display: display.to_string(),
            qualifier: qualifier.to_string(),
            cols,
            complete,
            passthrough,
            hidden: Vec::new(),
            in_star: true,
        }
    }

    /// A relation nothing is known about (a table function, an unknown table).
    pub fn unknown(display: &str, qualifier: &str) -> Rel {
        Rel {
            display: display.to_string(),
            qualifier: qualifier.to_string(),
            cols: Vec::new(),
            complete: false,
            passthrough: Vec::new(),
            hidden: Vec::new(),
            in_star: true,
        }
    }

    pub fn col(&self, name: &str) -> Option<&Col> {
        self.cols.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The origin of a column this relation may have but does not list.
    pub fn passthrough_origin(&self, name: &str) -> Origin {
        self.passthrough
            .iter()
            .map(|n| (ColumnRef { column: name.to_string(), node: n.clone() }, EdgeKind::Copy))
            .collect()
    }

    /// A column this relation may have but does not list, of unknown type.
    pub fn passthrough_col(&self, name: &str) -> Col {
        Col::untyped(name, self.passthrough_origin(name))
    }

    /// Renames columns by position (`alias(a, b)`); extra names are ignored.
    pub fn rename(&mut self, names: &[String]) {
        for (col, name) in self.cols.iter_mut().zip(names) {
            col.name = name.clone();
        }
    }
}

/// The outcome of looking a name up in one scope.
pub(super) enum Lookup {
    Found(Col),
    /// In more than one relation: their display names and qualifiers.
    Ambiguous(Vec<(String, String)>, Col),
    /// Not in the known columns, but a relation with an unknown schema may have it.
    Relaxed(Col),
    Missing,
}

impl Lookup {
    /// The column found, whatever the outcome; `None` when missing.
    pub fn col(self) -> Option<Col> {
        match self {
            Lookup::Found(c) | Lookup::Ambiguous(_, c) | Lookup::Relaxed(c) => Some(c),
            Lookup::Missing => None,
        }
    }
}

/// The relations of one `FROM` clause plus the output aliases of its `SELECT`.
#[derive(Debug, Default)]
pub(super) struct Scope {
    pub rels: Vec<Rel>,
    /// Columns merged by `USING`/`NATURAL`: visible unqualified, once.
    pub merged: Vec<Col>,
    /// Output columns of the SELECT, visible to GROUP BY, HAVING and ORDER BY.
    pub outputs: Vec<Col>,
}

impl Scope {
    /// Looks up an unqualified column name.
    pub fn lookup(&self, name: &str) -> Lookup {
        if let Some(c) = self.merged.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
            return Lookup::Found(c.clone());
        }
        let hits: Vec<(&Rel, &Col)> = self
            .rels
            .iter()
            .filter(|r| !r.hidden.iter().any(|h| h.eq_ignore_ascii_case(name)))
            .filter_map(|r| Some((r, r.col(name)?)))
            .collect();
        match hits.len() {
            0 => {}
            1 => return Lookup::Found(hits[0].1.clone()),
            _ => {
                let mut origin = Origin::new();
                for (_, c) in &hits {
                    merge(&mut origin, &c.origin, EdgeKind::Copy);
                }
                let rels = hits.iter().map(|(r, _)| (r.display.clone(), r.qualifier.clone())).collect();
                return Lookup::Ambiguous(rels, Col::untyped(name, origin));
            }
        }
        let open: Vec<&Rel> = self.rels.iter().filter(|r| !r.complete).collect();
        if open.is_empty() {
            return Lookup::Missing;
        }
        // Attribute only when exactly one relation could hold it.
        if open.len() == 1 {
            Lookup::Relaxed(open[0].passthrough_col(name))
        } else {
            Lookup::Relaxed(Col::untyped(name, Origin::new()))
        }
    }

    /// The relation a qualifier names, if it is in this scope.
    pub fn rel(&self, qualifier: &str) -> Option<&Rel> {
        self.rels.iter().rev().find(|r| r.qualifier.eq_ignore_ascii_case(qualifier))
    }

    /// An output column by name.
    pub fn output(&self, name: &str) -> Option<&Col> {
        self.outputs.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(node: &str, q: &str, cols: &[&str]) -> Rel {
        let cols: Vec<(String, Type)> = cols.iter().map(|c| (c.to_string(), Type::Unknown)).collect();
        Rel::node(&Arc::from(node), node, q, Some(&cols))
    }

    #[test]
    fn a_name_in_two_relations_is_ambiguous_unless_merged_by_using() {
        let mut scope =
            Scope { rels: vec![rel("a", "a", &["id", "x"]), rel("b", "b", &["id", "y"])], ..Default::default() };
        assert!(
            matches!(scope.lookup("id"), Lookup::Ambiguous(ref names, _) if names[0].0 == "a" && names[1].1 == "b")
        );
        assert!(matches!(scope.lookup("y"), Lookup::Found(_)));
        assert!(matches!(scope.lookup("z"), Lookup::Missing));
        scope.merged.push(Col::untyped("id", Origin::new()));
        assert!(matches!(scope.lookup("ID"), Lookup::Found(_)));
    }

    #[test]
    fn an_unknown_schema_relaxes_and_attributes_to_the_only_open_relation() {
        let scope = Scope {
            rels: vec![rel("a", "a", &["id"]), Rel::node(&Arc::from("src"), "src", "s", None)],
            ..Default::default()
        };
        match scope.lookup("whatever") {
            Lookup::Relaxed(c) => {
                assert_eq!(
                    c.origin.keys().map(|c| (&*c.node, c.column.as_str())).collect::<Vec<_>>(),
                    [("src", "whatever")]
                )
            }
            _ => panic!("expected a relaxed lookup"),
        }
    }
}
