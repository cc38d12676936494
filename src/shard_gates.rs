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
