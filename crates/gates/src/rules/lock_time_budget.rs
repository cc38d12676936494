use evidence::{
    LiveStatus, ProbeError, ProbeKind, QueuedEstimate, ShardEvidence, StatementEstimate,
};
use migration_parser::{ConstraintKind, LockMode, Operation};
use serde_json::json;

use super::a_lock;
use super::shard_support::{fmt_bytes, fmt_count, fmt_ms};
use crate::{Finding, GateRule, RuleContext, RuleMeta, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: flags every statement whose estimated blocking-lock time on this shard is over
    /// the budget (`[lock_budget] max_blocking_ms`, default 5000 ms). The simulator's estimate
    /// combines the locks the rehearsal observed (`pg_locks`), the rewrites it saw
    /// (`relfilenode`) and this shard's own table sizes; the message names the statement, the
    /// lock, the table, its size and the estimate. Statements of one `BEGIN ... COMMIT` block
    /// are judged one by one, but a lock taken early in a block stays held — and counted — for
    /// the later statements.
    ///
    /// With the live traffic read (`pg_stat_user_tables` sampled twice, `--traffic-window-ms`,
    /// default 1 s), the message also says what would queue behind the lock: "≈ N writes (and
    /// M reads) would queue" — the blocked tables' rates times the estimated lock time, only
    /// the kinds the lock blocks (`ACCESS EXCLUSIVE`: reads and writes; `SHARE`: writes). A
    /// table without traffic in the sample claims no queue; where no rate could be read the
    /// message says why instead of guessing.
    ///
    /// When the shard's table sizes could not be read (the size probe failed, e.g. on its
    /// statement timeout), the estimate counts no rewrite, scan or index build: every statement
    /// that holds a blocking lock on an existing table then gets a yellow finding saying its
    /// lock time is unknown, instead of passing as "under the budget".
    ///
    /// ## Why is this bad?
    /// While a statement holds `ACCESS EXCLUSIVE` (table rewrite, `ADD CHECK`, `SET NOT NULL`
    /// scan) no query can read or write the table; under `SHARE` (`CREATE INDEX`) or
    /// `SHARE ROW EXCLUSIVE` (`ADD FOREIGN KEY`) no row can be written. Requests queue behind
    /// the lock, connection pools fill up and the application times out. The same statement is
    /// harmless on a 4 MB tenant and an outage on a 40 GB one, which is why the budget is
    /// checked per shard. The estimate is an order of magnitude (see the simulator's model).
    ///
    /// Severity **yellow**: the migration would succeed, but blocks traffic for longer than
    /// the budget; a human must approve the window.
    ///
    /// ## Safe alternative
    /// Use the form that does not hold a blocking lock for the work, or schedule a window:
    /// ```sql
    /// CREATE INDEX CONCURRENTLY orders_created_idx ON orders (created_at);
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_fk
    ///     FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
    /// ```
    pub struct LockTimeBudget {
        code: "DC110",
        name: "lock-time-budget",
        severity: Yellow,
        scope: Shard,
    }
}

/// The non-blocking way to do what `op` does.
fn help_for(op: Option<&Operation>) -> String {
    let specific = match op {
        Some(Operation::CreateIndex {
            concurrently: false,
            ..
        }) => Some(
            "build the index with CREATE INDEX CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes continue)",
        ),
        Some(Operation::AddConstraint { constraint, .. }) => match &constraint.kind {
            ConstraintKind::ForeignKey { .. } | ConstraintKind::Check { .. }
                if !constraint.not_valid =>
            {
                Some(
                    "add the constraint NOT VALID (brief lock) and VALIDATE CONSTRAINT it in a separate transaction (SHARE UPDATE EXCLUSIVE)",
                )
            }
            ConstraintKind::Unique { .. } | ConstraintKind::PrimaryKey { .. } => Some(
                "build the index with CREATE UNIQUE INDEX CONCURRENTLY and attach it with ADD CONSTRAINT ... USING INDEX",
            ),
            _ => None,
        },
        Some(Operation::SetNotNull { .. }) => Some(
            "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ skips the scan)",
        ),
        Some(Operation::AlterColumnType { .. }) => Some(
            "add a new column of the new type, backfill it in batches, switch the application, then drop the old column",
        ),
        _ => None,
    };
    let tail = "run it in an approved maintenance window, or raise `[lock_budget] max_blocking_ms` after approval";
    match specific {
        Some(s) => format!("To avoid the long lock, {s}; otherwise {tail}"),
        None => format!("Split the work into smaller steps or {tail}"),
    }
}

