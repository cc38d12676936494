//! The foreign-key graph: who references whom, and how far `ON DELETE CASCADE` reaches.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef as _;
use serde::Serialize;

use super::{Catalog, FkAction, QualifiedName};

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
    #[serde(with = "super::fk_action_serde")]
    pub on_delete: FkAction,
    /// `ON UPDATE` action.
    #[serde(with = "super::fk_action_serde")]
    pub on_update: FkAction,
    /// False while the constraint is `NOT VALID`.
    pub validated: bool,
}

/// A table that references another, with the foreign key doing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FkReference {
    /// The referencing table.
    pub from: QualifiedName,
    /// The referenced table.
    pub to: QualifiedName,
    /// The foreign key.
    pub edge: FkEdge,
}

/// A table reached by a cascading delete, with the chain of foreign keys that reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CascadeReach {
    /// The table whose rows would be deleted.
    pub table: QualifiedName,
    /// The foreign keys from the start table to `table`, in order (first step references the
    /// start table).
    pub path: Vec<FkReference>,
}

/// Directed graph of tables (nodes, with their schema) and foreign keys (edges from the
/// referencing table to the referenced table), built with `petgraph`.
#[derive(Debug, Clone, Default)]
pub struct FkGraph {
    graph: DiGraph<QualifiedName, FkEdge>,
    nodes: BTreeMap<QualifiedName, NodeIndex>,
}

impl FkGraph {
    /// Build the graph from one or more catalogs. Tables referenced in other schemas (for
    /// example `shared.plans`) become nodes even when their schema was not introspected.
    pub fn from_catalogs<'a, I>(catalogs: I) -> FkGraph
    where
        I: IntoIterator<Item = &'a Catalog>,
    {
        let mut g = FkGraph::default();
        for c in catalogs {
            for t in c.tables.values() {
                g.node(&QualifiedName::new(&c.schema, &t.name));
            }
            for (t, con) in c.foreign_keys() {
                let Some(fk) = &con.foreign_key else { continue };
                let from = g.node(&QualifiedName::new(&c.schema, &t.name));
                let to = g.node(&fk.references);
                g.graph.add_edge(
                    from,
                    to,
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

    /// Build the graph of a single catalog.
    pub fn from_catalog(c: &Catalog) -> FkGraph {
        FkGraph::from_catalogs([c])
    }

    fn node(&mut self, q: &QualifiedName) -> NodeIndex {
        if let Some(i) = self.nodes.get(q) {
            return *i;
        }
        let i = self.graph.add_node(q.clone());
        self.nodes.insert(q.clone(), i);
        i
    }

    /// All tables in the graph, sorted.
    pub fn tables(&self) -> Vec<&QualifiedName> {
        self.nodes.keys().collect()
    }

    /// Number of foreign keys.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    fn reference(&self, e: petgraph::graph::EdgeReference<'_, FkEdge>) -> FkReference {
        FkReference {
            from: self.graph[e.source()].clone(),
            to: self.graph[e.target()].clone(),
            edge: e.weight().clone(),
        }
    }

    fn sorted(mut v: Vec<FkReference>) -> Vec<FkReference> {
        v.sort_by(|a, b| {
            (&a.from, &a.to, &a.edge.constraint).cmp(&(&b.from, &b.to, &b.edge.constraint))
        });
        v
    }

    /// Foreign keys that reference `table` (incoming edges), sorted.
    pub fn referencing(&self, table: &QualifiedName) -> Vec<FkReference> {
        let Some(&i) = self.nodes.get(table) else {
            return Vec::new();
        };
        Self::sorted(
            self.graph
                .edges_directed(i, Direction::Incoming)
                .map(|e| self.reference(e))
                .collect(),
        )
    }

    /// Foreign keys declared on `table` (outgoing edges), sorted.
    pub fn references(&self, table: &QualifiedName) -> Vec<FkReference> {
        let Some(&i) = self.nodes.get(table) else {
            return Vec::new();
        };
        Self::sorted(
            self.graph
                .edges_directed(i, Direction::Outgoing)
                .map(|e| self.reference(e))
                .collect(),
        )
    }

    /// Every table whose rows a `DELETE` on `table` would delete through `ON DELETE CASCADE`
    /// foreign keys, transitively, each with the shortest chain of foreign keys reaching it
    /// (breadth-first; ties by table name). Cycle-safe: each table is reported once, and the
    /// start table is never reported.
    pub fn cascade_reach(&self, table: &QualifiedName) -> Vec<CascadeReach> {
        let Some(&start) = self.nodes.get(table) else {
            return Vec::new();
        };
        let mut seen: BTreeSet<NodeIndex> = BTreeSet::from([start]);
        let mut queue: VecDeque<(NodeIndex, Vec<FkReference>)> =
            VecDeque::from([(start, Vec::new())]);
        let mut out = Vec::new();
        while let Some((n, path)) = queue.pop_front() {
            let mut next: Vec<FkReference> = self
                .graph
                .edges_directed(n, Direction::Incoming)
                .filter(|e| e.weight().on_delete == FkAction::Cascade)
                .map(|e| self.reference(e))
                .collect();
            next = Self::sorted(next);
            for r in next {
                let Some(&child) = self.nodes.get(&r.from) else {
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
