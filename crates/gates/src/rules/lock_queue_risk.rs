use evidence::{LiveStatus, LockHolder};
use migration_parser::LockMode;
use serde_json::json;

use super::shard_support::fmt_ms;
use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard, from the live workload read just before the verdict (`pg_stat_activity` ×
    /// `pg_locks`, read-only, one query per database): reports every session that holds — or
    /// already waits for — a lock on a relation the migration locks, in a mode that conflicts
    /// with the migration's lock. The message names the session (pid, `application_name`,
    /// state, how long it has been in that state and how old its transaction is), the relation,
    /// the lock it holds and the migration's lock it blocks; the session's query is kept only
    /// normalised (every literal replaced by `$n`) in the evidence. When the read could not run
    /// (no `pg_read_all_stats`, an error) the shard gets one info finding saying so and why.
    ///
    /// ## Why is this bad?
    /// PostgreSQL grants locks in queue order: the migration's `ALTER TABLE` waits behind the
    /// open transaction, and every later query on the table — even a plain `SELECT` — waits
    /// behind the migration. One session left `idle in transaction` by an application bug or a
    /// forgotten `psql` turns a 5 ms catalog change into an outage of that tenant until the
    /// session ends or `lock_timeout` fires. A transaction already older than the statement's
    /// `lock_timeout` means the statement would fail there.
    ///
    /// Severity **yellow**: the migration would succeed once the session ends, but right now
    /// it would queue traffic; a human must look. **Red** when the holder has been `idle in
    /// transaction` for longer than `[live] idle_in_transaction_red_after` (default 30 s): such
    /// a session will not end by itself.
    ///
    /// ## Safe alternative
    /// Wait for the session to finish, or end it after checking what it is; and always run
    /// schema changes with a short `lock_timeout` and a retry, so a holder makes the migration
    /// fail fast instead of queueing every query:
    /// ```sql
    /// SELECT pid, application_name, state, now() - xact_start FROM pg_stat_activity WHERE pid = 4242;
    /// SELECT pg_terminate_backend(4242);   -- only if it is safe to end it
    /// SET lock_timeout = '2s';
    /// ALTER TABLE orders ADD COLUMN note text;   -- retry on lock_timeout
    /// ```
    pub struct LockQueueRisk {
        code: "DC111",
        name: "lock-queue-risk",
        severity: Yellow,
        scope: Shard,
    }
}

impl GateRule for LockQueueRisk {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(ev) = ctx.shard_evidence() else {
            return Vec::new();
        };
        match &ev.live.locks {
            LiveStatus::NotRun => Vec::new(),
            LiveStatus::Unavailable { reason } => vec![
                ctx.shard_finding(
                    self,
                    None,
                    format!(
                        "The lock-queue check could not run on this shard, so whether the migration would queue behind \
                         an open transaction is unknown: {reason}"
                    ),
                )
                .with_severity(Severity::Info)
                .with_help(
                    "Give the gate's role `pg_read_all_stats` (or `pg_monitor`) and run the gate again, or check \
                     `pg_stat_activity` and `pg_locks` by hand just before migrating",
                )
                .with_evidence(json!({ "status": "unavailable", "reason": reason })),
            ],
            LiveStatus::Read => ev
                .live
                .lock_holders
                .iter()
                .map(|h| self.holder_finding(ctx, h))
                .collect(),
        }
    }
}

impl LockQueueRisk {
    /// The finding about one holder.
    fn holder_finding(&self, ctx: &RuleContext<'_>, h: &LockHolder) -> Finding {
        let red_after = ctx.config().live.idle_in_transaction_red_after_ms;
        let idle = h.state.starts_with("idle in transaction");
        let red = idle && h.state_age_ms.is_some_and(|a| a > red_after);
        let blocks = LockMode::from_pg_locks_name(&h.blocks_mode);
        let lock = blocks.map_or_else(|| h.blocks_mode.clone(), |m| format!("{m} lock"));
        let app = if h.application_name.is_empty() {
            "no application_name".to_string()
        } else {
            format!("`{}`", h.application_name)
        };
        let state = match (h.state.as_str(), h.state_age_ms) {
            ("", _) => "state unknown".to_string(),
            (s, Some(a)) => format!("{s} for {}", fmt_ms(a as f64)),
            (s, None) => s.to_string(),
        };
        let xact = h
            .xact_age_ms
            .map(|a| format!(", transaction {} old", fmt_ms(a as f64)))
            .unwrap_or_default();
        let verb = if h.granted { "holds" } else { "waits for" };
        let traffic = match blocks {
            Some(m) if m.blocks_reads() => {
                "every read and write of the table would queue behind the migration"
            }
            Some(m) if m.blocks_writes() => {
                "every write to the table would queue behind the migration"
            }
            _ => "conflicting operations on the table would queue behind the migration",
        };
        let timeout = ctx
            .statement(h.blocks_statement)
            .and_then(|s| s.settings.lock_timeout_ms);
        let budget = ctx.lock_budget_ms();
        let over = match (timeout, h.xact_age_ms) {
            (Some(t), Some(a)) if a > t => format!(
                " Its transaction is already older than the statement's lock_timeout ({}): unless it ends first, \
                 the statement would fail with a lock timeout.",
                fmt_ms(t as f64)
            ),
            (None, Some(a)) if a > budget => format!(
                " Its transaction is already older than the lock budget ({}) and the statement has no \
                 lock_timeout: traffic could queue behind the migration for longer than the budget.",
                fmt_ms(budget as f64)
            ),
            _ => String::new(),
        };
        let red_note = if red {
            format!(
                " It has been idle in transaction for longer than {} (`[live] idle_in_transaction_red_after`): \
                 it will not end by itself.",
                fmt_ms(red_after as f64)
            )
        } else {
            String::new()
        };
        let message = format!(
            "Session pid {} ({app}, {state}{xact}) {verb} {} on `{}`; this statement's {lock} conflicts with it, \
             so the migration would wait for that session and {traffic}.{over}{red_note}",
            h.pid, h.mode, h.relation
        );
        let help = format!(
            "Wait for pid {pid} to finish, or end it once you know it is safe (`SELECT pg_terminate_backend({pid})`); \
             run the migration with a short lock_timeout (`SET lock_timeout = '2s'`) and retry on timeout, so a \
             holder makes it fail fast instead of queueing traffic",
            pid = h.pid
        );
        let f = ctx
            .shard_finding(self, Some(h.blocks_statement), message)
            .with_help(help)
            .with_evidence(json!({
                "pid": h.pid,
                "application_name": h.application_name,
                "state": h.state,
                "state_age_ms": h.state_age_ms,
                "xact_age_ms": h.xact_age_ms,
                "relation": h.relation,
                "mode": h.mode,
                "granted": h.granted,
                "blocks_mode": h.blocks_mode,
                "statement": h.blocks_statement,
                "query": h.query,
                "lock_timeout_ms": timeout,
                "lock_budget_ms": budget,
                "idle_in_transaction_red_after_ms": red_after,
            }));
        if red {
            f.with_severity(Severity::Red)
        } else {
            f
        }
    }
}
