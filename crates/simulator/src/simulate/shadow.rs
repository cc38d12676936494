//! Shadow rehearsal: start (or connect to) the shadow server, calibrate throughput on it, and
//! rehearse one schema shape in a fresh shadow database cloned from the shard (always dropped).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use migration_parser::Migration;
use sqlx::{Connection, PgConnection};
use topology::{ConnectionSpec, Shard};

use super::job::{RehearsalJob, setup_failed};
use super::session::{backend_pid, guarded};
use crate::SimError;
use crate::conn::{connect_options, redacted, shadow_connect_options};
use crate::control::{CancelToken, StepLog};
use crate::dump::clone_lists_on;
use crate::estimate::{Throughput, calibrate};
use crate::rehearsal::clone::{clone_schemas, refresh_matviews};
use crate::rehearsal::execute::run_on_shadow;
use crate::rehearsal::sample::ShadowSample;
use crate::rehearsal::server::{ShadowServer, shadow_connection};
use crate::rehearsal::{
    FleetRerun, RehearsalLimits, RehearsalMode, RehearsalResult, StatementOutcome,
    StatementRehearsal,
};
use crate::run::SimOptions;

/// Start the ephemeral shadow cluster, or connect to [`SimOptions::shadow`], and log it.
pub(super) async fn start_shadow(
    options: &SimOptions,
    steps: &StepLog,
) -> Result<ShadowServer, SimError> {
    let t0 = Instant::now();
    let server = match &options.shadow {
        Some(spec) => ShadowServer::external(spec.clone(), options.shadow_is_ephemeral).await,
        None => ShadowServer::ephemeral().await,
    };
    let action = if options.shadow.is_some() {
        "connect shadow"
    } else {
        "start shadow"
    };
    match &server {
        Ok(s) => {
            steps.push(
                action,
                format!(
                    "{} (PostgreSQL {})",
                    if options.shadow.is_some() {
                        s.spec.redacted_url()
                    } else {
                        "ephemeral cluster".into()
                    },
                    s.version
                ),
                t0.elapsed(),
            );
            if let Some(line) = s.reaped.summary() {
                steps.push("reap shadow leftovers", line, Duration::ZERO);
            }
        }
        Err(e) => steps.push(action, format!("failed: {e}"), t0.elapsed()),
    }
    server
}

/// One line about a calibration, for the step log.
pub fn calibration_summary(t: &Throughput) -> String {
    format!(
        "{:.1} MB sample: scan {:.0} MB/s, rewrite {:.0} MB/s, index build {:.0} MB/s, catalog change {:.1} ms",
        t.sample_mb, t.scan_mb_per_s, t.rewrite_mb_per_s, t.index_mb_per_s, t.catalog_ms
    )
}

/// Calibrate in a scratch database of `server` (dropped afterwards).
pub(super) async fn calibrate_server(
    server: &ShadowServer,
    rows: u32,
    limits: RehearsalLimits,
) -> Result<Throughput, SimError> {
    let db = server.create_db().await?;
    let r = async {
        let mut c = shadow_connection(&server.spec, &db.name, "public", limits).await?;
        let r = calibrate(&mut c, rows).await;
        let _ = c.close().await;
        r.map_err(|source| SimError::Shadow {
            url: server.spec.redacted_url(),
            what: "calibrate".into(),
            source,
        })
    }
    .await;
    let _ = db.drop_now().await;
    r
}

/// Measure the throughput of the scratch server `shadow` ([`crate::estimate::calibrate`] on
/// `options.calibration_rows` rows in a database created for it and dropped afterwards), for
/// a caller that wants to calibrate at a moment of its choosing — before the probes load the
/// machine — or keep the figures for later runs ([`SimOptions::throughput`]).
pub async fn calibrate_shadow(
    shadow: &ConnectionSpec,
    options: &SimOptions,
) -> Result<Throughput, SimError> {
    let server = ShadowServer::external(shadow.clone(), options.shadow_is_ephemeral).await?;
    calibrate_server(&server, options.calibration_rows, options.shadow_limits()).await
}

