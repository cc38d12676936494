use migration_parser::{LockMode, Operation};

use super::{a_lock, lock_on};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `TRUNCATE` of a table that existed before the migration.
    ///
    /// ## Why is this bad?
    /// `TRUNCATE` deletes every row on every shard, cannot be undone once committed, fires no
    /// `DELETE` triggers, and with `CASCADE` empties every table that references it. It takes an
    /// `ACCESS EXCLUSIVE` lock. A schema migration is the wrong place for it. Every PostgreSQL
    /// version.
    ///
    /// Severity **red**: irreversible data loss needs explicit approval.
    ///
    /// ## Safe alternative
    /// Delete the rows you mean to delete, in batches, outside the schema migration — or, if the
    /// table really must be emptied, do it as an approved, separate operation:
    /// ```sql
    /// DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < now() LIMIT 5000);
    /// ```
    pub struct BanTruncate {
        code: "DC305",
        name: "ban-truncate",
        severity: Red,
    }
}

impl GateRule for BanTruncate {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::Truncate { tables, cascade } = op else {
                continue;
            };
            let existing: Vec<_> = tables
                .iter()
                .filter(|t| ctx.is_existing_table(t, stmt.index))
                .collect();
            let Some(first) = existing.first() else {
                continue;
            };
            let names: Vec<String> = existing.iter().map(|t| format!("`{t}`")).collect();
            let lock = lock_on(ctx, op, first, LockMode::AccessExclusive);
            let cascade = if *cascade {
                ", and CASCADE empties every table that references it"
            } else {
                ""
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "TRUNCATE deletes every row of {} on every shard (not recoverable after commit){cascade}; it takes {} \
                         that blocks {}",
                        names.join(", "),
                        a_lock(lock),
                        lock.blocks()
                    ),
                )
                .with_help(
                    "Delete only the rows you mean to, in batches, outside the schema migration; or get explicit \
                     approval (`-- deployclaw:ignore ban-truncate`)",
                ),
            );
        }
        out
    }
}
