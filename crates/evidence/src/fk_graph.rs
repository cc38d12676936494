//! The foreign-key graph of a shard as plain data: who references whom, and how far
//! `ON DELETE CASCADE` reaches. `topology::catalog::fk_graph` builds it from introspected
//! catalogs; a test builds it by hand with [`FkGraph::with_foreign_key`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::{FkAction, TableName};

/// One foreign key as an edge from the referencing table to the referenced table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FkEdge {
    /// Constraint name.
    pub constraint: String,
    /// Referencing columns.
    pub columns: Vec<String>,
    /// Referenced columns.
    pub referenced_columns: Vec<String>,
    /// `ON DELETE` action.
    pub on_delete: FkAction,
    /// `ON UPDATE` action.
    pub on_update: FkAction,
    /// False while the constraint is `NOT VALID`.
    pub validated: bool,
}

impl FkEdge {
    /// A validated foreign key named `constraint` with this `ON DELETE` action (`ON UPDATE NO
    /// ACTION`, no columns listed).
    pub fn new(constraint: impl Into<String>, on_delete: FkAction) -> FkEdge {
        FkEdge {
            constraint: constraint.into(),
            columns: Vec::new(),
            referenced_columns: Vec::new(),
            on_delete,
            on_update: FkAction::NoAction,
            validated: true,
        }
    }
}

/// A table that references another, with the foreign key doing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FkReference {
    /// The referencing table.
    pub from: TableName,
    /// The referenced table.
    pub to: TableName,
    /// The foreign key.
    pub edge: FkEdge,
}

/// A table reached by a cascading delete, with the chain of foreign keys that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CascadeReach {
    /// The table whose rows would be deleted.
    pub table: TableName,
    /// The foreign keys from the start table to `table`, in order (first step references the
    /// start table).
    pub path: Vec<FkReference>,
}

/// Directed graph of tables (nodes, with their schema) and foreign keys (edges from the
/// referencing table to the referenced table). Plain data: no graph library, lookups by table
/// name through two adjacency maps.
///
/// ```
/// use evidence::{FkAction, FkEdge, FkGraph, TableName};
///
/// let q = |t: &str| TableName::new("tenant_1", t);
/// let graph = FkGraph::new()
///     .with_foreign_key(q("orders"), q("customers"), FkEdge::new("orders_customer_fk", FkAction::Cascade))
///     .with_foreign_key(q("lines"), q("orders"), FkEdge::new("lines_order_fk", FkAction::Cascade));
/// let reach = graph.cascade_reach(&q("customers"));
/// assert_eq!(reach.iter().map(|r| r.table.name.as_str()).collect::<Vec<_>>(), ["orders", "lines"]);
/// assert_eq!(reach[1].path.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FkGraph {
    tables: BTreeSet<TableName>,
    foreign_keys: Vec<FkReference>,
    /// Indexes into `foreign_keys` by referenced table.
    incoming: BTreeMap<TableName, Vec<usize>>,
    /// Indexes into `foreign_keys` by referencing table.
    outgoing: BTreeMap<TableName, Vec<usize>>,
}

impl FkGraph {
    /// An empty graph.
    pub fn new() -> FkGraph {
        FkGraph::default()
    }

    /// Add a table (a node without foreign keys, until one is added).
    pub fn add_table(&mut self, table: TableName) {
        self.tables.insert(table);
    }

    /// Add the foreign key `edge` from `from` (referencing) to `to` (referenced); both tables
    /// become nodes.
    pub fn add_foreign_key(&mut self, from: TableName, to: TableName, edge: FkEdge) {
        let i = self.foreign_keys.len();
        self.tables.insert(from.clone());
        self.tables.insert(to.clone());
        self.incoming.entry(to.clone()).or_default().push(i);
        self.outgoing.entry(from.clone()).or_default().push(i);
        self.foreign_keys.push(FkReference { from, to, edge });
    }

    /// The same graph with one more table ([`add_table`](Self::add_table)).
    #[must_use]
    pub fn with_table(mut self, table: TableName) -> FkGraph {
        self.add_table(table);
        self
    }

    /// The same graph with one more foreign key ([`add_foreign_key`](Self::add_foreign_key)).
    #[must_use]
    pub fn with_foreign_key(mut self, from: TableName, to: TableName, edge: FkEdge) -> FkGraph {
        self.add_foreign_key(from, to, edge);
        self
    }

    /// All tables in the graph, sorted.
    pub fn tables(&self) -> Vec<&TableName> {
        self.tables.iter().collect()
    }

    /// Number of foreign keys.
    pub fn edge_count(&self) -> usize {
        self.foreign_keys.len()
    }

    fn collect(
        &self,
        index: &BTreeMap<TableName, Vec<usize>>,
        table: &TableName,
    ) -> Vec<FkReference> {
        let mut v: Vec<FkReference> = index
            .get(table)
            .map(|ix| ix.iter().map(|&i| self.foreign_keys[i].clone()).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| {
            (&a.from, &a.to, &a.edge.constraint).cmp(&(&b.from, &b.to, &b.edge.constraint))
        });
        v
    }

    /// Foreign keys that reference `table` (incoming edges), sorted.
    pub fn referencing(&self, table: &TableName) -> Vec<FkReference> {
        self.collect(&self.incoming, table)
    }

    /// Foreign keys declared on `table` (outgoing edges), sorted.
    pub fn references(&self, table: &TableName) -> Vec<FkReference> {
        self.collect(&self.outgoing, table)
    }

    /// Every table whose rows a `DELETE` on `table` would delete through `ON DELETE CASCADE`
    /// foreign keys, transitively, each with the shortest chain of foreign keys reaching it
    /// (breadth-first; ties by table name). Cycle-safe: each table is reported once, and the
    /// start table is never reported.
    pub fn cascade_reach(&self, table: &TableName) -> Vec<CascadeReach> {
        if !self.tables.contains(table) {
            return Vec::new();
        }
        let mut seen: BTreeSet<&TableName> = BTreeSet::from([table]);
        let mut queue: VecDeque<(&TableName, Vec<FkReference>)> =
            VecDeque::from([(table, Vec::new())]);
        let mut out = Vec::new();
        while let Some((n, path)) = queue.pop_front() {
            for r in self.referencing(n) {
                if r.edge.on_delete != FkAction::Cascade {
                    continue;
                }
                let Some(child) = self.tables.get(&r.from) else {
                    continue;
                };
                if !seen.insert(child) {
                    continue;
                }
                let mut p = path.clone();
                p.push(r.clone());
                out.push(CascadeReach {
                    table: r.from.clone(),
                    path: p.clone(),
                });
                queue.push_back((child, p));
            }
        }
        out
    }
}
