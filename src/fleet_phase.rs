//! Steps 2–4 of the pipeline, overlapped: the shared shadow starts (from the cached template,
//! or with `initdb` on a first run on a machine) while the fleet is introspected and probed;
//! the rehearsal and the rollback proof wait for it ([`simulator::PendingShadow`]) only when
//! they need it; a calibration the cache did not hold is measured at the end, on an idle
//! machine, and the estimates are made with it.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use migration_parser::Migration;
use simulator::{CancelToken, Progress, SimOptions, SimulationResult};
use topology::catalog::DriftReport;
use topology::{Catalog, Fleet, FleetCatalogs, ScanOptions};

use report::RollbackInfo;

use crate::PipelineError;
use crate::options::ValidateOptions;
use crate::rollback_step::{RollbackOutcome, rollback_for};
use crate::shared_shadow::{
    adopt_shared_shadow, calibrate_after_run, shadow_needed, start_shared_shadow,
};
use crate::steps::{Steps, ms};

/// What steps 2–4 produced.
pub(crate) struct FleetPhase {
    pub(crate) catalogs: BTreeMap<String, Catalog>,
    pub(crate) drift: DriftReport,
    /// Shard id → why its catalog could not be read.
    pub(crate) unreachable: BTreeMap<String, String>,
    pub(crate) sim: SimulationResult,
    pub(crate) rollback: RollbackOutcome,
}

/// Introspect the fleet, probe and rehearse, generate and prove the rollback — with the shared
/// shadow starting beside them (see the module doc). Logs every step into `steps`.
pub(crate) async fn run_fleet_phase(
    opts: &ValidateOptions,
    fleet: &Fleet,
    migration: &Migration,
    mut sim_opts: SimOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
    steps: &mut Steps,
) -> Result<FleetPhase, PipelineError> {
    let needed = shadow_needed(opts);
    let (starter, pending) = simulator::PendingShadow::channel();
    if needed {
        sim_opts.shadow_pending = Some(pending.clone());
    }
    let shadow_pg: OnceLock<Option<topology::ephemeral::EphemeralPg>> = OnceLock::new();
    let mut shadow_steps: Steps = Vec::new();
    let shadow_fut = async {
        let shared = start_shared_shadow(opts).await;
        let adopted = shared.map(|s| adopt_shared_shadow(s, &mut shadow_steps));
        let (pg, ready, calibrate_after) = match adopted {
            Some(a) => (a.pg, a.ready, a.calibrate_after),
            None => (None, simulator::ReadyShadow::default(), false),
        };
        let _ = shadow_pg.set(pg);
        starter.ready(ready);
        calibrate_after
    };
    let mut fleet_steps: Steps = Vec::new();
    let fleet_fut = async {
        let t = Instant::now();
        let scan = ScanOptions {
            concurrency: opts.sim.concurrency.max(1) as usize,
            ..ScanOptions::default()
        };
        let FleetCatalogs { catalogs, errors } = topology::introspect_fleet(fleet, &scan).await;
        let introspect_ms = ms(t);
        let mut unreachable: BTreeMap<String, String> = BTreeMap::new();
        for (ids, err) in &errors {
            for id in ids {
                unreachable.insert(id.clone(), err.to_string());
            }
        }
        let drift = topology::catalog::detect_drift(catalogs.iter().map(|(k, v)| (k.as_str(), v)));
        fleet_steps.push((
            "introspect".into(),
            format!(
                "{} shards on {} instances read, {} unreachable, {} schema shapes, {} drifted",
                catalogs.len(),
                fleet.instances.len(),
                unreachable.len(),
                drift.groups.len(),
                drift.drifted.len()
            ),
            introspect_ms,
        ));
        if cancel.is_cancelled() {
            return Err(PipelineError::Cancelled);
        }
        // Probes + rehearsal, and the rollback proof, concurrently: the proof needs only the
        // catalogs (it runs in a database of its own on the shared shadow).
        let t = Instant::now();
        let dump_cache = sim_opts.dump_cache.clone();
        let rollback_fut = async {
            if needed && opts.validate_rollback {
                pending.wait().await;
            }
            let shadow = shadow_pg.get().and_then(Option::as_ref);
            let r = rollback_for(
                opts,
                fleet,
                migration,
                &catalogs,
                &drift,
                shadow,
                dump_cache.as_deref(),
            )
            .await;
            (r, ms(t))
        };
        let sim_fut = simulator::run(
            migration,
            fleet,
            Some(&catalogs),
            &sim_opts,
            progress,
            cancel,
        );
        let (sim, (rollback, rollback_ms)) = tokio::join!(sim_fut, rollback_fut);
        Ok((catalogs, drift, unreachable, sim, rollback, rollback_ms))
    };
    let (calibrate_after, ran, ()) = tokio::join!(shadow_fut, fleet_fut, async {
        // A cancelled run does not wait for it (pg_dump is killed with its future).
        tokio::select! {
            () = prefetch_first_dump(opts, fleet, migration, &sim_opts) => {}
            () = cancel.cancelled() => {}
        }
    });
    steps.append(&mut shadow_steps);
    steps.append(&mut fleet_steps);
    let (catalogs, drift, unreachable, sim, rollback, rollback_ms) = ran?;
    let mut sim = sim.map_err(|e| sim_error(e, &opts.config))?;
    let rollback = rollback?;
    let shadow = shadow_pg.into_inner().flatten();
    for s in &sim.steps {
        steps.push((s.action.clone(), s.details.clone(), s.duration_ms));
    }
    if cancel.is_cancelled() {
        return Err(PipelineError::Cancelled);
    }
    if let (true, Some(pg)) = (calibrate_after, &shadow) {
        // Measured when asked (`--recalibrate`) or where it can change the gate: a lock
        // estimate (with the conservative default rates) near the budget on some shard.
        let budget = std::time::Duration::from_millis(opts.lock_budget());
        let calibrated = sim.throughput.calibrated;
        if opts.recalibrate
            || sim
                .shards
                .iter()
                .any(|ev| simulator::lock_near_budget(ev, budget, calibrated))
        {
            calibrate_after_run(opts, pg, migration, &mut sim, steps).await;
        } else {
            steps.push((
                "calibrate".into(),
                format!(
                    "not measured: with the conservative default rates no statement's \
                     estimated blocking-lock time comes within a quarter of the {} ms budget on \
                     any shard, so no calibration could change the gate; the estimates use the \
                     defaults (the first run that needs one measures and caches it)",
                    opts.lock_budget()
                ),
                0,
            ));
        }
    }
    drop(shadow);
    steps.push((
        "rollback".into(),
        rollback_line(&rollback.info),
        rollback_ms,
    ));
    Ok(FleetPhase {
        catalogs,
        drift,
        unreachable,
        sim,
        rollback,
    })
}

