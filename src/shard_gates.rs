//! Per-shard gates: run the rule registry with each shard's evidence and build the report's
//! shard entries.

use std::collections::BTreeMap;

use gates::{
    CustomProbeOutcome, Finding, Gate, IrreversibleStep, Registry, RollbackEvidence, RuleContext,
};
use migration_parser::Migration;
use report::ShardReport;
use simulator::SimulationResult;
use topology::catalog::{DriftReport, DriftedShard};
use topology::{Catalog, FkGraph, Fleet};

use crate::options::ValidateOptions;
use crate::rollback_step::RollbackOutcome;

/// Evaluate every shard of the fleet: the registry's static and per-shard rules with the
/// shard's probes, rehearsal, drift, foreign-key graph and rollback evidence; then the
/// duration rules are demoted on shards where the statement fits the lock budget.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    opts: &ValidateOptions,
    registry: &Registry,
    migration: &Migration,
    fleet: &Fleet,
    catalogs: &BTreeMap<String, Catalog>,
    drift: &DriftReport,
    unreachable: &BTreeMap<String, String>,
    sim: &SimulationResult,
    rollback: &RollbackOutcome,
) -> Vec<ShardReport> {
    let evidence = rollback_evidence(rollback);
    let graphs: BTreeMap<&str, FkGraph> = catalogs
        .iter()
        .map(|(id, c)| (id.as_str(), topology::catalog::fk_graph_of(c)))
        .collect();
    let drifted: BTreeMap<&str, &DriftedShard> = drift
        .drifted
        .iter()
        .map(|d| (d.shard.as_str(), d))
        .collect();
    fleet
        .shards
        .iter()
        .map(|shard| {
            let ev = sim.shard(&shard.id);
            let mut ctx = RuleContext::new(migration, &opts.config)
                .with_shard_id(&shard.id, &shard.instance)
                .with_shard_schema(shard.location.schema())
                .with_lock_budget_ms(opts.lock_budget())
                .with_rollback(&evidence);
            if let Some(e) = ev {
                ctx = ctx.with_shard(e);
                // Custom SQL probe rules ([[custom_rules]] kind = "probe"): rows or error.
                for (name, rows) in &e.custom_probes {
                    ctx = ctx.with_custom_probe(name.clone(), CustomProbeOutcome::from_rows(rows));
                }
            }
            if let Some(r) = sim.rehearsal_for(&shard.id) {
                ctx = ctx.with_rehearsal(r);
            }
            if let Some(g) = graphs.get(shard.id.as_str()) {
                ctx = ctx.with_fk_graph(g);
            }
            if let Some(d) = drifted.get(shard.id.as_str()) {
                ctx = ctx.with_drift(&d.differences);
                if let Some(r) = &drift.reference_shard {
                    ctx = ctx.with_drift_reference(r.clone());
                }
            }
            let reason = unreachable
                .get(&shard.id)
                .cloned()
                .or_else(|| ev.and_then(|e| e.unreachable.clone()));
            if let Some(reason) = reason {
                ctx = ctx.with_unreachable(reason);
            }
            let verdict = gates::evaluate_shard(registry, &ctx);
            let mut findings = verdict.findings;
            registry.demote_within_budget(
                &mut findings,
                ev.and_then(|e| e.estimate.as_ref()),
                opts.lock_budget(),
            );
            shard_report(
                &shard.id,
                &shard.instance,
                findings,
                verdict.estimated_lock_ms,
                ev.and_then(|e| e.fingerprint.clone()).unwrap_or_default(),
                ev.map(|e| e.duration_ms).unwrap_or(0),
            )
        })
        .collect()
}

/// The rollback step's outcome as the gates' plain-data evidence.
fn rollback_evidence(r: &RollbackOutcome) -> RollbackEvidence {
    let irreversible = r
        .irreversible
        .iter()
        .map(|i| IrreversibleStep::new(i.statement, i.reason.clone()))
        .collect();
    // A generated rollback that does not restore the catalog is `rollback-unproven` (yellow),
    // a supplied one `rollback-mismatch` (red).
    let mut ev = RollbackEvidence::new(r.info.tested, irreversible, r.info.mismatches.clone())
        .with_generated(r.info.source == "generated");
    if let Some(p) = &r.proof
        && let Some(e) = &p.rollback_error
    {
        ev = ev.with_rollback_error(e.to_string());
    }
    ev
}

/// Build one shard's report entry from its findings.
pub fn shard_report(
    shard: &str,
    instance: &str,
    findings: Vec<Finding>,
    estimated_lock_ms: u64,
    fingerprint: String,
    duration_ms: u64,
) -> ShardReport {
    ShardReport {
        shard: shard.to_owned(),
        instance: instance.to_owned(),
        gate: Gate::from_findings(&findings),
        findings,
        estimated_lock_ms,
        schema_fingerprint: fingerprint,
        duration_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gates::{Config, Registry};
    use report::RollbackInfo;

    fn outcome(source: &str) -> RollbackOutcome {
        RollbackOutcome {
            info: RollbackInfo {
                source: source.into(),
                script: Some("DROP INDEX i".into()),
                tested: true,
                irreversible: vec![],
                mismatches: vec!["index i: extra after".into()],
            },
            ..RollbackOutcome::default()
        }
    }

    /// The same failed proof: red for the user's rollback, yellow for a generated one, and
    /// `rollback_tested` false either way.
    #[test]
    fn a_generated_rollback_that_does_not_restore_makes_no_shard_red() {
        let config = Config::default();
        let migration = migration_parser::parse(
            "m.sql",
            "SET lock_timeout = '1s';\nCREATE INDEX i ON t (a);",
            &config.parse_options(),
        )
        .expect("parses");
        for (source, rule, severity) in [
            ("generated", "rollback-unproven", Severity::Yellow),
            ("user", "rollback-mismatch", Severity::Red),
        ] {
            let out = outcome(source);
            assert!(!out.info.proven());
            let ev = rollback_evidence(&out);
            assert_eq!(ev.generated, source == "generated");
            let ctx = RuleContext::new(&migration, &config).with_rollback(&ev);
            let findings = Registry::builtin().lint_scoped(&ctx, Some(gates::RuleScope::Shard));
            let rollback: Vec<_> = findings
                .iter()
                .filter(|f| f.rule.starts_with("rollback-"))
                .map(|f| (f.rule.as_str(), f.severity))
                .collect();
            assert_eq!(rollback, vec![(rule, severity)], "{source}");
        }
    }
}
