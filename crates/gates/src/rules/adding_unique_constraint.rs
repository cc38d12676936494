use migration_parser::{ConstraintKind, LockMode, Operation};

use super::{ident, lock_on, lock_phrase, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ADD CONSTRAINT ... UNIQUE (cols)` and `ADD COLUMN ... UNIQUE` on an existing table
    /// (a unique constraint whose index is built by the `ALTER TABLE` itself).
    ///
    /// ## Why is this bad?
    /// `ALTER TABLE ... ADD UNIQUE` builds the unique index while holding an `ACCESS EXCLUSIVE`
    /// lock on the table, on every PostgreSQL version: all reads and writes of the table are
    /// blocked for the whole index build, which grows with the table.
    ///
    /// Severity **yellow**: it succeeds when the data is unique, but blocks all traffic to the
    /// table (duplicates are reported per shard by `unique-violations`).
    ///
    /// ## Safe alternative
    /// Build the index concurrently, then attach it as the constraint (a catalog-only change):
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
    /// ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
    /// ```
    pub struct AddingUniqueConstraint {
        code: "DC104",
        name: "adding-unique-constraint",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for AddingUniqueConstraint {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let (table, columns, name) = match op {
                Operation::AddConstraint { table, constraint } => match &constraint.kind {
                    ConstraintKind::Unique {
                        columns,
                        using_index: None,
                        ..
                    } => (table, columns.clone(), constraint.name.clone()),
                    _ => continue,
                },
                Operation::AddColumn { table, column, .. }
                    if column.unique && !column.primary_key =>
                {
                    (table, vec![column.name.clone()], None)
                }
                _ => continue,
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            let index = name
                .clone()
                .unwrap_or_else(|| format!("{}_{}_key", table.name, columns.join("_")));
            let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "ADD UNIQUE on `{table}` builds a unique index while holding {} for the whole build",
                        lock_phrase(lock, table)
                    ),
                )
                .with_help(format!(
                    "Build the index concurrently, then attach it: `CREATE UNIQUE INDEX CONCURRENTLY {ix} ON {t} ({c});` \
                     then `ALTER TABLE {t} ADD CONSTRAINT {ix} UNIQUE USING INDEX {ix};`",
                    ix = ident(&index),
                    t = qname(table),
                    c = cols.join(", ")
                )),
            );
        }
        out
    }
}
