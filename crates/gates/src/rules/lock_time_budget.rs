use migration_parser::{ConstraintKind, LockMode, Operation};
use serde_json::json;

use super::a_lock;
use super::shard_support::{fmt_bytes, fmt_count, fmt_ms};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: flags every statement whose estimated blocking-lock time on this shard is over
    /// the budget (`[lock_budget] max_blocking_ms`, default 5000 ms). The simulator's estimate
    /// combines the locks the rehearsal observed (`pg_locks`), the rewrites it saw
    /// (`relfilenode`) and this shard's own table sizes; the message names the statement, the
    /// lock, the table, its size and the estimate. Statements of one `BEGIN ... COMMIT` block
    /// are judged one by one, but a lock taken early in a block stays held — and counted — for
    /// the later statements.
    ///
    /// ## Why is this bad?
    /// While a statement holds `ACCESS EXCLUSIVE` (table rewrite, `ADD CHECK`, `SET NOT NULL`
    /// scan) no query can read or write the table; under `SHARE` (`CREATE INDEX`) or
    /// `SHARE ROW EXCLUSIVE` (`ADD FOREIGN KEY`) no row can be written. Requests queue behind
    /// the lock, connection pools fill up and the application times out. The same statement is
    /// harmless on a 4 MB tenant and an outage on a 40 GB one, which is why the budget is
    /// checked per shard. The estimate is an order of magnitude (see the simulator's model).
    ///
    /// Severity **yellow**: the migration would succeed, but blocks traffic for longer than
    /// the budget; a human must approve the window.
    ///
    /// ## Safe alternative
    /// Use the form that does not hold a blocking lock for the work, or schedule a window:
    /// ```sql
    /// CREATE INDEX CONCURRENTLY orders_created_idx ON orders (created_at);
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
    /// ```
    pub struct LockTimeBudget {
        code: "DC110",
        name: "lock-time-budget",
        severity: Yellow,
        scope: Shard,
    }
}

/// The non-blocking way to do what `op` does.
fn help_for(op: Option<&Operation>) -> String {
    let specific = match op {
        Some(Operation::CreateIndex {
            concurrently: false,
            ..
        }) => Some(
            "build the index with CREATE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes continue)",
        ),
        Some(Operation::AddConstraint { constraint, .. }) => match &constraint.kind {
            ConstraintKind::ForeignKey { .. } | ConstraintKind::Check { .. }
                if !constraint.not_valid =>
            {
                Some(
                    "add the constraint NOT VALID (brief lock) and VALIDATE CONSTRAINT it in a separate transaction (SHARE UPDATE EXCLUSIVE)",
                )
            }
            ConstraintKind::Unique { .. } | ConstraintKind::PrimaryKey { .. } => Some(
                "build the index with CREATE UNIQUE INDEX CONCURRENTLY and attach it with ADD CONSTRAINT ... USING INDEX",
            ),
            _ => None,
        },
        Some(Operation::SetNotNull { .. }) => Some(
            "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ skips the scan)",
        ),
        Some(Operation::AlterColumnType { .. }) => Some(
            "add a new column of the new type, backfill it in batches, switch the application, then drop the old column",
        ),
        _ => None,
    };
    let tail = "run it in an approved maintenance window, or raise `[lock_budget] max_blocking_ms` after approval";
    match specific {
        Some(s) => format!("To avoid the long lock, {s}; otherwise {tail}"),
        None => format!("Split the work into smaller steps or {tail}"),
    }
}

impl GateRule for LockTimeBudget {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(ev) = ctx.shard_evidence() else {
            return Vec::new();
        };
        let Some(estimate) = &ev.estimate else {
            return Vec::new();
        };
        let budget = ctx.lock_budget_ms();
        let mut out = Vec::new();
        for st in &estimate.statements {
            if st.estimated_lock_ms <= budget as f64 {
                continue;
            }
            let lock = st.blocking_lock.unwrap_or(LockMode::AccessExclusive);
            // Largest blocked relation first: that is where the time goes.
            let mut rels: Vec<(&str, Option<&evidence::TableStats>)> = st
                .blocked_relations
                .iter()
                .map(|r| {
                    let stats = r.split_once('.').and_then(|(s, t)| ctx.table_stats(s, t));
                    (r.as_str(), stats)
                })
                .collect();
            rels.sort_by_key(|(_, s)| std::cmp::Reverse(s.map(|s| s.total_bytes).unwrap_or(0)));
            let tables: Vec<String> = rels
                .iter()
                .map(|(r, s)| match s {
                    Some(s) => {
                        let rows = s
                            .row_estimate
                            .filter(|n| *n >= 0)
                            .map(|n| format!(", ~{} rows", fmt_count(n)))
                            .unwrap_or_default();
                        format!("`{r}` ({}{rows})", fmt_bytes(s.total_bytes))
                    }
                    None => format!("`{r}`"),
                })
                .collect();
            let on = if tables.is_empty() {
                "its tables".to_string()
            } else {
                tables.join(", ")
            };
            let blocks = st
                .blocks
                .clone()
                .unwrap_or_else(|| lock.blocks().to_string());
            let op = ctx.statement(st.index).and_then(|s| s.operations.first());
            out.push(
                ctx.shard_finding(
                    self,
                    Some(st.index),
                    format!(
                        "holds {} on {on} for an estimated {} on this shard — over the {} budget — blocking {blocks} \
                         on {} for that long (basis: {})",
                        a_lock(lock),
                        fmt_ms(st.estimated_lock_ms),
                        fmt_ms(budget as f64),
                        if rels.len() == 1 { "it" } else { "them" },
                        st.basis
                    ),
                )
                .with_help(help_for(op))
                .with_evidence(json!({
                    "statement": st.index,
                    "estimated_lock_ms": st.estimated_lock_ms.round() as u64,
                    "estimated_ms": st.estimated_ms.round() as u64,
                    "budget_ms": budget,
                    "lock": lock.sql_name(),
                    "blocks": blocks,
                    "relations": rels.iter().map(|(r, s)| json!({
                        "relation": r,
                        "total_bytes": s.map(|s| s.total_bytes),
                        "row_estimate": s.and_then(|s| s.row_estimate),
                    })).collect::<Vec<_>>(),
                    "basis": st.basis,
                    "throughput_calibrated": estimate.throughput.calibrated,
                })),
            );
        }
        out
    }
}