/// Rehearse `job`'s shape in a fresh database on `server`, cloned from the shard; the
/// database is always dropped. A failure to set up is an outcome in the result.
///
/// With a `partner` (another shard of the same database), the clone holds the partner's
/// schemas too, and once the job's shard has run, the migration runs again on the same
/// database for the partner, as a per-tenant rollout runs it: that second run is the per-fleet
/// proof of non-tenant objects ([`FleetRerun`]), made without a clone of its own.
#[allow(clippy::too_many_arguments)]
pub(super) async fn rehearse_on_shadow(
    migration: &Migration,
    job: &RehearsalJob,
    partner: Option<&Shard>,
    server: &ShadowServer,
    limits: RehearsalLimits,
    named: &BTreeSet<String>,
    options: &SimOptions,
    cancel: &CancelToken,
    steps: &StepLog,
) -> (RehearsalResult, Option<FleetRerun>) {
    let t0 = Instant::now();
    let src_db = job.shard.location.database().to_string();
    let schema = job.shard.location.schema().to_string();
    let rerun = |setup_error: Option<String>, statements: Vec<StatementRehearsal>| FleetRerun {
        database: src_db.clone(),
        first_shard: job.shard.id.clone(),
        setup_error,
        statements,
    };
    let db = match server.create_db().await {
        Ok(d) => d,
        Err(e) => {
            let failed = setup_failed(
                migration,
                &job.fingerprint,
                &job.shard,
                RehearsalMode::Shadow,
                server.spec.redacted_url(),
                e.to_string(),
            );
            return (failed, partner.map(|_| rerun(Some(e.to_string()), vec![])));
        }
    };
    let target = redacted(&server.spec, &db.name);
    let ran = clone_and_run(
        migration, job, partner, server, &db, limits, named, options, cancel, steps,
    )
    .await;
    // Always drop the shadow database.
    let dropped = db.drop_now().await;
    if let Err(e) = &dropped {
        steps.push(
            "drop shadow database",
            format!("failed: {e}"),
            Duration::ZERO,
        );
    }
    match ran {
        Ok(ran) => {
            let second = match (partner, ran.partner) {
                (Some(_), Some(Ok(statements))) => Some(rerun(None, statements)),
                (Some(_), Some(Err(e))) => Some(rerun(Some(e), vec![])),
                (Some(_), None) => Some(rerun(
                    Some("the first shard's run did not complete".into()),
                    vec![],
                )),
                (None, _) => None,
            };
            let result = RehearsalResult {
                fingerprint: job.fingerprint.clone(),
                shard: job.shard.id.clone(),
                schema,
                mode: RehearsalMode::Shadow,
                target,
                server_version: server.version,
                setup_error: None,
                clone_errors: ran.clone_errors,
                statements: ran.statements,
                duration_ms: t0.elapsed().as_millis() as u64,
                in_place_refused: Vec::new(),
            };
            (result, second)
        }
        Err(e) => {
            let second = partner.map(|_| rerun(Some(e.clone()), vec![]));
            let failed = setup_failed(
                migration,
                &job.fingerprint,
                &job.shard,
                RehearsalMode::Shadow,
                target,
                e,
            );
            (failed, second)
        }
    }
}

/// What [`clone_and_run`] gave: the job's run, what the clone could not restore, and the
/// partner's run after it (`None` without a partner, or when the job's run was stopped).
struct Ran {
    statements: Vec<StatementRehearsal>,
    clone_errors: Vec<String>,
    partner: Option<Result<Vec<StatementRehearsal>, String>>,
}

