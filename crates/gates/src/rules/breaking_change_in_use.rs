use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard, from the application's own queries: the normalised statements
    /// `pg_stat_statements` recorded in the shard's database since its statistics were last
    /// reset are parsed and resolved like PostgreSQL does (qualified names, aliases, the shard's
    /// schema first on the search path). A query that names a table or column this migration
    /// drops or renames — in its select list, `WHERE`, joins, `ORDER BY`, `INSERT (…)` column
    /// list, `UPDATE … SET` or `ON CONFLICT` — is reported with its text (literals masked,
    /// truncated), its `queryid`, its calls, what it uses and the statement that changes it.
    /// So is a query using a column whose type changes incompatibly (not a widening such as
    /// `int → bigint` or `varchar(n) → text`). `SELECT *` does not count: the star is
    /// expanded when the query is planned, so the same text keeps running after a column is
    /// dropped. In schema-per-tenant, a query text belongs to the database: an unqualified
    /// query matches every tenant shard of it, a schema-qualified one only that tenant's shard.
    ///
    /// ## Why is this bad?
    /// The running application still sends these queries: the moment the migration commits,
    /// each call fails (`column "a" does not exist`, `relation "orders" does not exist`) until
    /// new code is deployed — an outage proportional to the call counts shown.
    ///
    /// Severity **red** for a drop or rename still called since the last statistics reset;
    /// yellow for an incompatible type change (the query still runs, but parameters, casts,
    /// comparisons and the values the code reads change type); info for a query run by the
    /// gate's own role (deployclaw's probes of an earlier run look like that — give the gate a
    /// role of its own, as SECURITY.md recommends), and info for the query texts that name a
    /// table the migration changes but could not be parsed: not checked, never guessed, and
    /// said so.
    ///
    /// ## Safe alternative
    /// Expand and contract: deploy code that stops using the column (or table) first, and
    /// drop it in a later release once `pg_stat_statements` shows no more calls. For a rename or
    /// a type change: add the new column, write both, backfill, switch the reads, then drop the
    /// old one later:
    /// ```sql
    /// ALTER TABLE orders ADD COLUMN amount_cents bigint;   -- release 1 (code writes both)
    /// UPDATE orders SET amount_cents = amount * 100 WHERE id BETWEEN 1 AND 10000;  -- backfill
    /// -- release 2: code reads amount_cents; release 3, when nothing calls it any more:
    /// ALTER TABLE orders DROP COLUMN amount;
    /// ```
    pub struct BreakingChangeInUse {
        code: "DC320",
        name: "breaking-change-in-use",
        severity: Red,
        scope: Shard,
    }
}

impl GateRule for BreakingChangeInUse {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(live) = ctx.shard_evidence().map(|e| &e.live) else {
            return Vec::new();
        };
        let unparsed = (live.queries_skipped > 0).then(|| {
            let n = live.queries_skipped;
            let (texts, them) = if n == 1 {
                ("query text", "it was")
            } else {
                ("query texts", "they were")
            };
            ctx.shard_finding(
                self,
                None,
                format!(
                    "{n} of the application's {texts} in pg_stat_statements name a table this migration \
                     changes but could not be parsed: {them} not checked for uses of what it drops, \
                     renames or converts"
                ),
            )
            .with_severity(Severity::Info)
            .with_help(
                "Read those queries in pg_stat_statements yourself (they name a changed table); \
                 a construct the parser does not know is worth an issue",
            )
            .with_evidence(json!({ "queries_skipped": n }))
        });
        live.query_uses
            .iter()
            .map(|u| {
                let type_change = u.change == "changes the type of";
                let detail = u.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
                let since = match &u.stats_since {
                    Some(s) => format!("since the statistics reset at {s}"),
                    None => "since the statistics were last reset".to_string(),
                };
                let (severity, consequence) = if type_change {
                    (
                        Severity::Yellow,
                        "its parameters, comparisons and results change type when this statement commits",
                    )
                } else {
                    (
                        Severity::Red,
                        "every call fails from the moment this statement commits until code that no longer uses it is deployed",
                    )
                };
                let calls = if u.calls == 1 { "call" } else { "calls" };
                let (severity, consequence) = if u.by_gate_role {
                    (
                        Severity::Info,
                        "it was run by the gate's own role, so it may be deployclaw's own probe of an earlier run — \
                         run the gate with a role of its own (deployclaw_ro) to tell them apart",
                    )
                } else {
                    (severity, consequence)
                };
                let help = if type_change {
                    "Expand and contract: add a new column of the new type, write both, backfill, switch the reads, \
                     then drop the old column in a later release"
                } else {
                    "Expand and contract: deploy code that stops using it first and drop it in a later release once \
                     pg_stat_statements shows no more calls; for a rename, add the new name, write both, backfill, \
                     switch the reads, drop the old one later"
                };
                ctx.shard_finding(
                    self,
                    Some(u.statement),
                    format!(
                        "the application's query `{}` (queryid {}, {} {calls} {since}) uses `{}`, which this \
                         statement {}{detail}: {consequence}",
                        u.query, u.queryid, u.calls, u.uses, u.change
                    ),
                )
                .with_severity(severity)
                .with_help(help)
                .with_evidence(json!({
                    "queryid": u.queryid,
                    "query": u.query,
                    "calls": u.calls,
                    "uses": u.uses,
                    "change": u.change,
                    "detail": u.detail,
                    "statement": u.statement,
                    "stats_since": u.stats_since,
                    "by_gate_role": u.by_gate_role,
                }))
            })
            .chain(unparsed)
            .collect()
    }
}