impl GateRule for LockTimeBudget {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(ev) = ctx.shard_evidence() else {
            return Vec::new();
        };
        let Some(estimate) = &ev.estimate else {
            return Vec::new();
        };
        let budget = ctx.lock_budget_ms();
        let sizes_failed = ev
            .probes
            .iter()
            .filter(|p| p.kind == ProbeKind::TableSize)
            .find_map(|p| p.error.as_ref());
        let mut out = Vec::new();
        for st in &estimate.statements {
            if st.estimated_lock_ms <= budget as f64 {
                if let Some(e) = sizes_failed {
                    out.extend(unsized_lock(self, ctx, st, e, budget));
                }
                continue;
            }
            let lock = st.blocking_lock.unwrap_or(LockMode::AccessExclusive);
            // Largest blocked relation first: that is where the time goes.
            let mut rels: Vec<(&str, Option<&evidence::TableStats>)> = st
                .blocked_relations
                .iter()
                .map(|r| {
                    let stats = r.split_once('.').and_then(|(s, t)| ctx.table_stats(s, t));
                    (r.as_str(), stats)
                })
                .collect();
            rels.sort_by_key(|(_, s)| std::cmp::Reverse(s.map(|s| s.total_bytes).unwrap_or(0)));
            let tables: Vec<String> = rels
                .iter()
                .map(|(r, s)| match s {
                    Some(s) => {
                        let rows = s
                            .row_estimate
                            .filter(|n| *n >= 0)
                            .map(|n| format!(", ~{} rows", fmt_count(n)))
                            .unwrap_or_default();
                        format!("`{r}` ({}{rows})", fmt_bytes(s.total_bytes))
                    }
                    None => format!("`{r}`"),
                })
                .collect();
            let on = if tables.is_empty() {
                "its tables".to_string()
            } else {
                tables.join(", ")
            };
            let blocks = st
                .blocks
                .clone()
                .unwrap_or_else(|| lock.blocks().to_string());
            let op = ctx.statement(st.index).and_then(|s| s.operations.first());
            let queued = ev.live.queued.iter().find(|q| q.statement == st.index);
            out.push(
                ctx.shard_finding(
                    self,
                    Some(st.index),
                    format!(
                        "holds {} on {on} for an estimated {} on this shard — over the {} budget — blocking {blocks} \
                         on {} for that long{} (basis: {})",
                        a_lock(lock),
                        fmt_ms(st.estimated_lock_ms),
                        fmt_ms(budget as f64),
                        if rels.len() == 1 { "it" } else { "them" },
                        queue_text(ev, queued),
                        st.basis
                    ),
                )
                .with_help(help_for(op))
                .with_evidence(json!({
                    "statement": st.index,
                    "estimated_lock_ms": st.estimated_lock_ms.round() as u64,
                    "estimated_ms": st.estimated_ms.round() as u64,
                    "budget_ms": budget,
                    "lock": lock.sql_name(),
                    "blocks": blocks,
                    "relations": rels.iter().map(|(r, s)| json!({
                        "relation": r,
                        "total_bytes": s.map(|s| s.total_bytes),
                        "row_estimate": s.and_then(|s| s.row_estimate),
                    })).collect::<Vec<_>>(),
                    "basis": st.basis,
                    "throughput_calibrated": estimate.throughput.calibrated,
                    "queued": queued,
                })),
            );
        }
        out
    }
}

