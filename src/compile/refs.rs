//! Which node a `ref()` names, as dbt resolves it across packages: `ref('pkg', 'm')`
//! names the model `m` of package `pkg`; `ref('m')` looks in the root project, then in
//! the calling node's own package, then in any package.

use std::collections::BTreeMap;

use crate::node::Nodes;
use crate::template::RefCall;

/// Models, seeds and snapshots by (package, name), and by name alone.
#[derive(Clone, Debug)]
pub struct RefIndex {
    root: String,
    by_key: BTreeMap<(String, String), String>,
    /// Each name's node: the root project's, else the first package's.
    by_name: BTreeMap<String, String>,
}

impl RefIndex {
    pub fn new(root: &str, nodes: &Nodes) -> RefIndex {
        let mut by_key = BTreeMap::new();
        let mut by_name: BTreeMap<String, String> = BTreeMap::new();
        for n in nodes.values().filter(|n| n.resource_type.is_built()) {
            let package = n.package().to_string();
            by_key.insert((package.clone(), n.name.clone()), n.unique_id.clone());
            if package == root || !by_name.contains_key(&n.name) {
                by_name.insert(n.name.clone(), n.unique_id.clone());
            }
        }
        RefIndex { root: root.to_string(), by_key, by_name }
    }

    /// The node `call` names, made from a node of `package`.
    pub fn resolve(&self, package: &str, call: &RefCall) -> Option<&String> {
        match &call.package {
            Some(p) => self.by_key.get(&(p.clone(), call.name.clone())),
            None => self
                .by_key
                .get(&(self.root.clone(), call.name.clone()))
                .or_else(|| self.by_key.get(&(package.to_string(), call.name.clone())))
                .or_else(|| self.by_name.get(&call.name)),
        }
    }

    /// Each name's node (the root project's first), for suggestions and for resolving
    /// refs where the calling package is not known.
    pub fn by_name(&self) -> &BTreeMap<String, String> {
        &self.by_name
    }
}
