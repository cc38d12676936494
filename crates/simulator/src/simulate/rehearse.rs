//! Every rehearsal of a run, one per schema shape, in the mode the options ask for; and the
//! throughput calibration on the shadow.

use std::collections::BTreeMap;
use std::time::Instant;

use migration_parser::Migration;

use topology::Shard;

use super::fleet_rerun::rerun_second;
use super::in_place_run::InPlaceRun;
use super::job::{RehearsalJob, rehearsal_line, setup_failed};
use super::shadow::{calibrate_server, calibration_summary, rehearse_on_shadow, start_shadow};
use crate::control::{CancelToken, Progress, ProgressEvent, StepLog};
use crate::dump::schemas_named;
use crate::estimate::Throughput;
use crate::rehearsal::{FleetRerun, RehearsalMode, RehearsalResult};
use crate::run::SimOptions;

/// Run every rehearsal (sequentially) and calibrate; on the shadow, also the per-fleet proof of
/// `pair` (the second shard's id and its run after the first's). Always drops what it created.
pub(super) async fn rehearse_all(
    migration: &Migration,
    jobs: Vec<RehearsalJob>,
    pair: Option<(RehearsalJob, Shard)>,
    options: &SimOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
    steps: &StepLog,
) -> Rehearsed {
    let mut results = BTreeMap::new();
    let mut tp = options.throughput.unwrap_or_default();
    let limits = options.shadow_limits();
    let named = schemas_named(migration);
    match options.rehearsal {
        RehearsalMode::Skip => return (results, tp, None),
        RehearsalMode::InPlace => {
            let run = InPlaceRun {
                migration,
                options,
                named: &named,
                progress,
                cancel,
                steps,
            };
            run.all(jobs, &mut results).await;
            return (results, tp, None);
        }
        RehearsalMode::Shadow => {}
    }
    // A shadow the caller is still starting: wait for it now (the probes already run).
    let resolved;
    let options = match &options.shadow_pending {
        Some(pending) => {
            // Meanwhile, the dump the first rehearsal clones (shared with the proof).
            let (ready, ()) = tokio::join!(
                pending.wait(),
                prefetch_dump(migration, jobs.first(), options)
            );
            resolved = resolve_pending(options, ready);
            tp = resolved.throughput.unwrap_or_default();
            &resolved
        }
        None => options,
    };
    let server = match start_shadow(options, steps).await {
        Ok(s) => s,
        Err(e) => {
            for job in jobs {
                let r = setup_failed(
                    migration,
                    &job.fingerprint,
                    &job.shard,
                    RehearsalMode::Shadow,
                    String::new(),
                    e.to_string(),
                );
                results.insert(job.fingerprint.clone(), r);
            }
            return (results, tp, None);
        }
    };
    // Calibration.
    if options.calibrate && options.throughput.is_none() && !cancel.is_cancelled() {
        let t0 = Instant::now();
        match calibrate_server(&server, options.calibration_rows, limits).await {
            Ok(t) => {
                tp = t;
                progress.event(ProgressEvent::Calibrated {
                    scan_mb_per_s: t.scan_mb_per_s,
                    rewrite_mb_per_s: t.rewrite_mb_per_s,
                    index_mb_per_s: t.index_mb_per_s,
                });
                steps.push("calibrate", calibration_summary(&t), t0.elapsed());
            }
            Err(e) => steps.push(
                "calibrate",
                format!("failed, using defaults: {e}"),
                t0.elapsed(),
            ),
        }
    }
    for job in jobs {
        if cancel.is_cancelled() {
            break;
        }
        let t0 = Instant::now();
        progress.event(ProgressEvent::RehearsalStarted {
            fingerprint: job.fingerprint.clone(),
            shard: job.shard.id.clone(),
        });
        let r = rehearse_on_shadow(
            migration, &job, &server, limits, &named, options, cancel, steps,
        )
        .await;
        steps.push("rehearse", rehearsal_line(&job, &r), t0.elapsed());
        progress.event(ProgressEvent::RehearsalFinished {
            fingerprint: job.fingerprint.clone(),
            ok: r.ok(),
        });
        results.insert(job.fingerprint.clone(), r);
    }
    let rerun = match pair {
        Some((first, second)) if !cancel.is_cancelled() => {
            let t0 = Instant::now();
            let r = rerun_second(
                migration,
                &first,
                &second,
                &server,
                limits,
                &named,
                options.dump_cache.as_deref(),
                cancel,
            )
            .await;
            steps.push(
                "rehearse per fleet",
                format!(
                    "shard {} after shard {} in database {}: {}",
                    second.id,
                    first.shard.id,
                    r.database,
                    match (
                        &r.setup_error,
                        r.statements.iter().find(|s| matches!(
                            s.outcome,
                            crate::rehearsal::StatementOutcome::Failed { .. }
                        ))
                    ) {
                        (Some(e), _) => format!("setup failed: {e}"),
                        (None, Some(f)) => format!("statement {} failed", f.index + 1),
                        (None, None) => "every statement succeeded".to_string(),
                    }
                ),
                t0.elapsed(),
            );
            Some((second.id.clone(), r))
        }
        _ => None,
    };
    drop(server);
    (results, tp, rerun)
}

/// While a pending shadow starts: `pg_dump` of `job`'s shard into the run's dump cache, which
/// the rehearsal (and the rollback proof) would otherwise run only once the shadow is up. Best
/// effort: a failure is cached like any dump's and reported by the clone that reads it.
async fn prefetch_dump(migration: &Migration, job: Option<&RehearsalJob>, options: &SimOptions) {
    let (Some(job), Some(cache)) = (job, options.dump_cache.as_deref()) else {
        return;
    };
    let Ok(bin_dir) = topology::ephemeral::find_bin_dir() else {
        return;
    };
    let db = job.shard.location.database();
    let schema = job.shard.location.schema();
    if let Ok(schemas) = crate::dump::schemas_to_clone(&job.spec, db, schema, migration).await {
        let _ = cache.dump(&bin_dir, &job.spec, db, &schemas).await;
    }
}

/// The options of a run whose pending shadow is now `ready`: its spec (an ephemeral cluster of
/// the caller), throughput and calibration choice replace the options' own (all three only
/// when the shadow started).
fn resolve_pending(options: &SimOptions, ready: crate::ReadyShadow) -> SimOptions {
    let mut o = options.clone();
    o.shadow_pending = None;
    // Without a shadow, the rehearsal starts its own and calibrates as the options say.
    if let Some(spec) = ready.spec {
        o.shadow = Some(spec);
        o.shadow_is_ephemeral = true;
        if ready.throughput.is_some() {
            o.throughput = ready.throughput;
        }
        o.calibrate = ready.calibrate;
    }
    o
}

/// What [`rehearse_all`] returns: the rehearsals by fingerprint, the throughput, and the
/// per-fleet proof (the second shard's id and its run).
pub(super) type Rehearsed = (
    BTreeMap<String, RehearsalResult>,
    Throughput,
    Option<(String, FleetRerun)>,
);
