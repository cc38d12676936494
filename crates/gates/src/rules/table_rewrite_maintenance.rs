use migration_parser::{AlterTableAction, LockMode, Operation, QualifiedName, ReindexTarget};

use super::{lock_on, lock_phrase};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags maintenance commands that rewrite a table or its indexes under a blocking lock:
    /// `VACUUM FULL`, `CLUSTER`, `ALTER TABLE ... SET LOGGED | SET UNLOGGED | SET TABLESPACE`,
    /// and `REINDEX` without `CONCURRENTLY`.
    ///
    /// ## Why is this bad?
    /// `VACUUM FULL`, `CLUSTER` and `SET LOGGED/UNLOGGED/TABLESPACE` copy the whole table while
    /// holding `ACCESS EXCLUSIVE`, blocking all reads and writes (every PostgreSQL version).
    /// `REINDEX` holds `ACCESS EXCLUSIVE` on the index (queries that would use it block) and
    /// `SHARE` on its table (all writes block) for the rebuild. Maintenance belongs in an
    /// operator's runbook, not in a schema migration applied to every tenant.
    ///
    /// Severity **yellow**: it succeeds, but blocks traffic for a time that grows with the table.
    ///
    /// ## Safe alternative
    /// ```sql
    /// REINDEX INDEX CONCURRENTLY orders_customer_idx;  -- PostgreSQL 12+
    /// VACUUM (ANALYZE) orders;                         -- plain VACUUM does not block
    /// ```
    /// For compaction or re-clustering use `pg_repack` (online); create tables in the
    /// logged/unlogged form and tablespace they need from the start.
    pub struct TableRewriteMaintenance {
        code: "DC207",
        name: "table-rewrite-maintenance",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for TableRewriteMaintenance {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let whole_db = QualifiedName::new("(all tables)");
        for (stmt, op) in ctx.operations() {
            let (what, targets, fallback, help): (String, Vec<&QualifiedName>, LockMode, String) = match op {
                Operation::Maintenance { command, tables } if command.rewrites() => {
                    let cmd = command.words().to_uppercase();
                    let help = "Use pg_repack (online) for compaction or re-clustering; plain VACUUM does not block \
                                reads or writes"
                        .to_string();
                    let targets = if tables.is_empty() { vec![&whole_db] } else { tables.iter().collect() };
                    (format!("{cmd} rewrites"), targets, LockMode::AccessExclusive, help)
                }
                Operation::AlterTableOther { table, action }
                    if matches!(action, AlterTableAction::SetLogged | AlterTableAction::SetUnlogged | AlterTableAction::SetTablespace { .. }) =>
                {
                    (
                        format!("ALTER TABLE ... {} rewrites", action.words().to_uppercase()),
                        vec![table],
                        LockMode::AccessExclusive,
                        "Create the table in the form it needs from the start, or use pg_repack \
                         (--tablespace) to move it online"
                            .to_string(),
                    )
                }
                Operation::Reindex { target_kind, name, concurrently: false } => {
                    let help = if ctx.pg_version().0 >= 12 {
                        format!("Use REINDEX {} CONCURRENTLY outside a transaction block", target_kind.keyword())
                    } else {
                        format!(
                            "PostgreSQL {} has no REINDEX CONCURRENTLY: build a replacement with CREATE INDEX \
                             CONCURRENTLY and drop the old one with DROP INDEX CONCURRENTLY",
                            ctx.pg_version()
                        )
                    };
                    (format!("REINDEX {} rebuilds", target_kind.keyword()), vec![name], LockMode::Share, help)
                }
                _ => continue,
            };
            let targets: Vec<&QualifiedName> = targets
                .into_iter()
                .filter(|t| !ctx.is_new_relation(t, stmt.index))
                .collect();
            let Some(first) = targets.first() else {
                continue;
            };
            // REINDEX INDEX: the knowledge table reports the ACCESS EXCLUSIVE lock on the index
            // itself; the parent table is held in SHARE (PostgreSQL docs, observed on PG 15).
            let lock = match op {
                Operation::Reindex {
                    target_kind,
                    concurrently: false,
                    ..
                } if *target_kind == ReindexTarget::Index => LockMode::Share,
                _ => lock_on(ctx, op, first, fallback),
            };
            let message = match op {
                Operation::Reindex { target_kind, .. } if *target_kind == ReindexTarget::Index => {
                    format!(
                        "{what} `{first}` while holding {} that blocks {} on its table, and an ACCESS EXCLUSIVE lock on \
                     the index itself, so queries that would use it wait",
                        super::a_lock(lock),
                        lock.blocks()
                    )
                }
                _ => format!(
                    "{what} `{first}` while holding {}",
                    lock_phrase(lock, first)
                ),
            };
            out.push(ctx.finding(self, stmt, message).with_help(help));
        }
        out
    }
}
