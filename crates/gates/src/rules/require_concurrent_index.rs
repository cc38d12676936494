use migration_parser::{LockMode, Operation};

use super::{insert_after_keyword, lock_on, lock_phrase};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `CREATE INDEX` without `CONCURRENTLY` on a table that existed before the migration.
    ///
    /// ## Why is this bad?
    /// A plain `CREATE INDEX` holds a `SHARE` lock on the table for the whole index build, on
    /// every PostgreSQL version. `SHARE` blocks all writes (INSERT, UPDATE, DELETE) while reads
    /// continue; on a large table the build takes minutes and every writer queues behind it.
    ///
    /// Severity **yellow**: the statement succeeds, but the write outage needs a human's approval.
    ///
    /// ## Safe alternative
    /// Build the index concurrently, outside a transaction block. It takes only
    /// `SHARE UPDATE EXCLUSIVE`, which blocks neither reads nor writes:
    /// ```sql
    /// CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);
    /// ```
    /// If the build fails it leaves an `INVALID` index: drop it with `DROP INDEX CONCURRENTLY`
    /// and retry. Indexes on tables created earlier in the same migration need nothing.
    pub struct RequireConcurrentIndex {
        code: "DC101",
        name: "require-concurrent-index",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for RequireConcurrentIndex {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::CreateIndex {
                table,
                concurrently: false,
                only: false,
                ..
            } = op
            else {
                continue;
            };
            if ctx.is_new_table(table, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, table, LockMode::Share);
            let fixed = insert_after_keyword(&super::one_line(&stmt.sql), "index", "CONCURRENTLY")
                .unwrap_or_else(|| "CREATE INDEX CONCURRENTLY ...".into());
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "CREATE INDEX on `{table}` takes {} for the whole index build",
                        lock_phrase(lock, table)
                    ),
                )
                .with_help(format!(
                    "Build it with CREATE INDEX CONCURRENTLY outside a transaction block \
                     (takes SHARE UPDATE EXCLUSIVE, which blocks neither reads nor writes): `{fixed};`"
                )),
            );
        }
        out
    }
}
