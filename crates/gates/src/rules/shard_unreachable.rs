use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports a shard that could not be reached or read (connection refused,
    /// authentication failure, introspection error, connection lost mid-run), with the reason.
    /// A shard whose probes did not all finish (shard timeout) is reported as yellow.
    ///
    /// ## Why is this bad?
    /// Nothing was checked on that shard — not its data (orphans, NULLs, duplicates), not its
    /// schema (drift), not its table sizes (lock time) — so the migration's effect there is
    /// unknown. Shipping anyway means running an unverified migration on a production tenant;
    /// and a shard that is unreachable now will also miss the migration and drift.
    ///
    /// Severity **red**: the gate cannot vouch for a shard it could not check (yellow when the
    /// probes ran only in part).
    ///
    /// ## Safe alternative
    /// Fix connectivity or credentials and re-run the gate; or take the shard out of the
    /// target explicitly and migrate it later. To check that deployclaw can read it:
    /// ```sql
    /// SELECT current_user, current_database(), pg_is_in_recovery();
    /// ```
    pub struct ShardUnreachable {
        code: "DC404",
        name: "shard-unreachable",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for ShardUnreachable {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let shard = ctx.shard_id().unwrap_or("this shard");
        if let Some(reason) = ctx.unreachable() {
            return vec![
                ctx.shard_finding(
                    self,
                    None,
                    format!(
                        "shard `{shard}` could not be reached or read, so nothing was checked on it: {reason}"
                    ),
                )
                .with_help(
                    "Fix connectivity or credentials and re-run the gate, or exclude the shard from the target \
                     explicitly and migrate it later",
                )
                .with_evidence(json!({ "shard": shard, "instance": ctx.instance(), "reason": reason })),
            ];
        }
        if let Some(incomplete) = ctx.shard_evidence().and_then(|e| e.incomplete.as_deref()) {
            return vec![
                ctx.shard_finding(
                    self,
                    None,
                    format!(
                        "not every probe finished on shard `{shard}`, so its evidence is incomplete: {incomplete}"
                    ),
                )
                .with_severity(Severity::Yellow)
                .with_help("Re-run with a longer shard timeout (or off-peak) before approving")
                .with_evidence(json!({ "shard": shard, "incomplete": incomplete })),
            ];
        }
        Vec::new()
    }
}
