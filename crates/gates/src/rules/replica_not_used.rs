use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard, with `--probe-on replica`: reports that the shard's data probes (orphans,
    /// NULLs, duplicates, casts, row estimates, custom probes) ran on its writer instead of a
    /// read replica, and why — the writer has no replica in the fleet (`replica_of`, RDS read
    /// replicas, Aurora readers), or every replica was unreachable, not in recovery, or lagging
    /// more than `[probes] max_replica_lag` (default 5 s) behind the writer.
    ///
    /// ## Why is this bad?
    /// You asked to keep the scans of user rows off the writer; they ran there anyway, on the
    /// production primary, while it serves traffic. The verdicts are still sound — the writer
    /// holds the newest data — so this is information, not a reason to stop: the fallback is
    /// said, never silent. A lagging replica is refused because its rows are older than the
    /// writer's: a row a probe would have caught could be missing there.
    ///
    /// Severity **info**.
    ///
    /// ## Safe alternative
    /// Name the replica in the topology (`replica_of = "writer"`), make it reachable with the
    /// gate's role, or raise `[probes] max_replica_lag` if a staler read is acceptable. To see
    /// a replica's lag:
    /// ```sql
    /// SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(),
    ///        now() - pg_last_xact_replay_timestamp() AS since_last_replayed_commit;
    /// ```
    pub struct ReplicaNotUsed {
        code: "DC407",
        name: "replica-not-used",
        severity: Info,
        scope: Shard,
    }
}

impl GateRule for ReplicaNotUsed {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(read) = ctx.shard_evidence().and_then(|e| e.live.replica.as_ref()) else {
            return Vec::new();
        };
        let Some(reason) = &read.refused else {
            return Vec::new();
        };
        let shard = ctx.shard_id().unwrap_or("this shard");
        vec![
            ctx.shard_finding(
                self,
                None,
                format!("the data probes of shard `{shard}` ran on its writer, not on a read replica: {reason}"),
            )
            .with_help(
                "Name a replica of the writer (`replica_of`), make it reachable, or raise `[probes] \
                 max_replica_lag`; the verdicts stand (the writer holds the newest rows)",
            )
            .with_evidence(json!({
                "shard": shard,
                "replica": read.instance,
                "lag_ms": read.lag_ms,
                "reason": reason,
            })),
        ]
    }
}
