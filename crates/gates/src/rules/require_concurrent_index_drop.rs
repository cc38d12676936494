use migration_parser::{LockMode, Operation};

use super::{insert_after_keyword, lock_on};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `DROP INDEX` without `CONCURRENTLY`, unless the index was created earlier in the
    /// migration on a table the migration also created.
    ///
    /// ## Why is this bad?
    /// A plain `DROP INDEX` takes an `ACCESS EXCLUSIVE` lock on the index's table, on every
    /// PostgreSQL version. To get it, it first waits for every running query on the table; while
    /// it waits, all later reads and writes of the table queue behind it. The drop itself is
    /// quick, the queue is the outage.
    ///
    /// Severity **yellow**: it succeeds, but can stall all traffic to the table.
    ///
    /// ## Safe alternative
    /// Drop it concurrently, outside a transaction block (one index per statement, no `CASCADE`):
    /// ```sql
    /// DROP INDEX CONCURRENTLY IF EXISTS orders_legacy_idx;
    /// ```
    pub struct RequireConcurrentIndexDrop {
        code: "DC102",
        name: "require-concurrent-index-drop",
        severity: Yellow,
    }
}

impl GateRule for RequireConcurrentIndexDrop {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::DropIndex {
                name,
                concurrently: false,
                ..
            } = op
            else {
                continue;
            };
            if ctx.is_new_relation(name, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, name, LockMode::AccessExclusive);
            let table = match ctx.index_table(name, stmt.index) {
                Some(t) => format!("its table `{t}`"),
                None => "its table".to_string(),
            };
            let fixed = insert_after_keyword(&super::one_line(&stmt.sql), "index", "CONCURRENTLY")
                .unwrap_or_else(|| "DROP INDEX CONCURRENTLY ...".into());
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "DROP INDEX `{name}` takes {} on {table} that blocks {} until the drop commits; it first \
                         waits for every running query on the table, and all later queries queue behind it",
                        super::a_lock(lock),
                        lock.blocks()
                    ),
                )
                .with_help(format!(
                    "Drop it with DROP INDEX CONCURRENTLY outside a transaction block: `{fixed};`"
                )),
            );
        }
        out
    }
}