/// Clone the job's shard (and the partner's schemas) into `db`, load the sample, run the
/// migration for the shard, then for the partner. `Err`: the setup failed.
#[allow(clippy::too_many_arguments)]
async fn clone_and_run(
    migration: &Migration,
    job: &RehearsalJob,
    partner: Option<&Shard>,
    server: &ShadowServer,
    db: &crate::rehearsal::server::ShadowDb,
    limits: RehearsalLimits,
    named: &BTreeSet<String>,
    options: &SimOptions,
    cancel: &CancelToken,
    steps: &StepLog,
) -> Result<Ran, String> {
    let src_db = job.shard.location.database();
    let schema = job.shard.location.schema();
    // Source: which schemas, then pg_dump | psql.
    let opts = connect_options(&job.spec, src_db).map_err(|e| e.to_string())?;
    let mut src = PgConnection::connect_with(&opts)
        .await
        .map_err(|e| format!("connect to source: {e}"))?;
    // The TimeZone a deploy client of the shard gets (server, database and role settings):
    // whether `timestamp` ↔ `timestamptz` rewrites depends on it (PG 12+: not under UTC), so
    // the shadow session runs under it — not under UTC, where every sqlx session starts. Read
    // (a `psql` of its own) while the schemas are listed and cloned.
    let c0 = Instant::now();
    let (timezone, listed) = tokio::join!(
        crate::dump::client_timezone(&server.bin_dir, &job.spec, src_db),
        async {
            let partner = partner.map(|b| b.location.schema());
            let lists = clone_lists_on(&mut src, schema, partner, named).await?;
            let clone = clone_schemas(
                &server.bin_dir,
                &job.spec,
                src_db,
                &mut src,
                &lists.1,
                &db.spec(),
                &db.name,
                options.dump_cache.as_deref(),
            )
            .await;
            Ok::<_, sqlx::Error>((lists, clone))
        }
    );
    let _ = src.close().await;
    let (timezone, unknown_tz) = crate::dump::rehearsal_timezone(timezone, &job.shard.id);
    if let Some(line) = unknown_tz {
        steps.push("timezone", line, std::time::Duration::ZERO);
    }
    let timezone = Some(timezone);
    let ((own, schemas), clone) = listed.map_err(|e| format!("read source catalog: {e}"))?;
    // The sample: the job's own schemas only (never the partner's rows).
    let sample = read_shadow_sample(job, src_db, &own, options, steps).await;
    let cloned = clone.map_err(|e| format!("clone failed: {e}"))?;
    let mut clone_errors = cloned.errors;
    db.demote().await.map_err(|e| e.to_string())?;
    steps.push(
        "clone schema",
        format!(
            "{} → shadow ({} schema(s): {}; {} error(s))",
            job.shard.id,
            schemas.len(),
            schemas.join(", "),
            clone_errors.len()
        ),
        c0.elapsed(),
    );
    let mut conn = shadow_connection(&db.spec(), &db.name, schema, limits)
        .await
        .map_err(|e| e.to_string())?;
    session_timezone(&mut conn, timezone.as_deref()).await?;
    // As the demoted owner: the sample's inserts fire the tenant's triggers, and a view's
    // query runs tenant functions (see refresh_matviews). The sample first, so that the views
    // are computed from it.
    if let Some(sample) = &sample {
        clone_errors.extend(sample.load(&mut conn).await);
    }
    clone_errors.extend(refresh_matviews(&mut conn, &cloned.matviews, sample.is_some()).await);
    let pid = backend_pid(&mut conn).await.map_err(|e| e.to_string())?;
    let sopts = shadow_connect_options(&server.spec, &db.name).map_err(|e| e.to_string())?;
    let local = CancelToken::new();
    let (r, stopped) = guarded(
        run_on_shadow(
            &mut conn,
            migration,
            schemas.clone(),
            schema,
            server.version,
            &local,
        ),
        cancel,
        &local,
        None,
        sopts,
        pid,
    )
    .await;
    let _ = conn.close().await;
    let mut statements = r.map_err(|e| format!("shadow connection lost: {e}"))?;
    let mut second = match partner {
        Some(b) if !stopped && !cancel.is_cancelled() => Some(
            run_for_schema(
                migration,
                b.location.schema(),
                server,
                db,
                limits,
                &schemas,
                timezone.as_deref(),
                cancel,
            )
            .await,
        ),
        _ => None,
    };
    if sample.is_some() {
        // Real rows were on the shadow: the partner's run met what the first run made of them.
        withhold_values(&mut statements);
        if let Some(Ok(st)) = &mut second {
            withhold_values(st);
        }
    }
    Ok(Ran {
        statements,
        clone_errors,
        partner: second,
    })
}

