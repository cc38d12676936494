use serde_json::json;

use crate::{Finding, GateRule, RollbackEvidence, RuleContext, RuleMeta, declare_rule};
use evidence::ProofStatus;

declare_rule! {
    /// ## What it does
    /// Per shard: reports a rollback supplied by the user (`--rollback-file`) that was
    /// proven on the shadow — migration forward, then rollback — and did **not** bring the
    /// catalog back to what it was: every remaining difference is listed (object, what
    /// differs, before and after), as is a rollback statement that failed (with SQLSTATE).
    /// Differences in column order alone are not counted (PostgreSQL cannot reorder columns).
    /// The proof runs once per schema shape, and every shard of the shape gets its result: a
    /// drifted shard is judged by its own proof. A rollback that could not be proven is not
    /// judged here (`rollback-unproven`, yellow, says why), nor is one deployclaw generated: a
    /// wrong generated rollback is deployclaw's failure, not the migration's, and is reported
    /// by `rollback-unproven` (yellow).
    ///
    /// ## Why is this bad?
    /// The report would otherwise promise a way back that does not exist: after a rollback the
    /// schema would still differ (a constraint missing, an index left behind, a column of the
    /// wrong type), and the application version you roll back to may fail against it — or the
    /// rollback itself errors half-way, leaving the shard in a third state.
    ///
    /// Severity **red**: without a working rollback the migration must not ship unapproved.
    ///
    /// ## Safe alternative
    /// Fix the rollback script until forward → rollback leaves the catalog unchanged (the
    /// differences say what is missing), e.g. restore a dropped constraint as it was:
    /// ```sql
    /// ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;
    /// ```
    pub struct RollbackMismatch {
        code: "DC318",
        name: "rollback-mismatch",
        severity: Red,
        scope: Shard,
    }
}

/// How many differences the message lists (the evidence has them all).
const LISTED: usize = 8;

/// The failed rollback statement and the first [`LISTED`] differences, for a message: from the
/// shape's proof when there is one (its differences start with the failed statement), else
/// from `rollback_error` and `mismatches`.
pub(super) fn what_remains(rb: &RollbackEvidence) -> String {
    let mut parts = Vec::new();
    let differences: &[String] = match &rb.proof {
        Some(p) => &p.differences,
        None => {
            if let Some(e) = &rb.rollback_error {
                parts.push(format!("a rollback statement failed: {e}"));
            }
            &rb.mismatches
        }
    };
    if !differences.is_empty() {
        let listed: Vec<&str> = differences
            .iter()
            .take(LISTED)
            .map(String::as_str)
            .collect();
        let more = differences.len().saturating_sub(LISTED);
        let mut s = format!(
            "{} difference{} remain after forward → rollback: {}",
            differences.len(),
            if differences.len() == 1 { "" } else { "s" },
            listed.join("; ")
        );
        if more > 0 {
            s.push_str(&format!("; and {more} more"));
        }
        parts.push(s);
    }
    parts.join("; ")
}

/// The proof facts every rollback finding carries: the shape proven, its representative shard
/// and the proof's duration (the shard recovery time).
pub(super) fn proof_facts(rb: &RollbackEvidence) -> serde_json::Value {
    match &rb.proof {
        Some(p) => json!({
            "outcome": p.outcome,
            "schema_fingerprint": p.schema_fingerprint,
            "representative_shard": p.representative_shard,
            "recovery_time_ms": p.duration_ms,
        }),
        None => serde_json::Value::Null,
    }
}

impl GateRule for RollbackMismatch {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(rb) = ctx.rollback() else {
            return Vec::new();
        };
        if rb.generated || rb.status() != Some(ProofStatus::Mismatch) {
            return Vec::new();
        }
        vec![
            ctx.shard_finding(
                self,
                None,
                format!(
                    "the proven rollback does not restore the catalog: {}",
                    what_remains(rb)
                ),
            )
            .with_help(
                "Fix the rollback until forward → rollback leaves the catalog unchanged (`deployclaw rollback generate` \
                 prints the generated script to start from), then re-run the gate",
            )
            .with_evidence(json!({
                "tested": rb.tested,
                "mismatches": rb.mismatches,
                "rollback_error": rb.rollback_error,
                "proof": proof_facts(rb),
            })),
        ]
    }
}
