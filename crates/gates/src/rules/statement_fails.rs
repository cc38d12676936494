use evidence::{RehearsalMode, RehearsalResult, StatementOutcome};
use serde_json::json;

use crate::{Finding, GateRule, RuleContext, RuleMeta, Severity, declare_rule};

declare_rule! {
    /// ## What it does
    /// Per shard: reports every statement that failed in the rehearsal of the shard's schema
    /// shape (on a shadow copy of its structure, or in place inside a rolled-back transaction),
    /// with PostgreSQL's SQLSTATE and message. Also reports a rehearsal that could not be set up
    /// (yellow: statement failures are then unknown, and a gate that did not run its check is
    /// never green), and notes (as info) one that ran on an incomplete
    /// copy (objects that did not restore on the shadow, sample rows that did not load, views
    /// that did not refresh: quoted with their errors), since failures that depend on what is
    /// missing are then unknown.
    ///
    /// De-duplication: when one of this shard's probes already predicts that statement's
    /// failure — `fk-orphans` (23503), `not-null-violations` (23502), `unique-violations`
    /// (23505), `check-violations` (23514), `cast-failures` (class 22), or `schema-drift` for a
    /// missing (42P01, 42703, 42704, 3F000) or already existing (42P07, 42701, 42710, 42P06)
    /// object — the failure is reported once, by that rule, and not here. A failure with
    /// another SQLSTATE is reported here and names the probe rules that also fired on that
    /// statement.
    ///
    /// An in-place rehearsal runs on one shard of the schema shape (its representative) and is
    /// shared by the shape's other shards: there, only structural failures carry over. Failures
    /// that depend on the representative's data (class 22 data exceptions, class 23 integrity
    /// violations) or on its load (class 40 rollbacks, `55P03` lock timeout, `57014` statement
    /// timeout) are not reported for the other shards — their own probes speak for their data.
    ///
    /// A privilege error (`42501`) says what the rehearsal's role lacks, not that the migration
    /// would fail: in place the migration runs with the gate's own role, and on the ephemeral
    /// shadow it runs without superuser (so an untrusted file cannot run programs on the machine
    /// running deployclaw). It is reported **yellow** — the statement could not be checked —
    /// never red and never silently GREEN.
    ///
    /// ## Why is this bad?
    /// A statement that fails aborts its transaction: in a `BEGIN ... COMMIT` block everything
    /// before it rolls back, in autocommit mode the statements before it stay applied and the
    /// shard is left half-migrated. Either way the fleet no longer has one schema version, and
    /// the failing statement may have waited for and held its lock before failing (e.g.
    /// `55P03` `lock_not_available` after `lock_timeout`, `57014` `query_canceled` after
    /// `statement_timeout`, `25001` for `CONCURRENTLY` inside a transaction block).
    ///
    /// Severity **red**: the migration would fail on this shard; **yellow** when the rehearsal
    /// could not be set up (pass `--rehearse none` to run without one, knowingly).
    ///
    /// ## Safe alternative
    /// Fix the statement for this schema shape — the SQLSTATE says what PostgreSQL rejected —
    /// and re-run the gate. For example, a `CONCURRENTLY` statement must run outside a
    /// transaction block:
    /// ```sql
    /// COMMIT;
    /// CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
    /// ```
    pub struct StatementFails {
        code: "DC316",
        name: "statement-fails",
        severity: Red,
        scope: Shard,
    }
}

/// The condition name of common SQLSTATEs, for messages.
fn condition(sqlstate: &str) -> Option<&'static str> {
    Some(match sqlstate {
        "23502" => "not_null_violation",
        "23503" => "foreign_key_violation",
        "23505" => "unique_violation",
        "23514" => "check_violation",
        "23P01" => "exclusion_violation",
        "22P02" => "invalid_text_representation",
        "22003" => "numeric_value_out_of_range",
        "22001" => "string_data_right_truncation",
        "42P01" => "undefined_table",
        "42703" => "undefined_column",
        "42704" => "undefined_object",
        "42P07" => "duplicate_table",
        "42701" => "duplicate_column",
        "42710" => "duplicate_object",
        "42601" => "syntax_error",
        "42804" => "datatype_mismatch",
        "2BP01" => "dependent_objects_still_exist",
        "25001" => "active_sql_transaction",
        "55P03" => "lock_not_available",
        "57014" => "query_canceled",
        "40P01" => "deadlock_detected",
        "0A000" => "feature_not_supported",
        _ => return None,
    })
}

