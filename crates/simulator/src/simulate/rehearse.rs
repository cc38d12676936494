//! Every rehearsal of a run, one per schema shape, in the mode the options ask for; and the
//! throughput calibration on the shadow.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use migration_parser::Migration;

use topology::Shard;

use super::fleet_rerun::rerun_second;
use super::in_place_run::InPlaceRun;
use super::job::{RehearsalJob, rehearsal_line, setup_failed};
use super::shadow::{calibrate_server, calibration_summary, rehearse_on_shadow, start_shadow};
use crate::control::{CancelToken, Progress, ProgressEvent, StepLog};
use crate::dump::schemas_named;
use crate::estimate::Throughput;
use crate::rehearsal::server::ShadowServer;
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
            let second = pair
                .as_ref()
                .filter(|(first, _)| jobs.first().is_some_and(|j| j.shard.id == first.shard.id))
                .map(|(_, second)| second);
            let (ready, ()) = tokio::join!(
                pending.wait(),
                prefetch_dump(migration, jobs.first(), second, options)
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
    // The per-fleet proof rides on the first rehearsal when its shard is the pair's first.
    let (mut partner, pair) = match pair {
        Some((first, second)) if jobs.first().is_some_and(|j| j.shard.id == first.shard.id) => {
            (Some(second), None)
        }
        other => (None, other),
    };
    let mut rerun = None;
    for job in jobs {
        if cancel.is_cancelled() {
            break;
        }
        let t0 = Instant::now();
        progress.event(ProgressEvent::RehearsalStarted {
            fingerprint: job.fingerprint.clone(),
            shard: job.shard.id.clone(),
        });
        let second = partner.take();
        let (r, second_run) = rehearse_on_shadow(
            migration,
            &job,
            second.as_ref(),
            &server,
            limits,
            &named,
            options,
            cancel,
            steps,
        )
        .await;
        steps.push("rehearse", rehearsal_line(&job, &r), t0.elapsed());
        if let (Some(second), Some(run)) = (second, second_run) {
            // Its time is in the rehearsal's.
            steps.push(
                "rehearse per fleet",
                format!(
                    "{} (run on the rehearsal's shadow database, after its shard)",
                    rerun_line(&second.id, &run)
                ),
                Duration::ZERO,
            );
            rerun = Some((second.id.clone(), run));
        }
        progress.event(ProgressEvent::RehearsalFinished {
            fingerprint: job.fingerprint.clone(),
            ok: r.ok(),
        });
        results.insert(job.fingerprint.clone(), r);
    }
    let rerun = match pair {
        Some(pair) if rerun.is_none() && !cancel.is_cancelled() => {
            let rerun = separate_rerun(migration, pair, &server, options, &named, cancel).await;
            steps.push("rehearse per fleet", rerun.1, rerun.2);
            Some(rerun.0)
        }
        _ => rerun,
    };
    drop(server);
    (results, tp, rerun)
}

/// The per-fleet proof on a shadow database of its own (when the first rehearsal's shard has
/// no partner in its database, another pair has): the second shard's run, the log line, the
/// time taken.
async fn separate_rerun(
    migration: &Migration,
    (first, second): (RehearsalJob, Shard),
    server: &ShadowServer,
    options: &SimOptions,
    named: &std::collections::BTreeSet<String>,
    cancel: &CancelToken,
) -> ((String, FleetRerun), String, Duration) {
    let t0 = Instant::now();
    let r = rerun_second(
        migration,
        &first,
        &second,
        server,
        options.shadow_limits(),
        named,
        options.dump_cache.as_deref(),
        cancel,
    )
    .await;
    let line = rerun_line(&second.id, &r);
    ((second.id, r), line, t0.elapsed())
}

/// The execution-log line of the per-fleet proof: `second`'s run after the first shard's.
fn rerun_line(second: &str, r: &FleetRerun) -> String {
    let failed = r
        .statements
        .iter()
        .find(|s| matches!(s.outcome, crate::rehearsal::StatementOutcome::Failed { .. }));
    format!(
        "shard {second} after shard {} in database {}: {}",
        r.first_shard,
        r.database,
        match (&r.setup_error, failed) {
            (Some(e), _) => format!("setup failed: {e}"),
            (None, Some(f)) => format!("statement {} failed", f.index + 1),
            (None, None) => "every statement succeeded".to_string(),
        }
    )
}

/// While a pending shadow starts: `pg_dump` of `job`'s shard into the run's dump cache, which
/// the rehearsal (and the rollback proof) would otherwise run only once the shadow is up. Best
/// effort: a failure is cached like any dump's and reported by the clone that reads it.
/// With the pair's `second` shard when the first rehearsal carries the per-fleet proof (its
/// clone holds both shards' schemas).
async fn prefetch_dump(
    migration: &Migration,
    job: Option<&RehearsalJob>,
    second: Option<&Shard>,
    options: &SimOptions,
) {
    let (Some(job), Some(cache)) = (job, options.dump_cache.as_deref()) else {
        return;
    };
    let Ok(bin_dir) = topology::ephemeral::find_bin_dir() else {
        return;
    };
    let db = job.shard.location.database();
    let (schema, second) = (
        job.shard.location.schema(),
        second.map(|s| s.location.schema()),
    );
    if let Ok(schemas) = cache
        .schemas_to_clone(&job.spec, db, schema, second, migration)
        .await
    {
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
