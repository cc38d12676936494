//! Shadow rehearsal: start (or connect to) the shadow server, calibrate throughput on it, and
//! rehearse one schema shape in a fresh shadow database cloned from the shard (always dropped).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use migration_parser::Migration;
use sqlx::{Connection, PgConnection};
use topology::ConnectionSpec;

use super::job::{RehearsalJob, setup_failed};
use super::session::{backend_pid, guarded};
use crate::SimError;
use crate::conn::{connect_options, redacted, shadow_connect_options};
use crate::control::{CancelToken, StepLog};
use crate::dump::schemas_to_clone_on;
use crate::estimate::{Throughput, calibrate};
use crate::rehearsal::clone::{clone_schemas, refresh_matviews};
use crate::rehearsal::execute::run_on_shadow;
use crate::rehearsal::sample::ShadowSample;
use crate::rehearsal::server::{ShadowServer, shadow_connection};
use crate::rehearsal::{
    RehearsalLimits, RehearsalMode, RehearsalResult, StatementOutcome, StatementRehearsal,
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
#[allow(clippy::too_many_arguments)]
pub(super) async fn rehearse_on_shadow(
    migration: &Migration,
    job: &RehearsalJob,
    server: &ShadowServer,
    limits: RehearsalLimits,
    named: &BTreeSet<String>,
    options: &SimOptions,
    cancel: &CancelToken,
    steps: &StepLog,
) -> RehearsalResult {
    let t0 = Instant::now();
    let src_db = job.shard.location.database().to_string();
    let schema = job.shard.location.schema().to_string();
    let db = match server.create_db().await {
        Ok(d) => d,
        Err(e) => {
            return setup_failed(
                migration,
                &job.fingerprint,
                &job.shard,
                RehearsalMode::Shadow,
                server.spec.redacted_url(),
                e.to_string(),
            );
        }
    };
    let target = redacted(&server.spec, &db.name);
    let inner = async {
        // Source: which schemas, then pg_dump | psql.
        let opts = connect_options(&job.spec, &src_db).map_err(|e| e.to_string())?;
        let mut src = PgConnection::connect_with(&opts)
            .await
            .map_err(|e| format!("connect to source: {e}"))?;
        // The TimeZone a deploy client of the shard gets (server, database and role settings):
        // whether `timestamp` ↔ `timestamptz` rewrites depends on it (PG 12+: not under UTC),
        // so the shadow session runs under it — not under UTC, where every sqlx session
        // starts.
        let timezone = crate::dump::client_timezone(&server.bin_dir, &job.spec, &src_db).await;
        let schemas = schemas_to_clone_on(&mut src, &schema, named).await;
        let schemas = match schemas {
            Ok(s) => s,
            Err(e) => {
                let _ = src.close().await;
                return Err(format!("read source catalog: {e}"));
            }
        };
        let c0 = Instant::now();
        let clone = clone_schemas(
            &server.bin_dir,
            &job.spec,
            &src_db,
            &mut src,
            &schemas,
            &db.spec(),
            &db.name,
            options.dump_cache.as_deref(),
        )
        .await;
        let _ = src.close().await;
        let sample = read_shadow_sample(job, &src_db, &schemas, options, steps).await;
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
        let mut conn = shadow_connection(&db.spec(), &db.name, &schema, limits)
            .await
            .map_err(|e| e.to_string())?;
        session_timezone(&mut conn, timezone.as_deref()).await?;
        // As the demoted owner: the sample's inserts fire the tenant's triggers, and a view's
        // query runs tenant functions (see refresh_matviews). The sample first, so that the
        // views are computed from it.
        if let Some(sample) = &sample {
            clone_errors.extend(sample.load(&mut conn).await);
        }
        clone_errors.extend(refresh_matviews(&mut conn, &cloned.matviews).await);
        let pid = backend_pid(&mut conn).await.map_err(|e| e.to_string())?;
        let sopts = shadow_connect_options(&server.spec, &db.name).map_err(|e| e.to_string())?;
        let local = CancelToken::new();
        let (r, _) = guarded(
            run_on_shadow(
                &mut conn,
                migration,
                schemas,
                &schema,
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
        if sample.is_some() {
            withhold_values(&mut statements);
        }
        Ok::<_, String>((statements, clone_errors))
    }
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
    match inner {
        Ok((statements, clone_errors)) => RehearsalResult {
            fingerprint: job.fingerprint.clone(),
            shard: job.shard.id.clone(),
            schema,
            mode: RehearsalMode::Shadow,
            target,
            server_version: server.version,
            setup_error: None,
            clone_errors,
            statements,
            duration_ms: t0.elapsed().as_millis() as u64,
            in_place_refused: Vec::new(),
        },
        Err(e) => setup_failed(
            migration,
            &job.fingerprint,
            &job.shard,
            RehearsalMode::Shadow,
            target,
            e,
        ),
    }
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

/// The shadow session runs under the shard's TimeZone (`None`: unknown, the session's UTC).
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
