use serde_json::json;

use super::a_lock;
use crate::observed::{
    new_blocking_locks, on_this_shard, place, pre_existing_rewrites, predicted, succeeded,
};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports a lock that blocks writes (`SHARE` or stronger) which the rehearsal of
    /// the shard's schema shape saw a statement take (`pg_locks`, read inside the statement's
    /// transaction) on a table that existed before the migration, when the static knowledge
    /// predicted no lock that strong on that table: a statement the parser cannot type (`DO`
    /// blocks, function calls, unparsed statements), or one whose locks the knowledge table
    /// gets wrong. The finding names the statement, the table, the lock and what it blocks.
    ///
    /// Locks the statement's transaction block already held after the previous statement are
    /// not reported again; a table the statement also rewrote is reported once, by
    /// `observed-rewrite`.
    ///
    /// ## Why is this bad?
    /// Every lock review of this migration was done against the predicted locks; this one was
    /// not among them. While it is held, the writes (and for `ACCESS EXCLUSIVE` the reads) of
    /// the table wait, and everything queued behind them waits too.
    ///
    /// Severity **yellow**: the statement succeeds, but takes a blocking lock nobody reviewed;
    /// the gate is never GREEN on it. Not demoted within the lock budget.
    ///
    /// ## Safe alternative
    /// Make the lock visible and bounded: a plain statement instead of a `DO` block or function,
    /// and a short `lock_timeout` so a blocked lock request fails instead of queueing traffic:
    /// ```sql
    /// SET lock_timeout = '2s';
    /// ALTER TABLE orders ALTER COLUMN note SET STATISTICS 500;
    /// ```
    pub struct ObservedLock {
        code: "DC109",
        name: "observed-lock",
        severity: Yellow,
        scope: Shard,
    }
}

impl GateRule for ObservedLock {
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
            let rewritten = pre_existing_rewrites(r, st);
            for lock in new_blocking_locks(r, st) {
                let rel = format!("{}.{}", lock.schema, lock.relation);
                if rewritten.contains(&rel.as_str()) {
                    continue;
                }
                let (expected, _) = predicted(ctx, index, &rel);
                if expected.is_some_and(|m| m >= lock.mode) {
                    continue;
                }
                let name = on_this_shard(ctx, r, &rel);
                let knew = match expected {
                    Some(m) => format!("the static knowledge predicted only {}", a_lock(m)),
                    None => "the static knowledge predicted no lock on it".to_string(),
                };
                out.push(
                    ctx.shard_finding(
                        self,
                        Some(index),
                        format!(
                            "this statement took {} on `{name}` {} — it blocks {} on `{name}` until the \
                             transaction ends; {knew}",
                            a_lock(lock.mode),
                            place(r),
                            lock.mode.blocks(),
                        ),
                    )
                    .with_help(
                        "Review this lock as you would a predicted one: set a short lock_timeout before the statement, keep \
                         the transaction short, and write it as a plain statement (not a DO block or function) so the gate can \
                         judge it",
                    )
                    .with_evidence(json!({
                        "statement": index,
                        "line": st.line,
                        "relation": name,
                        "rehearsed_relation": rel,
                        "lock": lock.mode.sql_name(),
                        "blocks": lock.mode.blocks(),
                        "predicted": expected.map(|m| m.sql_name()),
                        "rehearsal": r.fingerprint,
                        "mode": r.mode,
                    })),
                );
            }
        }
        out
    }
}
