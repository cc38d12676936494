//! The order tables are seeded in: parents before children along the foreign keys within the
//! schema (self-references ignored); the tables of a cycle follow in name order.

use std::collections::BTreeSet;

use topology::catalog::{Catalog, ConstraintType};

/// Tables of `cat` (by name), each after the tables of the schema it references.
pub(super) fn parents_first(cat: &Catalog) -> Vec<String> {
    let parents = |name: &str| -> BTreeSet<String> {
        cat.tables[name]
            .constraints
            .values()
            .filter(|c| c.kind == ConstraintType::ForeignKey)
            .filter_map(|c| c.foreign_key.as_ref())
            .filter(|fk| fk.references.schema == cat.schema && fk.references.name != name)
            .filter(|fk| cat.tables.contains_key(&fk.references.name))
            .map(|fk| fk.references.name.clone())
            .collect()
    };
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    let mut pending: Vec<String> = cat.tables.keys().cloned().collect();
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .iter()
            .filter(|t| parents(t).iter().all(|p| done.contains(p)))
            .cloned()
            .collect();
        // A cycle: take the first pending table as if its parents were there.
        let take = if ready.is_empty() {
            vec![pending[0].clone()]
        } else {
            ready
        };
        pending.retain(|t| !take.contains(t));
        for t in take {
            done.insert(t.clone());
            order.push(t);
        }
    }
    order
}
