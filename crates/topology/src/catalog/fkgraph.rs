//! The foreign-key graph of introspected catalogs. The graph itself is plain data
//! ([`evidence::FkGraph`]: who references whom, how far `ON DELETE CASCADE` reaches); this
//! module builds it from [`Catalog`]s.

pub use evidence::{CascadeReach, FkEdge, FkGraph, FkReference};

use super::{Catalog, TableName};

/// Build the graph from one or more catalogs. Tables referenced in other schemas (for
/// example `shared.plans`) become nodes even when their schema was not introspected.
pub fn fk_graph<'a, I>(catalogs: I) -> FkGraph
where
    I: IntoIterator<Item = &'a Catalog>,
{
    let mut g = FkGraph::new();
    for c in catalogs {
        for t in c.tables.values() {
            g.add_table(TableName::new(&c.schema, &t.name));
        }
        for (t, con) in c.foreign_keys() {
            let Some(fk) = &con.foreign_key else { continue };
            g.add_foreign_key(
                TableName::new(&c.schema, &t.name),
                fk.references.clone(),
                FkEdge {
                    constraint: con.name.clone(),
                    columns: con.columns.clone(),
                    referenced_columns: fk.referenced_columns.clone(),
                    on_delete: fk.on_delete,
                    on_update: fk.on_update,
                    validated: con.validated,
                },
            );
        }
    }
    g
}

/// The graph of a single catalog ([`fk_graph`]).
pub fn fk_graph_of(c: &Catalog) -> FkGraph {
    fk_graph([c])
}
