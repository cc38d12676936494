use serde_json::json;

use super::rollback_mismatch::{proof_facts, what_remains};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};
use evidence::ProofStatus;

declare_rule! {
    /// ## What it does
    /// Per shard, with `--validate-rollback`: reports that the shard has **no proven
    /// rollback**, for one of two reasons (the proof runs once per schema shape; every shard of
    /// the shape gets its result):
    ///
    /// * the proof could not be carried out on the shard's shape — the forward migration failed
    ///   on the shadow, the shard's schema could not be cloned, an extension the shard uses is
    ///   missing on the shadow's server, ... — and the finding says why;
    /// * the rollback deployclaw *generated* was proven on the shadow — migration forward, then
    ///   the generated rollback — and did not bring the catalog back (a difference remained, or
    ///   a rollback statement failed): "no proven rollback — supply one", with the differences
    ///   listed as `rollback-mismatch` lists them.
    ///
    /// The report's `safety_gates.rollback_tested` is false. A wrong *generated* rollback is
    /// deployclaw's failure, not the migration's: the migration may be perfectly safe, so this
    /// never makes a shard red. A rollback you supply (`--rollback-file`) that does not restore
    /// the catalog is `rollback-mismatch` (red).
    ///
    /// ## Why is this bad?
    /// There is no tested way back: if the release has to be rolled back, nobody knows whether
    /// the script restores the schema (or stops half-way), and someone has to find out under
    /// pressure.
    ///
    /// Severity **yellow**: never GREEN; the migration needs a human look at how it would be
    /// undone.
    ///
    /// ## Safe alternative
    /// Write the rollback yourself, starting from `deployclaw rollback generate` and the
    /// differences listed, and pass it with `--rollback-file`: it is then proven on the shadow
    /// and judged by `rollback-mismatch`. When the proof could not run, remove the cause (e.g.
    /// install the missing extension on the machine running the gate). For example, restore
    /// what the generated script missed:
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
        let message = match rb.status() {
            Some(ProofStatus::NotProven) => format!(
                "no proven rollback: the {} rollback could not be proven on this shard's schema shape: {}",
                if rb.generated {
                    "generated"
                } else {
                    "supplied"
                },
                rb.proof
                    .as_ref()
                    .and_then(|p| p.reason.as_deref())
                    .unwrap_or("the proof did not run")
            ),
            Some(ProofStatus::Mismatch) if rb.generated => format!(
                "no proven rollback — supply one (--rollback-file): the generated rollback does not restore the catalog: {}",
                what_remains(rb)
            ),
            _ => return Vec::new(),
        };
        vec![
            ctx.shard_finding(self, None, message)
                .with_help(
                    "Write the rollback (start from `deployclaw rollback generate` and the differences listed) and pass it \
                     with `--rollback-file`, so it is proven on the shadow; when the proof could not run, remove its cause",
                )
                .with_evidence(json!({
                    "generated": rb.generated,
                    "tested": rb.tested,
                    "mismatches": rb.mismatches,
                    "rollback_error": rb.rollback_error,
                    "proof": proof_facts(rb),
                })),
        ]
    }
}
