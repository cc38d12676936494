use serde_json::json;

use super::rollback_mismatch::what_remains;
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports that the shard has **no proven rollback** because the rollback
    /// deployclaw generated was proven on the shadow — migration forward, then the generated
    /// rollback — and did not bring the catalog back (a difference remained, or a rollback
    /// statement failed). The differences are listed as `rollback-mismatch` lists them.
    /// The report's `safety_gates.rollback_tested` is false.
    ///
    /// A wrong *generated* rollback is deployclaw's failure, not the migration's: the
    /// migration may be perfectly safe, so this never makes a shard red. A rollback you supply
    /// (`--rollback-file`) that does not restore the catalog is `rollback-mismatch` (red).
    ///
    /// ## Why is this bad?
    /// There is no tested way back: if the release has to be rolled back, the generated script
    /// would leave the schema different from before (or stop half-way), and someone has to
    /// write the rollback under pressure.
    ///
    /// Severity **yellow**: the migration needs a human look at how it would be undone.
    ///
    /// ## Safe alternative
    /// Write the rollback yourself, starting from `deployclaw rollback generate` and the
    /// differences listed, and pass it with `--rollback-file`: it is then proven on the shadow
    /// and judged by `rollback-mismatch`. For example, restore what the generated script missed:
    /// ```sql
    /// DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;
    /// ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;
    /// ```
    pub struct RollbackUnproven {
        code: "DC319",
        name: "rollback-unproven",
        severity: Yellow,
        scope: Shard,
    }
}

impl GateRule for RollbackUnproven {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(rb) = ctx.rollback() else {
            return Vec::new();
        };
        if !rb.generated || !rb.not_restored() {
            return Vec::new();
        }
        vec![
            ctx.shard_finding(
                self,
                None,
                format!(
                    "no proven rollback: the generated rollback does not restore the catalog: {}",
                    what_remains(rb)
                ),
            )
            .with_help(
                "Write the rollback (start from `deployclaw rollback generate` and the differences listed) and pass it \
                 with `--rollback-file`, so it is proven on the shadow",
            )
            .with_evidence(json!({
                "generated": true,
                "tested": rb.tested,
                "mismatches": rb.mismatches,
                "rollback_error": rb.rollback_error,
            })),
        ]
    }
}