/// The migration on `db` for tenant `schema`, in a session of its own (under `timezone` when
/// known): the partner's run after the rehearsal's, and both runs of a separate per-fleet
/// proof. `Err`: the session could not be opened or was lost.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_for_schema(
    migration: &Migration,
    schema: &str,
    server: &ShadowServer,
    db: &crate::rehearsal::server::ShadowDb,
    limits: RehearsalLimits,
    schemas: &[String],
    timezone: Option<&str>,
    cancel: &CancelToken,
) -> Result<Vec<StatementRehearsal>, String> {
    let mut conn = shadow_connection(&db.spec(), &db.name, schema, limits)
        .await
        .map_err(|e| e.to_string())?;
    session_timezone(&mut conn, timezone).await?;
    let r = run_on_shadow(
        &mut conn,
        migration,
        schemas.to_vec(),
        schema,
        server.version,
        cancel,
    )
    .await;
    let _ = conn.close().await;
    r.map_err(|e| format!("shadow connection lost: {e}"))
}

/// With [`crate::ShadowData::Sample`]: the shard's sample (through the run's
/// [`SimOptions::sample_cache`], shared with the rollback proof), logged as the step "shadow
/// data" in both cases — which rows the shadow holds. `None`: no real row (synthetic, or the
/// sample could not be read: the rehearsal then runs on empty tables, and the step says why).
async fn read_shadow_sample(
    job: &RehearsalJob,
    src_db: &str,
    schemas: &[String],
    options: &SimOptions,
    steps: &StepLog,
) -> Option<std::sync::Arc<ShadowSample>> {
    let Some(limits) = options.shadow_data.sample_limits() else {
        steps.push(
            "shadow data",
            format!(
                "synthetic rows (no real row of shard {} copied)",
                job.shard.id
            ),
            Duration::ZERO,
        );
        return None;
    };
    let t0 = Instant::now();
    let r = options
        .sample_cache
        .sample(&job.spec, src_db, schemas, limits, options.probe_timeout)
        .await;
    match r {
        Ok(s) => {
            steps.push("shadow data", s.summary(&job.shard.id), t0.elapsed());
            Some(s)
        }
        Err(e) => {
            steps.push(
                "shadow data",
                format!(
                    "no real sample of shard {} ({e}): empty tables",
                    job.shard.id
                ),
                t0.elapsed(),
            );
            None
        }
    }
}

/// The shadow session runs under the shard's TimeZone (see `dump::rehearsal_timezone`; `None`:
/// the session's UTC, for runs that only look for failures).
async fn session_timezone(conn: &mut PgConnection, tz: Option<&str>) -> Result<(), String> {
    let Some(tz) = tz else { return Ok(()) };
    sqlx::query("SELECT set_config('TimeZone', $1, false)")
        .bind(tz)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("the shard's TimeZone {tz:?} on the shadow: {e}"))
}

/// What a failed statement's message becomes when the shadow held sampled real rows.
const WITHHELD: &str =
    "message withheld: the statement ran on sampled real rows (see the SQLSTATE)";

/// Withhold the messages of statements that ran on real rows (they may quote a row's value).
fn withhold_values(statements: &mut [StatementRehearsal]) {
    // Quoted values could be redacted, but a value the migration's own code raises unquoted
    // (RAISE with any ERRCODE) cannot be told from message text: on real rows nothing of the
    // server's message is kept; the SQLSTATE and the statement say what failed.
    for st in statements {
        if let StatementOutcome::Failed { message, .. } = &mut st.outcome {
            *message = WITHHELD.to_string();
        }
    }
}
