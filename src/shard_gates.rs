//! Per-shard gates: run the rule registry with each shard's evidence and build the report's
//! shard entries.

use std::collections::{BTreeMap, HashMap};

use evidence::{ProofStatus, ShapeProof};
use gates::{
    CustomProbeOutcome, Finding, Gate, IrreversibleStep, Registry, RollbackEvidence, RuleContext,
};
use migration_parser::Migration;
use report::{ShardReport, ShardRollback};
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
    let drifted: BTreeMap<&str, &DriftedShard> = drift
        .drifted
        .iter()
        .map(|d| (d.shard.as_str(), d))
        .collect();
    let proofs = proofs_by_shard(rollback);
    fleet
        .shards
        .iter()
        .map(|shard| {
            let ev = sim.shard(&shard.id);
            let proof = proofs.get(shard.id.as_str()).copied();
            let evidence = rollback_evidence(rollback, proof);
            // One shard's FK graph at a time: 10,000 of them at once cost memory for nothing.
            let graph: Option<FkGraph> =
                catalogs.get(&shard.id).map(topology::catalog::fk_graph_of);
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
            if let Some(g) = &graph {
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
            let mut report = shard_report(
                &shard.id,
                &shard.instance,
                findings,
                verdict.estimated_lock_ms,
                ev.and_then(|e| e.fingerprint.clone()).unwrap_or_default(),
                ev.map(|e| e.duration_ms).unwrap_or(0),
            );
            report.rollback = proof.map(|p| ShardRollback {
                outcome: p.outcome,
                schema_fingerprint: p.schema_fingerprint.clone(),
                recovery_time_ms: p.duration_ms,
            });
            report.live = ev.map(|e| e.live.clone()).unwrap_or_default();
            report
        })
        .collect()
}

/// The fleet rules' findings ([`gates::RuleScope::Fleet`]), reported once per run: they read
/// the live evidence of every shard at once (e.g. `query-stats-unavailable`).
pub(crate) fn fleet_findings(
    opts: &ValidateOptions,
    registry: &Registry,
    migration: &Migration,
    sim: &SimulationResult,
) -> Vec<Finding> {
    let live: BTreeMap<String, gates::evidence::LiveEvidence> = sim
        .shards
        .iter()
        .map(|e| (e.shard.clone(), e.live.clone()))
        .collect();
    let ctx = RuleContext::new(migration, &opts.config).with_fleet_live(&live);
    registry.lint_scoped(&ctx, Some(gates::RuleScope::Fleet))
}

/// Each shard's shape proof, looked up once (a scan of every proof's shard list per shard is
/// quadratic in the fleet: 10 s of a 10,000-shard run).
fn proofs_by_shard(r: &RollbackOutcome) -> HashMap<&str, &ShapeProof> {
    let mut proofs: HashMap<&str, &ShapeProof> = HashMap::new();
    for p in &r.info.proofs {
        for s in &p.shards {
            proofs.entry(s.as_str()).or_insert(p);
        }
    }
    proofs
}

