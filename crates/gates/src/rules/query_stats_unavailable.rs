use std::collections::BTreeSet;

use evidence::LiveStatus;
use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

/// How many distinct reasons the message and evidence name.
const MAX_REASONS: usize = 5;

declare_rule! {
    /// ## What it does
    /// Once per run (not per shard): says that the application's own queries could not be
    /// checked against what the migration drops, renames or converts
    /// (`breaking-change-in-use`), on how many shards, and why — `pg_stat_statements` not
    /// installed in a database, not loaded by the server, or the gate's role not allowed to
    /// read other roles' query texts — with how to enable it. It reports only when the
    /// migration changes something an application could use and the read was attempted.
    ///
    /// ## Why is this bad?
    /// Nothing is wrong with the migration itself; but without the statistics the gate cannot
    /// tell whether the running application still selects the column being dropped, so a GREEN
    /// verdict says nothing about it.
    ///
    /// Severity **info**: a check that could not run is said, never a silent GREEN, and it
    /// does not block.
    ///
    /// ## Safe alternative
    /// Load and install the extension (on RDS/Aurora: `shared_preload_libraries` in the DB
    /// parameter group), and let the gate's role read the statistics:
    /// ```sql
    /// -- postgresql.conf: shared_preload_libraries = 'pg_stat_statements' (restart)
    /// CREATE EXTENSION IF NOT EXISTS pg_stat_statements;  -- in each database
    /// GRANT pg_read_all_stats TO deployclaw_ro;
    /// ```
    pub struct QueryStatsUnavailable {
        code: "DC902",
        name: "query-stats-unavailable",
        severity: Info,
        scope: Fleet,
    }
}

impl GateRule for QueryStatsUnavailable {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(live) = ctx.fleet_live() else {
            return Vec::new();
        };
        let mut shards = Vec::new();
        let mut reasons: BTreeSet<&str> = BTreeSet::new();
        for (shard, l) in live {
            if let LiveStatus::Unavailable { reason } = &l.statements {
                shards.push(shard.as_str());
                reasons.insert(reason);
            }
        }
        if shards.is_empty() {
            return Vec::new();
        }
        let read = live.values().filter(|l| !l.statements.is_not_run()).count();
        let shown: Vec<&str> = reasons.iter().take(MAX_REASONS).copied().collect();
        let more = reasons.len().saturating_sub(MAX_REASONS);
        let more = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        vec![
            ctx.shard_finding(
                self,
                None,
                format!(
                    "the application's queries were not checked against what this migration drops, renames or \
                     converts on {} of {read} shard(s): {}{more}",
                    shards.len(),
                    shown.join("; ")
                ),
            )
            .with_help(
                "Load pg_stat_statements (shared_preload_libraries, on RDS/Aurora the DB parameter group), \
                 CREATE EXTENSION pg_stat_statements in each database, and GRANT pg_read_all_stats to the gate's role",
            )
            .with_evidence(json!({
                "shards": shards.len(),
                "first_shards": shards.iter().take(MAX_REASONS).collect::<Vec<_>>(),
                "reasons": shown,
            })),
        ]
    }
}
