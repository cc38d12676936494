use std::collections::BTreeSet;

use evidence::{FkGraph, TableName};
use migration_parser::{ConstraintKind, FkAction, Operation, QualifiedName};
use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard, from the shard's foreign-key graph: reports how far deletes reach when the
    /// migration
    /// * adds an `ON DELETE CASCADE` foreign key to an existing table — from then on a `DELETE`
    ///   on the referenced table also deletes rows of this table and of every table that
    ///   cascades from it;
    /// * runs `DELETE` on a table that other tables reference with `ON DELETE CASCADE`;
    /// * runs `TRUNCATE ... CASCADE`, which empties every table that references the truncated
    ///   ones, transitively, whatever their `ON DELETE` action;
    /// * runs `DROP TABLE ... CASCADE` on a table other tables reference (their foreign keys
    ///   are dropped).
    ///
    /// Each finding names the tables reached and the chain of foreign keys reaching them.
    ///
    /// ## Why is this bad?
    /// Cascades are silent: one application `DELETE` (or one migration statement) removes rows
    /// in tables nobody mentioned, each under a row lock, in the same transaction — and the
    /// reach differs from shard to shard as schemas drift. `TRUNCATE` takes an
    /// `ACCESS EXCLUSIVE` lock on every table it cascades to. Every PostgreSQL version.
    ///
    /// Severity **yellow**: the migration succeeds, but a human must review what the cascade
    /// reaches.
    ///
    /// ## Safe alternative
    /// Keep `ON DELETE RESTRICT` / `NO ACTION` and delete children explicitly, in batches, or
    /// truncate only the tables you name:
    /// ```sql
    /// ALTER TABLE order_items ADD CONSTRAINT order_items_order_fk
    ///     FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE RESTRICT NOT VALID;
    /// TRUNCATE order_items, orders;  -- no CASCADE: fails if anything else references them
    /// ```
    pub struct CascadeReach {
        code: "DC403",
        name: "cascade-reach",
        severity: Yellow,
        scope: Shard,
    }
}

/// The graph's name for a table the migration names (unqualified: the shard's schema, or the
/// only table of that name in the graph).
fn resolve(graph: &FkGraph, q: &QualifiedName, shard_schema: Option<&str>) -> Option<TableName> {
    if let Some(s) = q.schema.as_deref().or(shard_schema) {
        return Some(TableName::new(s, &q.name));
    }
    let mut matches = graph.tables().into_iter().filter(|t| t.name == q.name);
    let first = matches.next()?.clone();
    matches.next().is_none().then_some(first)
}

fn show(t: &TableName) -> String {
    format!("{}.{}", t.schema, t.name)
}

/// Every table reached from `start` by cascading deletes, with its chain: `a → b (b_a_fk)`.
fn delete_reach(graph: &FkGraph, start: &TableName) -> Vec<(String, String)> {
    graph
        .cascade_reach(start)
        .iter()
        .map(|r| {
            let chain: Vec<String> = r
                .path
                .iter()
                .map(|step| format!("{} ({})", show(&step.from), step.edge.constraint))
                .collect();
            (
                show(&r.table),
                format!("{} → {}", show(start), chain.join(" → ")),
            )
        })
        .collect()
}