/// The rollback step's outcome for one shard as the gates' plain-data evidence: the proof of
/// the shard's schema shape when one was made (its status decides `rollback-mismatch`, red for
/// a supplied rollback, or `rollback-unproven`, yellow, for a generated one or a proof that
/// could not run).
fn rollback_evidence(r: &RollbackOutcome, proof: Option<&ShapeProof>) -> RollbackEvidence {
    let irreversible = r
        .irreversible
        .iter()
        .map(|i| IrreversibleStep::new(i.statement, i.reason.clone()))
        .collect();
    let generated = r.info.source == "generated";
    if let Some(p) = proof {
        let tested = p.outcome != ProofStatus::NotProven;
        return RollbackEvidence::new(tested, irreversible, p.differences.clone())
            .with_generated(generated)
            .with_proof(p.for_one_shard());
    }
    let mut ev = RollbackEvidence::new(r.info.tested, irreversible, r.info.mismatches.clone())
        .with_generated(generated);
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
        rollback: None,
        live: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence::ShapeProof;
    use gates::{Config, Registry, Severity};
    use report::RollbackInfo;

    /// Three shapes: `a1`/`a2` mismatch, `b` not proven (why), `c` proven.
    fn outcome(source: &str) -> RollbackOutcome {
        RollbackOutcome {
            info: RollbackInfo {
                source: source.into(),
                script: Some("DROP INDEX i".into()),
                tested: false,
                irreversible: vec![],
                mismatches: vec!["index i: extra after".into()],
                proofs: vec![
                    ShapeProof::new("aaaa", "a1", ProofStatus::Mismatch)
                        .with_shards(vec!["a1".into(), "a2".into()])
                        .with_differences(vec!["index i: extra after".into()])
                        .with_duration_ms(410),
                    ShapeProof::not_proven("bbbb", "b", "extension ltree is missing on the shadow")
                        .with_duration_ms(30),
                    ShapeProof::new("cccc", "c", ProofStatus::Proven).with_data(true),
                ],
            },
            ..RollbackOutcome::default()
        }
    }

    /// The rollback findings of `shard` (rule, severity, message).
    fn rollback_findings(out: &RollbackOutcome, shard: &str) -> Vec<(String, Severity, String)> {
        let config = Config::default();
        let migration = migration_parser::parse(
            "m.sql",
            "SET lock_timeout = '1s';\nCREATE INDEX i ON t (a);",
            &config.parse_options(),
        )
        .expect("parses");
        let ev = rollback_evidence(out, proofs_by_shard(out).get(shard).copied());
        let ctx = RuleContext::new(&migration, &config).with_rollback(&ev);
        Registry::builtin()
            .lint_scoped(&ctx, Some(gates::RuleScope::Shard))
            .into_iter()
            .filter(|f| f.rule.starts_with("rollback-"))
            .map(|f| (f.rule, f.severity, f.message))
            .collect()
    }

    /// Per shape, per shard: a mismatch is red for the user's rollback and yellow "supply one"
    /// for a generated one; a proof that could not run is yellow with its reason whatever the
    /// source; a proven shape has no rollback finding; `rollback_tested` is false.
    #[test]
    fn every_shard_gets_its_shapes_outcome() {
        for (source, mismatch_rule, mismatch_severity) in [
            ("generated", "rollback-unproven", Severity::Yellow),
            ("user", "rollback-mismatch", Severity::Red),
        ] {
            let out = outcome(source);
            assert!(!out.info.proven(), "{source}");
            for shard in ["a1", "a2"] {
                let f = rollback_findings(&out, shard);
                assert_eq!(f.len(), 1, "{source} {shard}: {f:?}");
                assert_eq!(
                    (f[0].0.as_str(), f[0].1),
                    (mismatch_rule, mismatch_severity)
                );
                assert!(f[0].2.contains("index i: extra after"), "{}", f[0].2);
                if source == "generated" {
                    assert!(
                        f[0].2.contains("supply one (--rollback-file)"),
                        "{}",
                        f[0].2
                    );
                }
            }
            let f = rollback_findings(&out, "b");
            assert_eq!(f.len(), 1, "{source}: {f:?}");
            assert_eq!(
                (f[0].0.as_str(), f[0].1),
                ("rollback-unproven", Severity::Yellow)
            );
            assert!(f[0].2.contains("extension ltree is missing"), "{}", f[0].2);
            assert!(rollback_findings(&out, "c").is_empty(), "{source}");
        }
    }

    /// The recovery time of the shard's shape is in the finding's evidence.
    #[test]
    fn the_recovery_time_is_in_the_findings_evidence() {
        let out = outcome("user");
        let ev = rollback_evidence(&out, proofs_by_shard(&out).get("a2").copied());
        assert_eq!(ev.proof.as_ref().map(|p| p.duration_ms), Some(410));
        let config = Config::default();
        let migration =
            migration_parser::parse("m.sql", "CREATE INDEX i ON t (a);", &config.parse_options())
                .expect("parses");
        let ctx = RuleContext::new(&migration, &config).with_rollback(&ev);
        let f = Registry::builtin().lint_scoped(&ctx, Some(gates::RuleScope::Shard));
        let red = f
            .iter()
            .find(|f| f.rule == "rollback-mismatch")
            .expect("red");
        let proof = &red.evidence.as_ref().expect("evidence")["proof"];
        assert_eq!(proof["recovery_time_ms"], 410);
        assert_eq!(proof["outcome"], "mismatch");
    }
}