/// The finding for a statement that holds a blocking lock on existing tables of a shard whose
/// table sizes could not be read (`error`): its estimate counts no rewrite, scan or index
/// build, so "under the budget" is not known. `None` when it blocks nothing.
fn unsized_lock(
    rule: &LockTimeBudget,
    ctx: &RuleContext<'_>,
    st: &StatementEstimate,
    error: &ProbeError,
    budget: u64,
) -> Option<Finding> {
    let lock = st.blocking_lock?;
    if st.blocked_relations.is_empty() {
        return None;
    }
    let tables: Vec<String> = st
        .blocked_relations
        .iter()
        .map(|r| format!("`{r}`"))
        .collect();
    let blocks = st
        .blocks
        .clone()
        .unwrap_or_else(|| lock.blocks().to_string());
    let sqlstate = error.sqlstate.as_deref().unwrap_or("unknown");
    Some(
        ctx.shard_finding(
            rule,
            Some(st.index),
            format!(
                "holds {} on {} on this shard for a time that could not be estimated: reading this shard's \
                 table sizes failed with SQLSTATE {sqlstate}: {}; without them the estimate ({}) counts no \
                 rewrite, scan or index build, and on a large table the lock could be far over the {} budget, \
                 blocking {blocks} on {} for that long",
                a_lock(lock),
                tables.join(", "),
                error.message,
                fmt_ms(st.estimated_lock_ms),
                fmt_ms(budget as f64),
                if tables.len() == 1 { "it" } else { "them" },
            ),
        )
        .with_help(
            "Re-run with a longer probe timeout (or off-peak), or read the tables' sizes by hand \
             (SELECT pg_total_relation_size('schema.table')) before approving",
        )
        .with_evidence(json!({
            "statement": st.index,
            "estimated_lock_ms": st.estimated_lock_ms.round() as u64,
            "budget_ms": budget,
            "lock": lock.sql_name(),
            "blocks": blocks,
            "relations": st.blocked_relations,
            "sizes": { "error": { "sqlstate": error.sqlstate, "message": error.message } },
        })),
    )
}