fn help_for(sqlstate: &str) -> &'static str {
    match sqlstate {
        "25001" => {
            "Run this statement outside a transaction block (COMMIT before it, or mark the migration as non-transactional)"
        }
        "55P03" => {
            "The lock could not be taken within lock_timeout: retry off-peak, or find and end the long transactions holding conflicting locks"
        }
        "57014" => {
            "The statement ran past statement_timeout: make it cheaper (CONCURRENTLY / NOT VALID forms, batches) or run it in a maintenance window"
        }
        "2BP01" => {
            "Other objects depend on this one: drop or change them first (CASCADE drops them silently — review what it would drop)"
        }
        s if s.starts_with("42") => {
            "The statement does not fit this shard's schema: compare the shard with the fleet (schema-drift) and fix the statement or the shard"
        }
        s if s.starts_with("23") || s.starts_with("22") => {
            "The shard's data violates the change: fix the rows first, or use the NOT VALID form and clean up before VALIDATE"
        }
        _ => "Fix the statement so that it runs on this schema shape, then re-run the gate",
    }
}

/// A privilege error in a rehearsal says what the rehearsal's role lacks, not that the migration
/// would fail when deployed: in place the migration runs with the gate's own role; on the
/// ephemeral shadow it runs as a role that is deliberately not a superuser (so an untrusted
/// migration cannot run programs on the machine running deployclaw). The statement's outcome is
/// unknown — a check that could not run, so yellow, never GREEN and never a red failure.
fn privilege_finding(
    rule: &StatementFails,
    ctx: &RuleContext<'_>,
    mode: RehearsalMode,
    index: usize,
    line: u32,
    message: &str,
) -> Finding {
    let (what, help) = match mode {
        RehearsalMode::InPlace => (
            "the in-place rehearsal could not run this statement: the gate's role lacks a privilege \
             the migration needs",
            "In place, the migration runs with the gate's own role: connect with the role that applies \
             migrations for --rehearse in-place, or rehearse on the shadow (the default), which needs only \
             the read-only role (SECURITY.md)",
        ),
        _ => (
            "the shadow rehearsal could not run this statement: it needs a privilege the shadow's \
             migration role does not have (the migration runs there without superuser, so an untrusted \
             file cannot run programs on the machine running deployclaw)",
            "Superuser-only statements (untrusted extensions, event triggers, C functions, ALTER ROLE) \
             are not rehearsed: review this statement by hand, or rehearse in place on a staging copy \
             with the role that applies migrations",
        ),
    };
    ctx.shard_finding(
        rule,
        Some(index),
        format!(
            "{what} (SQLSTATE 42501 insufficient_privilege: {message}); whether it would succeed \
             when deployed is unknown"
        ),
    )
    .with_severity(Severity::Yellow)
    .with_help(help)
    .with_evidence(json!({
        "sqlstate": "42501",
        "message": message,
        "statement": index,
        "line": line,
        "mode": mode,
        "rehearsal_role_lacks_privilege": true,
    }))
}

