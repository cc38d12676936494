//! One rehearsal to run (a schema shape and the shard that stands for it), the result of a
//! rehearsal whose setup failed, and the execution log's lines about rehearsals.

use migration_parser::Migration;
use topology::{ConnectionSpec, Shard};

use crate::rehearsal::{
    LockSource, NotRunReason, RehearsalMode, RehearsalResult, StatementOutcome, StatementRehearsal,
};

/// Every statement not run: the rehearsal of shape `fp` could not be set up (`err`).
pub(super) fn setup_failed(
    migration: &Migration,
    fp: &str,
    shard: &Shard,
    mode: RehearsalMode,
    target: String,
    err: String,
) -> RehearsalResult {
    RehearsalResult {
        fingerprint: fp.to_string(),
        shard: shard.id.clone(),
        schema: shard.location.schema().to_string(),
        mode,
        target,
        server_version: 0,
        setup_error: Some(err),
        clone_errors: Vec::new(),
        in_place_refused: Vec::new(),
        statements: migration
            .statements
            .iter()
            .map(|st| StatementRehearsal {
                index: st.index,
                line: st.span.line,
                outcome: StatementOutcome::NotRun {
                    reason: NotRunReason::SetupFailed,
                },
                locks: Vec::new(),
                lock_source: LockSource::Unknown,
                rewritten: Vec::new(),
                created: Vec::new(),
                in_block: st.tx.in_block,
                duration_ms: 0.0,
            })
            .collect(),
        duration_ms: 0,
    }
}

/// One rehearsal: a schema shape and the shard (with its instance's connection) rehearsed
/// for all shards of that shape.
pub(super) struct RehearsalJob {
    /// The shape's catalog fingerprint.
    pub fingerprint: String,
    /// The representative shard.
    pub shard: Shard,
    /// Its instance's connection.
    pub spec: ConnectionSpec,
}

/// The execution log's line for one rehearsal.
pub(super) fn rehearsal_line(job: &RehearsalJob, r: &RehearsalResult) -> String {
    format!(
        "shard {} (shape {}): {}",
        job.shard.id,
        short(&job.fingerprint),
        summary(r)
    )
}

/// The first 12 characters of a fingerprint.
fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

/// A rehearsal in one line, with the statements refused in place.
fn summary(r: &RehearsalResult) -> String {
    if !r.in_place_refused.is_empty() {
        let lines: Vec<String> = r
            .in_place_refused
            .iter()
            .map(|x| x.line.to_string())
            .collect();
        return format!(
            "{} statement(s) refused in place (line {}); on the shadow: {}",
            r.in_place_refused.len(),
            lines.join(", "),
            outcome_summary(r)
        );
    }
    outcome_summary(r)
}

/// How many statements succeeded, and the first failure.
fn outcome_summary(r: &RehearsalResult) -> String {
    if let Some(e) = &r.setup_error {
        return format!("setup failed: {e}");
    }
    let ok = r
        .statements
        .iter()
        .filter(|s| matches!(s.outcome, StatementOutcome::Succeeded))
        .count();
    match r.first_failure() {
        Some(f) => match &f.outcome {
            StatementOutcome::Failed { sqlstate, message } => format!(
                "{ok}/{} statements succeeded; statement {} failed ({}): {message}",
                r.statements.len(),
                f.index + 1,
                sqlstate.as_deref().unwrap_or("?")
            ),
            _ => String::new(),
        },
        None => format!("{ok}/{} statements succeeded", r.statements.len()),
    }
}
