//! Per-shard gates: run the rule registry with each shard's evidence and build the report's
//! shard entries.

use std::collections::BTreeMap;

use gates::{Finding, Severity};
use migration_parser::Migration;
use report::ShardReport;
use simulator::SimulationResult;
use topology::catalog::DriftReport;
use topology::{Catalog, Fleet};

use crate::pipeline::{ValidateOptions, shard_report};
use crate::rollback_step::RollbackOutcome;

/// Evaluate every shard of the fleet.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    opts: &ValidateOptions,
    migration: &Migration,
    fleet: &Fleet,
    _catalogs: &BTreeMap<String, Catalog>,
    _drift: &DriftReport,
    unreachable: &BTreeMap<String, String>,
    sim: &SimulationResult,
    _rollback: &RollbackOutcome,
) -> Vec<ShardReport> {
    let static_findings = opts.registry.lint(migration, &opts.config);
    fleet
        .shards
        .iter()
        .map(|shard| {
            let ev = sim.shard(&shard.id);
            let mut findings = static_findings.clone();
            let reason = unreachable
                .get(&shard.id)
                .cloned()
                .or_else(|| ev.and_then(|e| e.unreachable.clone()));
            if let Some(reason) = reason {
                findings.push(Finding::new(
                    "shard-unreachable",
                    "DC404",
                    Severity::Red,
                    format!("shard `{}` could not be reached or read: {reason}", shard.id),
                ));
            }
            shard_report(
                &shard.id,
                &shard.instance,
                findings,
                ev.map(|e| e.estimated_lock_ms).unwrap_or(0),
                ev.and_then(|e| e.fingerprint.clone()).unwrap_or_default(),
                ev.map(|e| e.duration_ms).unwrap_or(0),
            )
        })
        .collect()
}

/// Static rules whose danger is the *duration* of a blocking lock (a scan, a rewrite, an index
/// build under a lock that blocks reads or writes). On a shard whose estimate for that statement
/// is within the lock budget they are informational; `lock-time-budget` speaks for the shards
/// where the same statement is too slow. Rules about correctness, compatibility or data loss
/// (`missing-lock-timeout`, renames, drops, ...) are never demoted.
pub const DURATION_RULES: &[&str] = &[
    "require-concurrent-index",
    "constraint-missing-not-valid",
    "adding-unique-constraint",
    "setting-not-null",
    "adding-volatile-default",
    "changing-column-type",
    "adding-serial-primary-key",
    "changing-collation",
    "table-rewrite-maintenance",
    "adding-exclusion-constraint",
    "refresh-matview-blocking",
    "unbatched-data-change",
];

/// Demote duration rules to `Info` on a shard where the statement's estimated blocking time is
/// within `budget_ms`, saying so in the message.
pub fn demote_within_budget(
    findings: &mut [Finding],
    estimate: Option<&simulator::LockEstimate>,
    budget_ms: u64,
) {
    let Some(estimate) = estimate else {
        return;
    };
    for f in findings.iter_mut() {
        if f.severity != Severity::Yellow || !DURATION_RULES.contains(&f.rule.as_str()) {
            continue;
        }
        let Some(loc) = &f.location else {
            continue;
        };
        let Some(st) = estimate.statements.iter().find(|s| s.index == loc.statement) else {
            continue;
        };
        if st.estimated_lock_ms <= budget_ms as f64 {
            f.severity = Severity::Info;
            f.message = format!(
                "{} On this shard the estimated blocking time is {:.0} ms, within the {} ms budget.",
                f.message, st.estimated_lock_ms, budget_ms
            );
        }
    }
}
