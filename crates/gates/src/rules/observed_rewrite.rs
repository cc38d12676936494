use serde_json::json;

use super::a_lock;
use super::shard_support::fmt_bytes;
use crate::observed::{
    observed_lock_on, on_this_shard, place, pre_existing_rewrites, predicted, succeeded, table_like,
};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports a table the rehearsal of the shard's schema shape saw rewritten — its
    /// `relfilenode` changed — by a statement the static knowledge did not expect to rewrite it:
    /// a statement the parser cannot type (`DO` blocks, function calls, unparsed statements), a
    /// type change or an `ADD COLUMN` the knowledge table judges wrongly. The finding names the
    /// statement, the table, the lock the rehearsal held on it (`pg_locks`) and what that lock
    /// blocks, and the table's size on this shard.
    ///
    /// Evidence wins over prediction: what PostgreSQL did on a copy of this shard's structure
    /// is reported even when no static rule fired. The converse — a static rule predicted a
    /// rewrite the rehearsal did not see — demotes that rule's finding to info
    /// (`Registry::demote_unobserved_rewrites`).
    ///
    /// ## Why is this bad?
    /// A rewrite copies every row and rebuilds every index while holding an `ACCESS EXCLUSIVE`
    /// lock: all reads and writes of the table wait for a time proportional to its size, which
    /// differs on every shard. Nobody reviewing the migration was told, because the statement
    /// does not look like a rewrite.
    ///
    /// Severity **yellow**: it succeeds, but blocks the table for the rewrite; the gate is never
    /// GREEN on a rewrite nobody predicted. Not demoted within the lock budget.
    ///
    /// ## Safe alternative
    /// Write the change so the rewrite is visible and avoidable: a plain `ALTER TABLE` instead of
    /// a `DO` block, and the expand/contract form for type changes:
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN amount_new numeric(12,2);
    /// -- backfill in batches, switch the application, then:
    /// ALTER TABLE orders DROP COLUMN amount;
    /// ```
    pub struct ObservedRewrite {
        code: "DC208",
        name: "observed-rewrite",
        severity: Yellow,
        scope: Shard,
    }
}

impl GateRule for ObservedRewrite {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(r) = ctx.rehearsal() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for index in r.statements.iter().map(|s| s.index) {
            let Some(st) = succeeded(r, index) else {
                continue;
            };
            let unpredicted: Vec<&str> = pre_existing_rewrites(r, st)
                .into_iter()
                .filter(|rel| table_like(st, rel) && !predicted(ctx, index, rel).1)
                .collect();
            for rel in unpredicted {
                out.push(self.finding(ctx, r, st, rel));
            }
        }
        out
    }
}

impl ObservedRewrite {
    fn finding(
        &self,
        ctx: &RuleContext<'_>,
        r: &evidence::RehearsalResult,
        st: &evidence::StatementRehearsal,
        rel: &str,
    ) -> Finding {
        let name = on_this_shard(ctx, r, rel);
        let lock = observed_lock_on(st, rel);
        let held = match lock {
            Some(m) => format!(" while holding {} that blocks {}", a_lock(m), m.blocks()),
            None => String::new(),
        };
        let size = name
            .split_once('.')
            .and_then(|(s, t)| ctx.table_stats(s, t))
            .map(|t| format!(" (`{name}` is {} on this shard)", fmt_bytes(t.total_bytes)))
            .unwrap_or_default();
        let why = match ctx.statement(st.index).map(|s| s.operations.as_slice()) {
            Some([]) | None => "the statement has no typed operation the static rules could judge",
            Some(_) => "the static knowledge did not predict a rewrite for this statement",
        };
        let stmt = ctx
            .statement(st.index)
            .map(|s| s.sql.lines().next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        ctx.shard_finding(
            self,
            Some(st.index),
            format!(
                "this statement rewrote `{name}` {}: its relfilenode changed{held}{size}; \
                 {why}",
                place(r),
            ),
        )
        .with_help(
            "Rewrite the change so it does not rewrite the table (expand/contract: new column, batched backfill, switch, \
             drop), or run it in an approved maintenance window; a DO block or function hides the rewrite from review",
        )
        .with_evidence(json!({
            "statement": st.index,
            "line": st.line,
            "sql": stmt,
            "relation": name,
            "rehearsed_relation": rel,
            "lock": lock.map(|m| m.sql_name()),
            "blocks": lock.map(|m| m.blocks()),
            "observed": "relfilenode changed",
            "rehearsal": r.fingerprint,
            "mode": r.mode,
        }))
    }
}
