use migration_parser::{LockMode, Operation};

use super::{ident, lock_on, lock_phrase, qname};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... SET NOT NULL` on an existing table, unless (on PostgreSQL 12+) a
    /// validated `CHECK (col IS NOT NULL)` constraint was added earlier in the migration.
    ///
    /// ## Why is this bad?
    /// `SET NOT NULL` takes an `ACCESS EXCLUSIVE` lock and scans the whole table to prove there
    /// are no NULLs, blocking all reads and writes for the scan. Since PostgreSQL 12 the scan is
    /// skipped when a valid `CHECK (col IS NOT NULL)` constraint already proves it; before 12 it
    /// always scans.
    ///
    /// Severity **yellow**: it succeeds when there are no NULLs, but blocks all traffic for the
    /// scan (NULLs that would make it fail are reported per shard by `not-null-violations`).
    ///
    /// ## Safe alternative
    /// On PostgreSQL 12+, prove it with a `NOT VALID` check validated in a separate transaction,
    /// then set `NOT NULL` (no scan) and drop the check:
    /// ```sql
    /// ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
    /// -- separate transaction:
    /// ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
    /// ALTER TABLE users ALTER COLUMN email SET NOT NULL;
    /// ALTER TABLE users DROP CONSTRAINT users_email_not_null;
    /// ```
    /// On PostgreSQL 11 and older, keep the validated `CHECK` constraint instead of `NOT NULL`,
    /// or accept the scan in a maintenance window.
    pub struct SettingNotNull {
        code: "DC105",
        name: "setting-not-null",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for SettingNotNull {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let pg12 = ctx.pg_version().0 >= 12;
        for (stmt, op) in ctx.operations() {
            let Operation::SetNotNull { table, column } = op else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index)
                || (pg12 && ctx.not_null_proven(table, column, stmt.index))
            {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::AccessExclusive);
            let (t, c) = (qname(table), ident(column));
            let cons = ident(&format!("{}_{}_not_null", table.name, column));
            let help = if pg12 {
                format!(
                    "Prove it first with a CHECK validated in a separate transaction, then SET NOT NULL skips the scan: \
                     `ALTER TABLE {t} ADD CONSTRAINT {cons} CHECK ({c} IS NOT NULL) NOT VALID;` then \
                     `ALTER TABLE {t} VALIDATE CONSTRAINT {cons};` then this statement, then \
                     `ALTER TABLE {t} DROP CONSTRAINT {cons};`"
                )
            } else {
                format!(
                    "PostgreSQL {} always scans for SET NOT NULL: keep a validated \
                     `CHECK ({c} IS NOT NULL)` constraint (added NOT VALID, validated separately) instead, \
                     or run this in a maintenance window",
                    ctx.pg_version()
                )
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "SET NOT NULL on `{table}`.`{column}` takes {} while it scans every row for NULLs",
                        lock_phrase(lock, table)
                    ),
                )
                .with_help(help),
            );
        }
        out
    }
}