impl GateRule for StatementFails {
    fn meta(&self) -> RuleMeta<'_> {
        Self::META
    }

    fn check(&self, ctx: &RuleContext<'_>) -> Vec<Finding> {
        let Some(r) = ctx.rehearsal() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(err) = &r.setup_error {
            out.push(
                ctx.shard_finding(
                    self,
                    None,
                    format!(
                        "the rehearsal of this shard's schema shape could not be set up, so whether a statement \
                         fails on it is unknown (probes and lock estimates still apply): {err}"
                    ),
                )
                .with_severity(Severity::Yellow)
                .with_help(
                    "Check the shadow server (pg_dump must be at least the shard's major version) or pass --shadow URL; \
                     --rehearse none runs the gate without a rehearsal, knowingly",
                )
                .with_evidence(json!({ "setup_error": err, "fingerprint": r.fingerprint })),
            );
        }
        if r.setup_error.is_none() && !r.clone_errors.is_empty() {
            out.push(incomplete_copy(self, ctx, r));
        }
        let probes = ctx
            .shard_evidence()
            .map(|e| e.probes.as_slice())
            .unwrap_or_default();
        let place = match r.mode {
            RehearsalMode::InPlace => "in the in-place rehearsal on this shard".to_string(),
            _ => format!(
                "in the rehearsal of this shard's schema shape (shadow copy of `{}`)",
                r.shard
            ),
        };
        for st in &r.statements {
            let StatementOutcome::Failed { sqlstate, message } = &st.outcome else {
                continue;
            };
            let code = sqlstate.as_deref().unwrap_or("");
            let other_shard =
                r.mode == RehearsalMode::InPlace && ctx.shard_id().is_some_and(|id| id != r.shard);
            if other_shard
                && ["22", "23", "40", "55", "57"]
                    .iter()
                    .any(|c| code.starts_with(c))
            {
                continue;
            }
            if code == "42501" {
                out.push(privilege_finding(
                    self, ctx, r.mode, st.index, st.line, message,
                ));
                continue;
            }
            let predicted: Vec<&evidence::ProbeResult> = probes
                .iter()
                .filter(|p| p.statement_index == Some(st.index) && p.would_fail && p.count > 0)
                .collect();
            if predicted.iter().any(|p| p.kind.explains(code)) {
                continue;
            }
            let mut also: Vec<&str> = predicted.iter().map(|p| p.kind.rule()).collect();
            also.sort_unstable();
            also.dedup();
            let state = match (sqlstate, condition(code)) {
                (Some(s), Some(c)) => format!("SQLSTATE {s} ({c})"),
                (Some(s), None) => format!("SQLSTATE {s}"),
                (None, _) => "an error without SQLSTATE".to_string(),
            };
            let mut msg = format!("statement fails {place} with {state}: {message}");
            if !also.is_empty() {
                msg.push_str(&format!(
                    " (this shard's probes also report {} for this statement)",
                    also.join(", ")
                ));
            }
            out.push(
                ctx.shard_finding(self, Some(st.index), msg)
                    .with_help(help_for(code))
                    .with_evidence(json!({
                        "sqlstate": sqlstate,
                        "message": message,
                        "statement": st.index,
                        "line": st.line,
                        "rehearsal": r.fingerprint,
                        "mode": r.mode,
                        "also_reported_by": also,
                    })),
            );
        }
        out
    }
}

/// How many restore errors the message quotes (the evidence has them all).
const QUOTED_CLONE_ERRORS: usize = 3;

/// The info finding for a rehearsal that ran on an incomplete copy: objects of the shard that
/// did not restore on the shadow (an extension it lacks, a view on one), sample rows that did
/// not load, views that did not refresh. A statement whose outcome depends on them (a type
/// change under a view that is missing) was not rehearsed as on the shard.
fn incomplete_copy(rule: &StatementFails, ctx: &RuleContext<'_>, r: &RehearsalResult) -> Finding {
    let quoted: Vec<&str> = r
        .clone_errors
        .iter()
        .take(QUOTED_CLONE_ERRORS)
        // `psql:<stdin>:40: ERROR:  …`: the server's message (the evidence keeps the line).
        .map(|e| e.split_once("ERROR:").map_or(e.as_str(), |(_, m)| m.trim()))
        .collect();
    let more = r.clone_errors.len().saturating_sub(QUOTED_CLONE_ERRORS);
    ctx.shard_finding(
        rule,
        None,
        format!(
            "the rehearsal of this shard's schema shape ran on an incomplete copy ({} error(s) while restoring it \
             on the shadow: {}{}), so a failure that depends on what is missing is unknown",
            r.clone_errors.len(),
            quoted.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ),
    )
    .with_severity(Severity::Info)
    .with_help(
        "Install on the shadow server what the shard has (extensions), or pass --shadow URL of a server like the \
         shard's; then re-run",
    )
    .with_evidence(json!({ "clone_errors": r.clone_errors, "fingerprint": r.fingerprint }))
}