/// The `pg_dump` the first rehearsal and the rollback proof share (the first shard of the
/// fleet, and the shard the rehearsal runs after it: [`simulator::fleet_partner`]), taken into
/// the run's dump cache while the fleet is introspected instead of after it: on a fleet of
/// many schemas the dump reads a large catalog, and later it would compete with the probes.
/// The guess holds when the first shard is reachable (the rehearsal's first job and the proof's
/// representative are then that shard); otherwise the dump is not used and they take their own.
/// Best effort: a failure is cached like any dump's and reported by the clone that reads it.
async fn prefetch_first_dump(
    opts: &ValidateOptions,
    fleet: &Fleet,
    migration: &Migration,
    sim_opts: &SimOptions,
) {
    let wanted = opts.sim.rehearsal == simulator::RehearsalMode::Shadow || opts.validate_rollback;
    let (true, Some(cache), Some(first)) = (wanted, &sim_opts.dump_cache, fleet.shards.first())
    else {
        return;
    };
    let (Some(instance), Ok(bin)) = (
        fleet.instance(&first.instance),
        topology::ephemeral::find_bin_dir(),
    ) else {
        return;
    };
    let partner = simulator::fleet_partner(fleet, first, |_| true).map(|s| s.location.schema());
    let db = first.location.database();
    let spec = &instance.connection;
    let listed = cache
        .schemas_to_clone(spec, db, first.location.schema(), partner, migration)
        .await;
    if let Ok(schemas) = listed {
        let _ = cache.dump(&bin, spec, db, &schemas).await;
    }
}

/// The execution log's line about the rollback step: with proofs per schema shape, each
/// shape's outcome and shard recovery time.
fn rollback_line(info: &RollbackInfo) -> String {
    let proofs: Vec<String> = info
        .proofs
        .iter()
        .map(|p| {
            format!(
                "shape {} ({} shard(s)): {}, shard recovery time {} ms",
                p.schema_fingerprint
                    .get(..12)
                    .unwrap_or(&p.schema_fingerprint),
                p.shards.len(),
                p.outcome.as_str(),
                p.duration_ms
            )
        })
        .collect();
    format!(
        "{} rollback, {}, {} irreversible step(s){}{}",
        info.source,
        if info.proven() {
            "proven on the shadow"
        } else if info.tested {
            "tested on the shadow"
        } else {
            "not tested"
        },
        info.irreversible.len(),
        if info.mismatches.is_empty() {
            String::new()
        } else {
            format!(", {} mismatch(es)", info.mismatches.len())
        },
        if proofs.is_empty() {
            String::new()
        } else {
            format!("; {}", proofs.join("; "))
        }
    )
}

/// The pipeline error for a simulator error: a custom probe refused by the pre-flight becomes
/// the configuration error of its rule's `sql` (file, line, column: exit 3 like a refusal when
/// the file is read), cancellation becomes [`PipelineError::Cancelled`].
fn sim_error(e: simulator::SimError, config: &gates::Config) -> PipelineError {
    match e {
        simulator::SimError::Cancelled => PipelineError::Cancelled,
        simulator::SimError::UnsafeCustomProbe {
            probe,
            shard,
            line,
            column,
            reason,
        } if config.probe_rules().iter().any(|p| p.name == probe) => {
            let on = shard.map(|s| format!(" on shard {s}")).unwrap_or_default();
            let reason = if reason.starts_with("calls ") || reason.starts_with("reads ") {
                format!("the query {reason}")
            } else {
                reason
            };
            PipelineError::Config(config.probe_refusal(
                &probe,
                (line, column),
                format!(
                    "custom rule `{probe}` refused{on}: {reason}; no custom probe ran on any shard"
                ),
            ))
        }
        e => e.into(),
    }
}
