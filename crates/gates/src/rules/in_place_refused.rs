use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard, with `--rehearse in-place` only: reports every statement the in-place
    /// rehearsal refused to run on the target, with the reason, and says that the shard's schema
    /// shape was therefore rehearsed on the shadow instead. Before the in-place transaction
    /// starts, every statement is checked on the shard: only typed, transactional statements
    /// whose every function call is proven free of lasting effects (as the name resolves on the
    /// shard), and data changes of tables without sequence-backed columns, triggers, rules or
    /// row-level security, may run there. One refused statement is enough to run none of them
    /// in place (later statements depend on earlier ones).
    ///
    /// ## Why is this bad?
    /// Rolling back a transaction does not undo everything: an `INSERT` into a `serial` or
    /// identity table advances its sequence, `setval` resets one, a replication slot created by
    /// `pg_create_physical_replication_slot` retains WAL until the disk fills,
    /// `pg_terminate_backend` ends application sessions, advisory locks outlive savepoints,
    /// `COPY … TO PROGRAM` runs a program on the database server, `pg_stat_reset` loses
    /// statistics, `lo_create` leaves a large object. deployclaw never runs such a statement on
    /// a target, so the evidence you asked for — the real locks and timings of the real shard —
    /// does not exist for this shape: the rehearsal ran on a copy of the structure, without the
    /// data, and the statement's effect on production is what the migration will really do.
    ///
    /// Severity **yellow**: the shard was still rehearsed (on the shadow) and probed; a human
    /// should read the refused statements, which will run on production unchecked.
    ///
    /// ## Safe alternative
    /// Keep non-transactional work out of schema migrations — run it as a separate, reviewed
    /// operational step — and let a data change not depend on a sequence default when it must
    /// be rehearsed in place:
    /// ```sql
    /// -- schema migration, rehearsed in place
    /// ALTER TABLE orders ADD COLUMN note text;
    /// -- operational step, run by hand after review (not in the migration):
    /// -- SELECT setval('orders_id_seq', (SELECT max(id) FROM orders));
    /// ```
    pub struct InPlaceRefused {
        code: "DC505",
        name: "in-place-refused",
        severity: Yellow,
        scope: Shard,
    }
}

impl GateRule for InPlaceRefused {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(r) = ctx.rehearsal() else {
            return Vec::new();
        };
        r.in_place_refused
            .iter()
            .map(|x| {
                ctx.shard_finding(
                    self,
                    Some(x.index),
                    format!(
                        "not rehearsed in place (line {}, `{}`): {}. No statement of this shape ran \
                         on the target: it was rehearsed on the shadow instead (the structure of shard \
                         `{}`, without its data)",
                        x.line,
                        x.statement,
                        x.reasons.join("; "),
                        r.shard
                    ),
                )
                .with_help(
                    "Move non-transactional work (sequences, replication slots, sessions, advisory locks, \
                     COPY, notifications, large objects, DO blocks) out of the migration into a reviewed \
                     operational step, or accept the shadow rehearsal's evidence for this shape",
                )
                .with_evidence(json!({
                    "statement": x.index,
                    "line": x.line,
                    "reasons": x.reasons,
                    "representative_shard": r.shard,
                    "rehearsed_on": "shadow",
                }))
            })
            .collect()
    }
}
