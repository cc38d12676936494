use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: lists the migration's steps that the rollback cannot undo without losing data
    /// — dropped columns and tables (the structure comes back, the values do not), `TRUNCATE`,
    /// `UPDATE`/`DELETE`, added enum values (PostgreSQL cannot drop one), procedural code —
    /// one finding per step, at the statement.
    ///
    /// ## Why is this bad?
    /// If the deploy goes wrong after these steps, "roll back" restores the schema but not the
    /// data: the application comes back to empty columns or missing rows. The rollback that
    /// deployclaw proves on the shadow checks the catalog, not the lost values.
    ///
    /// Severity **yellow**: the migration succeeds, but the way back loses data; a human must
    /// accept that (and usually keep a copy first).
    ///
    /// ## Safe alternative
    /// Keep a copy of what the step destroys before running it, and make the data change
    /// reversible (expand/contract: stop using the column first, drop it later):
    /// ```sql
    /// CREATE TABLE users_legacy_flags_backup AS SELECT id, legacy_flags FROM users;
    /// ALTER TABLE users DROP COLUMN legacy_flags;
    /// ```
    pub struct RollbackIrreversible {
        code: "DC317",
        name: "rollback-irreversible",
        severity: Yellow,
        scope: Shard,
    }
}

impl GateRule for RollbackIrreversible {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(rb) = ctx.rollback() else {
            return Vec::new();
        };
        rb.irreversible
            .iter()
            .map(|step| {
                ctx.shard_finding(
                    self,
                    Some(step.statement),
                    format!(
                        "the rollback cannot undo this step without losing data: {}",
                        step.reason
                    ),
                )
                .with_help(
                    "Keep a copy of the affected data before running it (e.g. `CREATE TABLE <table>_backup AS SELECT ...`), \
                     and approve knowing that a rollback restores the structure only",
                )
                .with_evidence(json!({
                    "statement": step.statement,
                    "reason": step.reason,
                    "rollback_tested": rb.tested,
                }))
            })
            .collect()
    }
}
