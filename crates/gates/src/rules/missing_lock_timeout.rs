use migration_parser::{LockMode, QualifiedName};

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags a statement that takes a lock blocking reads or writes (`SHARE` or stronger) on a
    /// table that existed before the migration, when no `lock_timeout` is in effect (`SET
    /// lock_timeout` earlier in the session, or `SET LOCAL` in the same transaction). A statement
    /// re-locking a table its transaction already holds at that mode or stronger is not flagged:
    /// it does not wait again.
    ///
    /// ## Why is this bad?
    /// Even an instant change such as `ADD COLUMN` (nullable) needs an `ACCESS EXCLUSIVE` lock.
    /// If any long-running query or idle-in-transaction session holds a lock on the table, the
    /// `ALTER` waits — and every later query on the table queues behind the waiting `ALTER`,
    /// so a millisecond change becomes an outage as long as the longest running transaction.
    /// Every PostgreSQL version.
    ///
    /// Severity **yellow**: it usually succeeds, but can stall all traffic to the table.
    ///
    /// ## Safe alternative
    /// Give up quickly instead of queueing, and retry:
    /// ```sql
    /// SET lock_timeout = '2s';
    /// ALTER TABLE users ADD COLUMN locale text;
    /// ```
    pub struct MissingLockTimeout {
        code: "DC501",
        name: "missing-lock-timeout",
        severity: Yellow,
    }
}

impl GateRule for MissingLockTimeout {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        // Locks already held by the current explicit transaction: a statement re-locking a table
        // its transaction already holds at that mode or stronger does not wait again.
        let mut held: Vec<(usize, QualifiedName, LockMode)> = Vec::new();
        for stmt in ctx.statements() {
            let facts: Vec<_> = stmt
                .operations
                .iter()
                .flat_map(|op| ctx.lock_facts(op))
                .collect();
            let strongest = facts
                .iter()
                .filter(|f| {
                    (f.mode.blocks_writes() || f.mode.blocks_reads())
                        && !ctx.is_new_relation(&f.relation, stmt.index)
                        && !held.iter().any(|(tx, rel, mode)| {
                            *tx == stmt.tx.transaction
                                && *mode >= f.mode
                                && crate::same_name(
                                    rel,
                                    &ctx.table_identity(&f.relation, stmt.index),
                                )
                        })
                })
                .max_by_key(|f| f.mode)
                .cloned();
            if stmt.tx.in_block {
                for f in &facts {
                    held.push((
                        stmt.tx.transaction,
                        ctx.table_identity(&f.relation, stmt.index),
                        f.mode,
                    ));
                }
            }
            if stmt.settings.lock_timeout_ms.is_some() {
                continue;
            }
            let Some(fact) = strongest else {
                continue;
            };
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "This statement waits for {} on `{}` with no lock_timeout: while it waits behind any running transaction, \
                         {} on `{}` queue behind it",
                        super::a_lock(fact.mode),
                        fact.relation,
                        fact.mode.blocks(),
                        fact.relation
                    ),
                )
                .with_help(
                    "Set a lock timeout before it and retry on timeout: `SET lock_timeout = '2s';` at the top of the \
                     file (or `SET LOCAL lock_timeout = '2s';` inside the transaction)",
                ),
            );
        }
        out
    }
}
