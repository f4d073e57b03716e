//! Name resolution: the relations visible in one `FROM` clause and how a column name
//! finds its relation (USING-merged columns first, ambiguity, unknown schemas).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ColumnRef, EdgeKind};

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
    pub fn node(id: &Arc<str>, display: &str, qualifier: &str, columns: Option<&[(String, Option<String>)]>) -> Rel {
        let (cols, complete) = match columns {
            Some(cols) => (
                cols.iter()
                    .map(|(name, _)| Col {
                        name: name.clone(),
                        origin: Origin::from([(ColumnRef { column: name.clone(), node: id.clone() }, EdgeKind::Copy)]),
                    })
                    .collect(),
                true,
            ),
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

    /// Renames columns by position (`alias(a, b)`); extra names are ignored.
    pub fn rename(&mut self, names: &[String]) {
        for (col, name) in self.cols.iter_mut().zip(names) {
            col.name = name.clone();
        }
    }
}

/// The outcome of looking a name up in one scope.
pub(super) enum Lookup {
    Found(Origin),
    /// In more than one relation: their display names and qualifiers.
    Ambiguous(Vec<(String, String)>, Origin),
    /// Not in the known columns, but a relation with an unknown schema may have it.
    Relaxed(Origin),
    Missing,
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
            return Lookup::Found(c.origin.clone());
        }
        let hits: Vec<(&Rel, &Col)> = self
            .rels
            .iter()
            .filter(|r| !r.hidden.iter().any(|h| h.eq_ignore_ascii_case(name)))
            .filter_map(|r| Some((r, r.col(name)?)))
            .collect();
        match hits.len() {
            0 => {}
            1 => return Lookup::Found(hits[0].1.origin.clone()),
            _ => {
                let mut origin = Origin::new();
                for (_, c) in &hits {
                    merge(&mut origin, &c.origin, EdgeKind::Copy);
                }
                let rels = hits.iter().map(|(r, _)| (r.display.clone(), r.qualifier.clone())).collect();
                return Lookup::Ambiguous(rels, origin);
            }
        }
        let open: Vec<&Rel> = self.rels.iter().filter(|r| !r.complete).collect();
        if open.is_empty() {
            return Lookup::Missing;
        }
        // Attribute only when exactly one relation could hold it.
        if open.len() == 1 { Lookup::Relaxed(open[0].passthrough_origin(name)) } else { Lookup::Relaxed(Origin::new()) }
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
        let cols: Vec<(String, Option<String>)> = cols.iter().map(|c| (c.to_string(), None)).collect();
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
        scope.merged.push(Col { name: "id".into(), origin: Origin::new() });
        assert!(matches!(scope.lookup("ID"), Lookup::Found(_)));
    }

    #[test]
    fn an_unknown_schema_relaxes_and_attributes_to_the_only_open_relation() {
        let scope = Scope {
            rels: vec![rel("a", "a", &["id"]), Rel::node(&Arc::from("src"), "src", "s", None)],
            ..Default::default()
        };
        match scope.lookup("whatever") {
            Lookup::Relaxed(o) => {
                assert_eq!(o.keys().map(|c| (&*c.node, c.column.as_str())).collect::<Vec<_>>(), [("src", "whatever")])
            }
            _ => panic!("expected a relaxed lookup"),
        }
    }
}