/// Every table `TRUNCATE ... CASCADE` on `starts` also empties (any ON DELETE action).
fn truncate_reach(graph: &FkGraph, starts: &[TableName]) -> Vec<String> {
    let mut seen: BTreeSet<TableName> = starts.iter().cloned().collect();
    let mut queue: Vec<TableName> = starts.to_vec();
    let mut out = Vec::new();
    while let Some(t) = queue.pop() {
        for r in graph.referencing(&t) {
            if seen.insert(r.from.clone()) {
                out.push(show(&r.from));
                queue.push(r.from);
            }
        }
    }
    out.sort();
    out
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl GateRule for CascadeReach {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(graph) = ctx.fk_graph() else {
            return Vec::new();
        };
        let schema = ctx.shard_schema();
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            match op {
                Operation::AddConstraint { table, .. } | Operation::AddColumn { table, .. } => {
                    let fk = match op {
                        Operation::AddConstraint { constraint, .. } => Some(&constraint.kind),
                        Operation::AddColumn { column, .. } => column.references.as_ref(),
                        _ => None,
                    };
                    let Some(ConstraintKind::ForeignKey {
                        ref_table,
                        on_delete: FkAction::Cascade,
                        ..
                    }) = fk
                    else {
                        continue;
                    };
                    if ctx.is_new_table(table, stmt.index) {
                        continue;
                    }
                    let Some(child) = resolve(graph, table, schema) else {
                        continue;
                    };
                    let parent = resolve(graph, ref_table, schema)
                        .map(|p| show(&p))
                        .unwrap_or_else(|| ref_table.to_string());
                    let mut reached =
                        vec![(show(&child), format!("{parent} → {} (new)", show(&child)))];
                    reached.extend(delete_reach(graph, &child).into_iter().map(|(t, chain)| {
                        (
                            t,
                            format!(
                                "{parent} → {} (new) → {}",
                                show(&child),
                                chain.split_once(" → ").map(|x| x.1).unwrap_or(&chain)
                            ),
                        )
                    }));
                    let names: Vec<String> = reached.iter().map(|(t, _)| t.clone()).collect();
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "after this ON DELETE CASCADE foreign key, every DELETE on `{parent}` also deletes rows in {} table{} on this shard: {}",
                                names.len(),
                                if names.len() == 1 { "" } else { "s" },
                                list(&names)
                            ),
                        )
                        .with_help("Use ON DELETE RESTRICT / NO ACTION and delete child rows explicitly, or approve after reviewing the tables reached")
                        .with_evidence(json!({
                            "trigger": format!("DELETE on {parent}"),
                            "tables": names,
                            "chains": reached.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
                        })),
                    );
                }
                Operation::Delete { table, .. } => {
                    let Some(t) = resolve(graph, table, schema) else {
                        continue;
                    };
                    let reached = delete_reach(graph, &t);
                    if reached.is_empty() {
                        continue;
                    }
                    let names: Vec<String> = reached.iter().map(|(t, _)| t.clone()).collect();
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "this DELETE on `{}` also deletes the matching rows of {} table{} through ON DELETE CASCADE on this shard: {}",
                                show(&t),
                                names.len(),
                                if names.len() == 1 { "" } else { "s" },
                                list(&names)
                            ),
                        )
                        .with_help("Delete the child rows explicitly (and in batches) first, so the statement's reach is visible and bounded")
                        .with_evidence(json!({
                            "trigger": format!("DELETE on {}", show(&t)),
                            "tables": names,
                            "chains": reached.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
                        })),
                    );
                }
                Operation::Truncate {
                    tables,
                    cascade: true,
                } => {
                    let starts: Vec<TableName> = tables
                        .iter()
                        .filter_map(|t| resolve(graph, t, schema))
                        .collect();
                    let reached = truncate_reach(graph, &starts);
                    if reached.is_empty() {
                        continue;
                    }
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "TRUNCATE ... CASCADE also empties {} more table{} on this shard, each under an ACCESS EXCLUSIVE lock that blocks all reads and writes: {}",
                                reached.len(),
                                if reached.len() == 1 { "" } else { "s" },
                                list(&reached)
                            ),
                        )
                        .with_help("Name every table to truncate and drop CASCADE, so the statement fails instead of emptying tables nobody listed")
                        .with_evidence(json!({
                            "trigger": "TRUNCATE CASCADE",
                            "tables": reached,
                        })),
                    );
                }
                Operation::DropTable {
                    table,
                    cascade: true,
                    ..
                } => {
                    let Some(t) = resolve(graph, table, schema) else {
                        continue;
                    };
                    let refs = graph.referencing(&t);
                    let refs: Vec<String> = refs
                        .iter()
                        .filter(|r| r.from != t)
                        .map(|r| format!("{} ({})", show(&r.from), r.edge.constraint))
                        .collect();
                    if refs.is_empty() {
                        continue;
                    }
                    out.push(
                        ctx.finding(
                            self,
                            stmt,
                            format!(
                                "DROP TABLE ... CASCADE on `{}` also drops {} foreign key{} of other tables on this shard: {}",
                                show(&t),
                                refs.len(),
                                if refs.len() == 1 { "" } else { "s" },
                                refs.join(", ")
                            ),
                        )
                        .with_help("Drop the referencing foreign keys explicitly first (ALTER TABLE ... DROP CONSTRAINT), then drop the table without CASCADE")
                        .with_evidence(json!({
                            "trigger": format!("DROP TABLE {} CASCADE", show(&t)),
                            "foreign_keys": refs,
                        })),
                    );
                }
                _ => {}
            }
        }
        out
    }
}
