use migration_parser::{LockMode, Operation};

use super::{ident, lock_on, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... DROP COLUMN` on a table that existed before the migration.
    ///
    /// ## Why is this bad?
    /// The column's data is gone on every shard: a rollback can re-add the column but not its
    /// values. Application code still reading or writing the column fails as soon as the
    /// migration commits. The drop itself is quick but takes an `ACCESS EXCLUSIVE` lock, so it
    /// waits behind (and blocks) running queries. Every PostgreSQL version.
    ///
    /// Severity **red**: irreversible data loss needs explicit approval.
    ///
    /// ## Safe alternative
    /// Ship application code that no longer uses the column first, keep a copy of the data, and
    /// drop the column in a later, approved migration:
    /// ```sql
    /// CREATE TABLE users_legacy_flags_backup AS SELECT id, legacy_flags FROM users;
    /// SET lock_timeout = '2s';
    /// ALTER TABLE users DROP COLUMN legacy_flags;  -- deployclaw:ignore dropping-column after approval
    /// ```
    pub struct DroppingColumn {
        code: "DC301",
        name: "dropping-column",
        severity: Red,
    }
}

impl GateRule for DroppingColumn {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::DropColumn { table, column, .. } = op else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "DROP COLUMN `{column}` deletes that column's data from `{table}` on every shard (a rollback cannot \
                         restore it) and breaks running code that still uses it; it also takes {} on `{table}`",
                        super::a_lock(lock)
                    ),
                )
                .with_help(format!(
                    "Deploy code that no longer uses `{column}` first and keep a copy \
                     (`CREATE TABLE {backup} AS SELECT <primary key>, {c} FROM {t};`), then get approval \
                     (`-- deployclaw:ignore dropping-column`)",
                    backup = ident(&format!("{}_{}_backup", table.name, column)),
                    c = ident(column),
                    t = qname(table)
                )),
            );
        }
        out
    }
}