/// What would queue behind the statement's lock, for the message: `; ≈ N writes and M reads
/// would queue behind it (…)`, or why no queue is claimed. Empty when the traffic was not
/// read at all (live reads off, shard not reached).
fn queue_text(ev: &ShardEvidence, q: Option<&QueuedEstimate>) -> String {
    match &ev.live.traffic {
        LiveStatus::NotRun => return String::new(),
        LiveStatus::Unavailable { reason } => {
            return format!("; what would queue behind it is not estimated: {reason}");
        }
        LiveStatus::Read => {}
    }
    let Some(q) = q.filter(|q| !q.relations.is_empty()) else {
        return "; no traffic rate for the blocked tables (none of them was in \
                pg_stat_user_tables when sampled): nothing is claimed to queue"
            .to_string();
    };
    let traffic: Vec<String> = q
        .relations
        .iter()
        .filter_map(|r| ev.live.table_traffic.iter().find(|t| &t.relation == r))
        .map(|t| {
            let mut kinds = Vec::new();
            if q.writes.is_some() {
                kinds.push(format!("{:.1} writes/s", t.writes_per_s));
            }
            if q.reads.is_some() {
                kinds.push(format!("{:.1} reads/s", t.reads_per_s));
            }
            format!("`{}` {}", t.relation, kinds.join(", "))
        })
        .collect();
    let source = ev
        .live
        .table_traffic
        .iter()
        .find(|t| q.relations.contains(&t.relation))
        .map(|t| t.source.as_str())
        .unwrap_or("pg_stat_user_tables");
    let writes = q.writes.unwrap_or(0.0).round() as i64;
    let reads = q.reads.unwrap_or(0.0).round() as i64;
    let mut out = if writes == 0 && reads == 0 {
        format!(
            "; no {} on {} in the traffic sample: nothing measured would queue",
            match (q.writes.is_some(), q.reads.is_some()) {
                (true, true) => "writes or reads",
                (true, false) => "writes",
                _ => "reads",
            },
            if q.relations.len() == 1 { "it" } else { "them" },
        )
    } else {
        let mut what = Vec::new();
        if q.writes.is_some() {
            what.push(format!("{} writes", fmt_count(writes)));
        }
        if q.reads.is_some() {
            what.push(format!("{} reads", fmt_count(reads)));
        }
        let reads_continue = if q.reads.is_none() {
            ", reads continue"
        } else {
            ""
        };
        format!(
            "; ≈ {} would queue behind it{reads_continue} ({}, {source})",
            what.join(" and "),
            traffic.join("; ")
        )
    };
    if !q.without_rate.is_empty() {
        let names: Vec<String> = q.without_rate.iter().map(|r| format!("`{r}`")).collect();
        out.push_str(&format!("; no rate for {}", names.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use evidence::{LockEstimate, ProbeResult};

    use super::*;
    use crate::Config;

    /// A shard whose size probe failed: the statement that rewrites a table under `ACCESS
    /// EXCLUSIVE` is reported although its (size-less) estimate is under the budget; the one
    /// that only adds a column to a new table is not.
    #[test]
    fn a_shard_whose_sizes_could_not_be_read_gets_a_finding_per_blocking_statement() {
        let sql = "ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2);\n\
                   CREATE TABLE notes (id int);\n";
        let config = Config::default();
        let m = migration_parser::parse("m.sql", sql, &config.parse_options()).unwrap();
        let statement = |index, lock: Option<LockMode>, rels: &[&str]| StatementEstimate {
            index,
            estimated_ms: 5.0,
            blocking_lock: lock,
            blocked_relations: rels.iter().map(|r| r.to_string()).collect(),
            blocks: None,
            estimated_lock_ms: if lock.is_some() { 5.0 } else { 0.0 },
            basis: "catalog change".into(),
        };
        let ev = ShardEvidence {
            probes: vec![
                ProbeResult::new(
                    "db-1/app/tenant_0042",
                    ProbeKind::TableSize,
                    "tenant_0042",
                    "",
                )
                .with_error(ProbeError {
                    sqlstate: Some("57014".into()),
                    message: "canceling statement due to statement timeout".into(),
                }),
            ],
            estimate: Some(LockEstimate {
                statements: vec![
                    statement(0, Some(LockMode::AccessExclusive), &["tenant_0042.orders"]),
                    statement(1, None, &[]),
                ],
                ..LockEstimate::default()
            }),
            ..ShardEvidence::default()
        };
        let ctx = RuleContext::new(&m, &config).with_shard(&ev);
        let findings = LockTimeBudget.check(&ctx);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].location.as_ref().map(|l| l.line), Some(1));
        insta::assert_snapshot!(format!(
            "{}\nhelp: {}",
            findings[0].message,
            findings[0].help.as_deref().unwrap_or("")
        ));
        // The sizes read: nothing under the budget is reported.
        let mut read = ev.clone();
        read.probes.clear();
        let ctx = RuleContext::new(&m, &config).with_shard(&read);
        assert!(LockTimeBudget.check(&ctx).is_empty());
    }

    #[test]
    fn without_a_rate_the_message_says_why_and_claims_no_queue() {
        let mut ev = ShardEvidence::default();
        assert_eq!(queue_text(&ev, None), "", "live reads off: nothing said");
        ev.live.traffic = LiveStatus::Unavailable {
            reason: "the traffic window is 0".into(),
        };
        assert_eq!(
            queue_text(&ev, None),
            "; what would queue behind it is not estimated: the traffic window is 0"
        );
        ev.live.traffic = LiveStatus::Read;
        let q = QueuedEstimate {
            statement: 0,
            lock_ms: 9000.0,
            writes: Some(0.0),
            reads: Some(0.0),
            relations: vec![],
            without_rate: vec!["s.created_here".into()],
        };
        let text = queue_text(&ev, Some(&q));
        assert!(text.contains("nothing is claimed to queue"), "{text}");
        assert!(!text.contains('≈'), "{text}");
    }
}
