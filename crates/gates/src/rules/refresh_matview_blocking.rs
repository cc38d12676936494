use migration_parser::{LockMode, Operation};

use super::{insert_after_keyword, lock_on, lock_phrase};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Flags `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` on a view that existed before
    /// the migration.
    ///
    /// ## Why is this bad?
    /// A plain refresh recomputes the whole view while holding an `ACCESS EXCLUSIVE` lock on it,
    /// on every PostgreSQL version: every query that reads the view waits until the refresh
    /// finishes.
    ///
    /// Severity **yellow**: it succeeds, but readers of the view stall for the refresh.
    ///
    /// ## Safe alternative
    /// Refresh concurrently. It takes an `EXCLUSIVE` lock, which lets reads continue; it needs
    /// a unique index on the view (without a `WHERE` clause):
    /// ```sql
    /// CREATE UNIQUE INDEX CONCURRENTLY daily_sales_day_key ON daily_sales (day);
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY daily_sales;
    /// ```
    pub struct RefreshMatviewBlocking {
        code: "DC107",
        name: "refresh-matview-blocking",
        severity: Yellow,
        duration: true,
    }
}

impl GateRule for RefreshMatviewBlocking {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (stmt, op) in ctx.operations() {
            let Operation::RefreshMaterializedView {
                name,
                concurrently: false,
            } = op
            else {
                continue;
            };
            if ctx.is_new_table(name, stmt.index) {
                continue;
            }
            let lock = lock_on(ctx, op, name, LockMode::AccessExclusive);
            let fixed = insert_after_keyword(&super::one_line(&stmt.sql), "view", "CONCURRENTLY")
                .unwrap_or_else(|| "REFRESH MATERIALIZED VIEW CONCURRENTLY ...".into());
            out.push(
                ctx.finding(
                    self,
                    stmt,
                    format!(
                        "REFRESH MATERIALIZED VIEW `{name}` takes {} until the refresh finishes",
                        lock_phrase(lock, name)
                    ),
                )
                .with_help(format!(
                    "Refresh it concurrently (EXCLUSIVE lock, reads continue; needs a unique index on the view): `{fixed};`"
                )),
            );
        }
        out
    }
}
