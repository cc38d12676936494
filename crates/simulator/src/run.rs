//! Orchestration: probes on every shard in parallel (bounded per instance), one rehearsal per
//! schema shape, lock-time estimates, progress, cancellation and the execution log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migration_parser::Migration;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Semaphore;
use topology::{Catalog, ConnectionSpec, Fleet, Instance, Shard};

use crate::SimError;
use crate::conn::{connect_options, is_connection_error, lazy_pool, redacted};
use crate::control::{CancelToken, Progress, ProgressEvent, StepLog};
use crate::custom::CustomProbe;
use crate::estimate::{Throughput, calibrate, estimate};
use crate::in_place::{self, InPlaceRefusal};
use crate::probe::{self, ProbeLimits, ProbePlan};
use crate::rehearsal::{
    self, NotRunReason, RehearsalLimits, RehearsalMode, RehearsalResult, ShadowServer,
    StatementOutcome, StatementRehearsal,
};

/// Options of a simulation run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Connections per instance (probes of several shards of one instance share them).
    pub concurrency: u32,
    /// `statement_timeout` of every probe query.
    pub probe_timeout: Duration,
    /// `lock_timeout` of probe queries and rehearsal statements.
    pub lock_timeout: Duration,
    /// Upper bound for all probes of one shard; the shard is then reported incomplete.
    pub shard_timeout: Duration,
    /// Connect timeout per instance.
    pub connect_timeout: Duration,
    /// `statement_timeout` of rehearsal statements.
    pub rehearsal_statement_timeout: Duration,
    /// Shadow (default), in place, or none.
    pub rehearsal: RehearsalMode,
    /// `--shadow URL`: a scratch server to create the shadow databases on instead of an
    /// ephemeral cluster.
    pub shadow: Option<ConnectionSpec>,
    /// `shadow` is an ephemeral cluster this process started (an `EphemeralPg` shared with
    /// other steps), not a scratch server: its admin is a superuser, so every shadow database
    /// gets its own owner role that the migration runs as, demoted from superuser; and its
    /// spare databases may be taken. Never set it for a `--shadow URL`. Default false.
    pub shadow_is_ephemeral: bool,
    /// Calibrate throughput on the shadow (otherwise [`Throughput::default`]).
    pub calibrate: bool,
    /// Rows of the calibration table (≈ 100 bytes each).
    pub calibration_rows: u32,
    /// Use these figures instead of calibrating.
    pub throughput: Option<Throughput>,
    /// Custom read-only SQL probes (e.g. gates' `Config::probe_rules()`), run on every shard in
    /// the probe transaction after the built-in probes, each under its own savepoint; results in
    /// [`ShardEvidence::custom_probes`]. Names must be unique and non-empty. Default: none.
    pub custom_probes: Vec<CustomProbe>,
    /// Share the rehearsal's `pg_dump` of a shard with other users of the same cache in this
    /// run (the rollback proof clones the same shard). Default: none (dump on its own).
    pub dump_cache: Option<std::sync::Arc<crate::DumpCache>>,
    /// The blocking-lock budget (gates' `lock-time-budget`). In place, the rehearsal's
    /// `lock_timeout` is at most this, and `idle_in_transaction_session_timeout` is this plus
    /// [`IDLE_MARGIN`] (without a budget: `lock_timeout` plus the margin). Default: none.
    pub lock_budget: Option<Duration>,
}

/// What the in-place rehearsal's `idle_in_transaction_session_timeout` adds to the lock budget.
pub const IDLE_MARGIN: Duration = Duration::from_secs(5);

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            concurrency: 4,
            probe_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(2),
            shard_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            rehearsal_statement_timeout: Duration::from_secs(60),
            rehearsal: RehearsalMode::Shadow,
            shadow: None,
            shadow_is_ephemeral: false,
            calibrate: true,
            calibration_rows: 100_000,
            throughput: None,
            custom_probes: Vec::new(),
            dump_cache: None,
            lock_budget: None,
        }
    }
}

pub use evidence::{CatalogSummary, ShardEvidence, SimulationResult};

/// A few numbers about a shard's catalog.
pub(crate) fn catalog_summary(c: &Catalog) -> CatalogSummary {
    CatalogSummary {
        tables: c.tables.len(),
        columns: c.tables.values().map(|t| t.columns.len()).sum(),
        constraints: c.tables.values().map(|t| t.constraints.len()).sum(),
        indexes: c.tables.values().map(|t| t.indexes.len()).sum(),
        total_bytes: c.total_bytes(),
    }
}

/// The simulator: options plus [`Simulator::run`].
#[derive(Debug, Clone, Default)]
pub struct Simulator {
    /// Options.
    pub options: SimOptions,
}

/// Shorthand for `Simulator { options }.run(...)`.
pub async fn run(
    migration: &Migration,
    fleet: &Fleet,
    catalogs: Option<&BTreeMap<String, Catalog>>,
    options: &SimOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<SimulationResult, SimError> {
    Simulator {
        options: options.clone(),
    }
    .run(migration, fleet, catalogs, progress, cancel)
    .await
}

fn instance<'a>(fleet: &'a Fleet, name: &str) -> Option<&'a Instance> {
    fleet.instances.iter().find(|i| i.name == name)
}

/// Cancel the backend `pid` from a fresh connection when `token` fires; resolves never.
async fn cancel_backend_on(token: CancelToken, opts: PgConnectOptions, pid: i32) {
    token.cancelled().await;
    if let Ok(mut c) = PgConnection::connect_with(&opts).await {
        let _ = sqlx::query("SELECT pg_cancel_backend($1)")
            .bind(pid)
            .execute(&mut c)
            .await;
        let _ = c.close().await;
    }
    std::future::pending::<()>().await
}

/// Run `fut` (which works on the backend `pid`); when `parent` is cancelled or `deadline`
/// passes, `local` is cancelled and the backend's running query is cancelled, so `fut` ends
/// quickly on its own (rolling back). Returns the output and whether the deadline hit.
async fn guarded<F: Future>(
    fut: F,
    parent: &CancelToken,
    local: &CancelToken,
    deadline: Option<Duration>,
    opts: PgConnectOptions,
    pid: i32,
) -> (F::Output, bool) {
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trigger = {
        let parent = parent.clone();
        let local = local.clone();
        let timed_out = timed_out.clone();
        async move {
            match deadline {
                Some(d) => {
                    tokio::select! {
                        _ = parent.cancelled() => {}
                        _ = tokio::time::sleep(d) => { timed_out.store(true, std::sync::atomic::Ordering::SeqCst); }
                    }
                }
                None => parent.cancelled().await,
            }
            local.cancel();
            std::future::pending::<()>().await
        }
    };
    let killer = cancel_backend_on(local.clone(), opts, pid);
    let out = tokio::select! {
        biased;
        r = fut => r,
        _ = trigger => unreachable!("pending"),
        _ = killer => unreachable!("pending"),
    };
    (out, timed_out.load(std::sync::atomic::Ordering::SeqCst))
}

async fn backend_pid(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
}

struct ShardOutcome {
    probes: Option<probe::ShardProbes>,
    version: Option<u32>,
    unreachable: Option<String>,
    incomplete: Option<String>,
    duration: Duration,
}

#[allow(clippy::too_many_arguments)]
async fn probe_shard(
    pool: PgPool,
    opts: PgConnectOptions,
    sem: Arc<Semaphore>,
    shard: Shard,
    plan: Arc<ProbePlan>,
    options: SimOptions,
    cancel: CancelToken,
) -> ShardOutcome {
    let mut out = ShardOutcome {
        probes: None,
        version: None,
        unreachable: None,
        incomplete: None,
        duration: Duration::ZERO,
    };
    let permit = tokio::select! {
        p = sem.acquire_owned() => p,
        _ = cancel.cancelled() => { out.incomplete = Some("cancelled".into()); return out; }
    };
    let Ok(_permit) = permit else {
        out.incomplete = Some("cancelled".into());
        return out;
    };
    // Time the probing itself, not the wait for a connection slot.
    let started = Instant::now();
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            out.unreachable = Some(format!("cannot connect: {e}"));
            out.duration = started.elapsed();
            return out;
        }
    };
    let prep = sqlx::query_as::<_, (i32, String)>(
        "SELECT pg_backend_pid(), current_setting('server_version_num')",
    )
    .fetch_one(&mut *conn)
    .await
    .map(|(pid, v)| (pid, v.trim().parse::<u32>().map(|n| n / 10000).unwrap_or(0)));
    let (pid, version) = match prep {
        Ok(x) => x,
        Err(e) => {
            conn.close_on_drop();
            out.unreachable = Some(format!("connection failed: {e}"));
            out.duration = started.elapsed();
            return out;
        }
    };
    out.version = Some(version);
    let limits = ProbeLimits {
        statement_timeout: options.probe_timeout,
        lock_timeout: options.lock_timeout,
        server_version: version,
    };
    let local = CancelToken::new();
    let schema = shard.location.schema().to_string();
    let (res, timed_out) = guarded(
        probe::run_probes(
            &mut conn,
            &shard.id,
            &schema,
            &plan,
            &options.custom_probes,
            limits,
            &local,
        ),
        &cancel,
        &local,
        Some(options.shard_timeout),
        opts,
        pid,
    )
    .await;
    match res {
        Ok(p) => out.probes = Some(p),
        Err(probe::ConnectionLost(e)) => {
            conn.close_on_drop();
            out.unreachable = Some(format!("connection lost: {e}"));
        }
    }
    if matches!(shard.location, topology::ShardLocation::Database { .. }) || timed_out {
        // Database-per-tenant: every shard has its own pool; do not keep idle connections
        // around (the per-instance bound must hold across databases).
        conn.close_on_drop();
    }
    if timed_out {
        out.incomplete = Some(format!(
            "probes stopped after the shard timeout of {} s",
            options.shard_timeout.as_secs()
        ));
    } else if cancel.is_cancelled() {
        out.incomplete = Some("cancelled".into());
    }
    out.duration = started.elapsed();
    out
}

fn setup_failed(
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
                lock_source: rehearsal::LockSource::Unknown,
                rewritten: Vec::new(),
                created: Vec::new(),
                in_block: st.tx.in_block,
                duration_ms: 0.0,
            })
            .collect(),
        duration_ms: 0,
    }
}

struct RehearsalJob {
    fingerprint: String,
    shard: Shard,
    spec: ConnectionSpec,
}

/// Run every rehearsal (sequentially) and calibrate. Always drops what it created.
async fn rehearse_all(
    migration: &Migration,
    jobs: Vec<RehearsalJob>,
    options: &SimOptions,
    progress: &dyn Progress,
    cancel: &CancelToken,
    steps: &StepLog,
) -> (BTreeMap<String, RehearsalResult>, Throughput) {
    let mut results = BTreeMap::new();
    let mut tp = options.throughput.unwrap_or_default();
    let limits = RehearsalLimits {
        statement_timeout: options.rehearsal_statement_timeout,
        lock_timeout: options.lock_timeout,
        idle_in_transaction_timeout: options.lock_timeout + IDLE_MARGIN,
    };
    let named = rehearsal::schemas_named(migration);
    match options.rehearsal {
        RehearsalMode::Skip => return (results, tp),
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
            return (results, tp);
        }
        RehearsalMode::Shadow => {}
    }
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
            return (results, tp);
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
            migration,
            &job,
            &server,
            limits,
            &named,
            options.dump_cache.as_deref(),
            cancel,
            steps,
        )
        .await;
        steps.push("rehearse", rehearsal_line(&job, &r), t0.elapsed());
        progress.event(ProgressEvent::RehearsalFinished {
            fingerprint: job.fingerprint.clone(),
            ok: r.ok(),
        });
        results.insert(job.fingerprint.clone(), r);
    }
    drop(server);
    (results, tp)
}

/// Start the ephemeral shadow cluster, or connect to [`SimOptions::shadow`], and log it.
/// The execution log's line for one rehearsal.
fn rehearsal_line(job: &RehearsalJob, r: &RehearsalResult) -> String {
    format!(
        "shard {} (shape {}): {}",
        job.shard.id,
        short(&job.fingerprint),
        summary(r)
    )
}

async fn start_shadow(options: &SimOptions, steps: &StepLog) -> Result<ShadowServer, SimError> {
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

/// The in-place rehearsals of a run: per shape, classify the statements on the representative
/// shard ([`crate::in_place::classify`]); run them in place only when none is refused, else
/// rehearse that shape on the shadow (started on first need) and record the refusals.
struct InPlaceRun<'a> {
    migration: &'a Migration,
    options: &'a SimOptions,
    named: &'a std::collections::BTreeSet<String>,
    progress: &'a dyn Progress,
    cancel: &'a CancelToken,
    steps: &'a StepLog,
}

impl InPlaceRun<'_> {
    async fn all(&self, jobs: Vec<RehearsalJob>, results: &mut BTreeMap<String, RehearsalResult>) {
        let o = self.options;
        let lock_timeout = o
            .lock_budget
            .map_or(o.lock_timeout, |b| b.min(o.lock_timeout));
        let in_place_limits = RehearsalLimits {
            statement_timeout: o.rehearsal_statement_timeout,
            lock_timeout,
            idle_in_transaction_timeout: o.lock_budget.unwrap_or(lock_timeout) + IDLE_MARGIN,
        };
        let shadow_limits = RehearsalLimits {
            lock_timeout: o.lock_timeout,
            ..in_place_limits
        };
        let mut shadow: Option<Result<ShadowServer, String>> = None;
        for job in jobs {
            if self.cancel.is_cancelled() {
                break;
            }
            let t0 = Instant::now();
            self.progress.event(ProgressEvent::RehearsalStarted {
                fingerprint: job.fingerprint.clone(),
                shard: job.shard.id.clone(),
            });
            let outcome = rehearse_in_place(
                self.migration,
                &job,
                in_place_limits,
                self.named,
                self.cancel,
            )
            .await;
            let (r, action) = match outcome {
                InPlaceOutcome::Done(r) => (r, "rehearse in place"),
                InPlaceOutcome::Refused(refused) => {
                    let server = match shadow.take() {
                        Some(s) => s,
                        None => start_shadow(o, self.steps).await.map_err(|e| e.to_string()),
                    };
                    let mut r = match &server {
                        Ok(server) => {
                            rehearse_on_shadow(
                                self.migration,
                                &job,
                                server,
                                shadow_limits,
                                self.named,
                                o.dump_cache.as_deref(),
                                self.cancel,
                                self.steps,
                            )
                            .await
                        }
                        Err(e) => setup_failed(
                            self.migration,
                            &job.fingerprint,
                            &job.shard,
                            RehearsalMode::Shadow,
                            String::new(),
                            e.clone(),
                        ),
                    };
                    shadow = Some(server);
                    r.in_place_refused = refused;
                    (r, "rehearse on the shadow (in place refused)")
                }
            };
            self.steps
                .push(action, rehearsal_line(&job, &r), t0.elapsed());
            self.progress.event(ProgressEvent::RehearsalFinished {
                fingerprint: job.fingerprint.clone(),
                ok: r.ok(),
            });
            results.insert(job.fingerprint.clone(), r);
        }
    }
}

/// One line about a calibration, for the step log.
pub fn calibration_summary(t: &Throughput) -> String {
    format!(
        "{:.1} MB sample: scan {:.0} MB/s, rewrite {:.0} MB/s, index build {:.0} MB/s, catalog change {:.1} ms",
        t.sample_mb, t.scan_mb_per_s, t.rewrite_mb_per_s, t.index_mb_per_s, t.catalog_ms
    )
}

/// Calibrate in a scratch database of `server` (dropped afterwards).
async fn calibrate_server(
    server: &ShadowServer,
    rows: u32,
    limits: RehearsalLimits,
) -> Result<Throughput, SimError> {
    let db = server.create_db().await?;
    let r = async {
        let mut c = rehearsal::shadow_connection(&server.spec, &db.name, "public", limits).await?;
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
    let limits = RehearsalLimits {
        statement_timeout: options.rehearsal_statement_timeout,
        lock_timeout: options.lock_timeout,
        idle_in_transaction_timeout: options.lock_timeout + IDLE_MARGIN,
    };
    calibrate_server(&server, options.calibration_rows, limits).await
}

fn short(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

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

/// What [`rehearse_in_place`] did.
enum InPlaceOutcome {
    /// Ran in place (or could not be set up).
    Done(RehearsalResult),
    /// Nothing ran: these statements may not run on the target.
    Refused(Vec<InPlaceRefusal>),
}

async fn rehearse_in_place(
    migration: &Migration,
    job: &RehearsalJob,
    limits: RehearsalLimits,
    named: &std::collections::BTreeSet<String>,
    cancel: &CancelToken,
) -> InPlaceOutcome {
    let t0 = Instant::now();
    let db = job.shard.location.database().to_string();
    let schema = job.shard.location.schema().to_string();
    let target = redacted(&job.spec, &db);
    let failed = |target: String, e: String| {
        InPlaceOutcome::Done(setup_failed(
            migration,
            &job.fingerprint,
            &job.shard,
            RehearsalMode::InPlace,
            target,
            e,
        ))
    };
    let opts = match connect_options(&job.spec, &db) {
        Ok(o) => o,
        Err(e) => return failed(target, e.to_string()),
    };
    let mut conn = match PgConnection::connect_with(&opts).await {
        Ok(c) => c,
        Err(e) => return failed(target, e.to_string()),
    };
    let prep = async {
        let pid = backend_pid(&mut conn).await?;
        let v = rehearsal::server_version(&mut conn).await?;
        let schemas = rehearsal::schemas_to_clone(&mut conn, &schema, named).await?;
        Ok::<_, sqlx::Error>((pid, v, schemas))
    }
    .await;
    let (pid, version, schemas) = match prep {
        Ok(x) => x,
        Err(e) => {
            let _ = conn.close().await;
            return failed(target, e.to_string());
        }
    };
    // Nothing runs on the target before every statement is proven transactional.
    let refused = match in_place::classify(&mut conn, migration, &schema).await {
        Ok(r) => r,
        Err(e) if is_connection_error(&e) => {
            let _ = conn.close().await;
            return failed(target, e.to_string());
        }
        Err(e) => vec![InPlaceRefusal {
            index: 0,
            line: migration.statements.first().map_or(1, |s| s.span.line),
            statement: "(the whole migration)".into(),
            reasons: vec![format!(
                "its statements could not be checked on the shard: {e}"
            )],
        }],
    };
    if !refused.is_empty() {
        let _ = conn.close().await;
        return InPlaceOutcome::Refused(refused);
    }
    let local = CancelToken::new();
    let (r, _) = guarded(
        rehearsal::run_in_place(
            &mut conn, migration, schemas, &schema, version, limits, &local,
        ),
        cancel,
        &local,
        None,
        opts,
        pid,
    )
    .await;
    let _ = conn.close().await;
    match r {
        Ok(statements) => InPlaceOutcome::Done(RehearsalResult {
            fingerprint: job.fingerprint.clone(),
            shard: job.shard.id.clone(),
            schema,
            mode: RehearsalMode::InPlace,
            target,
            server_version: version,
            setup_error: None,
            clone_errors: Vec::new(),
            statements,
            duration_ms: t0.elapsed().as_millis() as u64,
            in_place_refused: Vec::new(),
        }),
        Err(e) => failed(target, format!("connection lost during rehearsal: {e}")),
    }
}

#[allow(clippy::too_many_arguments)]
async fn rehearse_on_shadow(
    migration: &Migration,
    job: &RehearsalJob,
    server: &ShadowServer,
    limits: RehearsalLimits,
    named: &std::collections::BTreeSet<String>,
    dump_cache: Option<&crate::DumpCache>,
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
        let schemas = rehearsal::schemas_to_clone(&mut src, &schema, named).await;
        let schemas = match schemas {
            Ok(s) => s,
            Err(e) => {
                let _ = src.close().await;
                return Err(format!("read source catalog: {e}"));
            }
        };
        let c0 = Instant::now();
        let clone = rehearsal::clone_schemas(
            &server.bin_dir,
            &job.spec,
            &src_db,
            &mut src,
            &schemas,
            &db.spec(),
            &db.name,
            dump_cache,
        )
        .await;
        let _ = src.close().await;
        let clone_errors = clone.map_err(|e| format!("clone failed: {e}"))?;
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
        let mut conn = rehearsal::shadow_connection(&db.spec(), &db.name, &schema, limits)
            .await
            .map_err(|e| e.to_string())?;
        let pid = backend_pid(&mut conn).await.map_err(|e| e.to_string())?;
        let sopts = crate::conn::shadow_connect_options(&server.spec, &db.name)
            .map_err(|e| e.to_string())?;
        let local = CancelToken::new();
        let (r, _) = guarded(
            rehearsal::run_on_shadow(
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
        let statements = r.map_err(|e| format!("shadow connection lost: {e}"))?;
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

impl Simulator {
    /// A simulator with these options.
    pub fn new(options: SimOptions) -> Self {
        Simulator { options }
    }

    /// Probe every shard of `fleet`, rehearse once per schema shape, estimate lock time.
    ///
    /// `catalogs` (by shard id) gives each shard's fingerprint and catalog summary; when `None`
    /// the simulator introspects the fleet itself ([`topology::introspect_fleet`]). Shards whose
    /// catalog could not be read are reported unreachable. Returns `Err` only for
    /// [`SimError::Cancelled`] and invalid options; everything else is an outcome in the result.
    pub async fn run(
        &self,
        migration: &Migration,
        fleet: &Fleet,
        catalogs: Option<&BTreeMap<String, Catalog>>,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<SimulationResult, SimError> {
        let o = &self.options;
        if o.concurrency == 0 {
            return Err(SimError::InvalidOptions {
                reason: "concurrency must be at least 1".into(),
            });
        }
        let mut names = std::collections::HashSet::new();
        for p in &o.custom_probes {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(SimError::InvalidOptions {
                    reason: format!(
                        "custom probe names must be unique and non-empty (found `{}` twice or empty)",
                        p.name
                    ),
                });
            }
            if let Some(refusal) = crate::custom::static_refusal(p) {
                return Err(refusal);
            }
        }
        let started = Instant::now();
        let steps = StepLog::default();

        // 1. plan
        let t0 = Instant::now();
        let plan = Arc::new(probe::plan(migration));
        let mut planned = format!(
            "{} data probe(s), {} existence check(s), {} table(s) sized",
            plan.data_probe_count(),
            plan.reference_count(),
            plan.tables.len()
        );
        if !o.custom_probes.is_empty() {
            planned.push_str(&format!(", {} custom probe(s)", o.custom_probes.len()));
        }
        steps.push("plan probes", planned, t0.elapsed());

        // 2. reachability: one connection attempt per (instance, database), concurrently, so an
        // unreachable instance costs one connect timeout, not one per shard.
        let mut unreachable: HashMap<String, String> = HashMap::new();
        {
            let t0 = Instant::now();
            let mut groups: BTreeMap<(String, String), ()> = BTreeMap::new();
            for s in &fleet.shards {
                groups.insert((s.instance.clone(), s.location.database().to_string()), ());
            }
            let checks = groups.into_keys().map(|(inst, db)| async move {
                let r = match instance(fleet, &inst) {
                    None => Err(format!("instance `{inst}` is not in the fleet")),
                    Some(i) => match connect_options(&i.connection, &db) {
                        Err(e) => Err(e.to_string()),
                        Ok(opts) => match tokio::time::timeout(
                            o.connect_timeout,
                            PgConnection::connect_with(&opts),
                        )
                        .await
                        {
                            Ok(Ok(c)) => {
                                let _ = c.close().await;
                                Ok(())
                            }
                            Ok(Err(e)) => Err(format!(
                                "cannot connect to {}: {e}",
                                redacted(&i.connection, &db)
                            )),
                            Err(_) => Err(format!(
                                "cannot connect to {}: no answer within {} s",
                                redacted(&i.connection, &db),
                                o.connect_timeout.as_secs()
                            )),
                        },
                    },
                };
                (inst, db, r)
            });
            let results = futures::future::join_all(checks).await;
            let mut bad = 0;
            for (inst, db, r) in results {
                if let Err(e) = r {
                    bad += 1;
                    for s in fleet
                        .shards
                        .iter()
                        .filter(|s| s.instance == inst && s.location.database() == db)
                    {
                        unreachable.insert(s.id.clone(), e.clone());
                    }
                }
            }
            steps.push(
                "connect",
                format!(
                    "{bad} unreachable (instance, database) group(s), {} shard(s) affected",
                    unreachable.len()
                ),
                t0.elapsed(),
            );
        }
        if cancel.is_cancelled() {
            return Err(SimError::Cancelled);
        }

        // 3. catalogs
        let mut introspect_failed: Vec<(String, String)> = Vec::new();
        let owned;
        let catalogs: &BTreeMap<String, Catalog> = match catalogs {
            Some(c) => c,
            None => {
                let t0 = Instant::now();
                let reachable = Fleet {
                    instances: fleet.instances.clone(),
                    shards: fleet
                        .shards
                        .iter()
                        .filter(|s| !unreachable.contains_key(&s.id))
                        .cloned()
                        .collect(),
                };
                let fc = topology::introspect_fleet(
                    &reachable,
                    &topology::ScanOptions {
                        concurrency: o.concurrency as usize,
                        ..Default::default()
                    },
                )
                .await;
                for (ids, err) in &fc.errors {
                    for id in ids {
                        if matches!(err, topology::TopologyError::Connect { .. }) {
                            unreachable.insert(id.clone(), err.to_string());
                        } else {
                            introspect_failed.push((id.clone(), err.to_string()));
                        }
                    }
                }
                let failed: usize = fc.errors.iter().map(|(ids, _)| ids.len()).sum();
                steps.push(
                    "introspect",
                    format!(
                        "{} catalog(s) read, {failed} shard(s) failed",
                        fc.catalogs.len()
                    ),
                    t0.elapsed(),
                );
                owned = fc.catalogs;
                &owned
            }
        };
        if cancel.is_cancelled() {
            return Err(SimError::Cancelled);
        }

        // 2b. shards whose introspection failed for another reason than connecting: own
        // fingerprint, or unreachable if even that fails.
        let mut fallback: HashMap<String, String> = HashMap::new();
        for s in &fleet.shards {
            if !unreachable.contains_key(&s.id)
                && !catalogs.contains_key(&s.id)
                && !introspect_failed.iter().any(|(id, _)| id == &s.id)
            {
                introspect_failed.push((s.id.clone(), "no catalog given".into()));
            }
        }
        if !introspect_failed.is_empty() {
            let t0 = Instant::now();
            let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for (id, _) in &introspect_failed {
                if let Some(s) = fleet.shards.iter().find(|s| &s.id == id) {
                    groups
                        .entry((s.instance.clone(), s.location.database().to_string()))
                        .or_default()
                        .push(s.location.schema().to_string());
                }
            }
            for ((inst, db), schemas) in groups {
                let Some(i) = instance(fleet, &inst) else {
                    continue;
                };
                let res = match connect_options(&i.connection, &db) {
                    Ok(opts) => fallback_fingerprints(&opts, &schemas)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                for s in fleet
                    .shards
                    .iter()
                    .filter(|s| s.instance == inst && s.location.database() == db)
                {
                    match &res {
                        Ok(m) => match m.get(s.location.schema()) {
                            Some(fp) => {
                                fallback.insert(s.id.clone(), fp.clone());
                            }
                            None if introspect_failed.iter().any(|(id, _)| id == &s.id) => {
                                unreachable.insert(
                                    s.id.clone(),
                                    format!("schema `{}` not found", s.location.schema()),
                                );
                            }
                            None => {}
                        },
                        Err(e) => {
                            if introspect_failed.iter().any(|(id, _)| id == &s.id) {
                                unreachable.insert(s.id.clone(), e.clone());
                            }
                        }
                    }
                }
            }
            steps.push(
                "fingerprint fallback",
                format!(
                    "catalog introspection failed for {} shard(s) ({}); used the simulator's own fingerprint",
                    introspect_failed.len(),
                    introspect_failed.first().map(|x| x.1.as_str()).unwrap_or("")
                ),
                t0.elapsed(),
            );
        }

        // 3. group by fingerprint
        let mut fingerprints: HashMap<String, String> = HashMap::new();
        let mut jobs: Vec<RehearsalJob> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in &fleet.shards {
            let Some(inst) = instance(fleet, &s.instance) else {
                unreachable.insert(
                    s.id.clone(),
                    format!("instance `{}` is not in the fleet", s.instance),
                );
                continue;
            };
            if unreachable.contains_key(&s.id) {
                continue;
            }
            let fp = match (catalogs.get(&s.id), fallback.get(&s.id)) {
                (Some(c), _) => c.fingerprint().0,
                (None, Some(f)) => f.clone(),
                (None, None) => format!("unknown:{}", s.id),
            };
            fingerprints.insert(s.id.clone(), fp.clone());
            if seen.insert(fp.clone()) {
                jobs.push(RehearsalJob {
                    fingerprint: fp,
                    shard: s.clone(),
                    spec: inst.connection.clone(),
                });
            }
        }
        let rehearsal_count = if o.rehearsal == RehearsalMode::Skip {
            0
        } else {
            jobs.len()
        };

        // 4. pools: one per (instance, database), one semaphore per instance.
        let mut sems: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut pools: BTreeMap<(String, String), (PgPool, PgConnectOptions)> = BTreeMap::new();
        for s in &fleet.shards {
            if unreachable.contains_key(&s.id) {
                continue;
            }
            let Some(inst) = instance(fleet, &s.instance) else {
                continue;
            };
            sems.entry(s.instance.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(o.concurrency as usize)));
            let key = (s.instance.clone(), s.location.database().to_string());
            if pools.contains_key(&key) {
                continue;
            }
            match connect_options(&inst.connection, &key.1) {
                Ok(opts) => {
                    let pool = lazy_pool(opts.clone(), o.concurrency, o.connect_timeout);
                    pools.insert(key, (pool, opts));
                }
                Err(e) => {
                    unreachable.insert(s.id.clone(), e.to_string());
                }
            }
        }

        // 4b. custom probes: proven side-effect free on every shard before any runs anywhere.
        if !o.custom_probes.is_empty() {
            let t0 = Instant::now();
            let checked =
                preflight_custom_probes(fleet, &pools, &sems, &mut unreachable, o, cancel).await;
            if let Err(e) = checked {
                for (pool, _) in pools.values() {
                    pool.close().await;
                }
                return Err(e);
            }
            steps.push(
                "custom probe check",
                format!(
                    "{} custom probe(s): every function they call resolved on every shard's search path; none refused",
                    o.custom_probes.len()
                ),
                t0.elapsed(),
            );
        }

        // Announced once the custom probes passed: a refused run never says it is probing.
        progress.event(ProgressEvent::Started {
            shards: fleet.shards.len(),
            rehearsals: rehearsal_count,
        });

        // 5. probes (spawned) and rehearsals (this task) concurrently.
        for s in &fleet.shards {
            if !unreachable.contains_key(&s.id) {
                progress.event(ProgressEvent::ShardStarted {
                    shard: s.id.clone(),
                });
            }
        }
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in fleet.shards.iter().enumerate() {
            if unreachable.contains_key(&s.id) {
                progress.event(ProgressEvent::ShardFinished {
                    shard: s.id.clone(),
                    failing_probes: 0,
                    unreachable: true,
                });
                continue;
            }
            let key = (s.instance.clone(), s.location.database().to_string());
            let (Some((pool, opts)), Some(sem)) = (pools.get(&key), sems.get(&s.instance)) else {
                continue;
            };
            let (pool, opts, sem) = (pool.clone(), opts.clone(), sem.clone());
            let shard = s.clone();
            let plan = plan.clone();
            let options = o.clone();
            let cancel = cancel.clone();
            set.spawn(async move {
                let out = probe_shard(pool, opts, sem, shard, plan, options, cancel).await;
                (i, out)
            });
        }
        let probe_all = async {
            let probes_started = Instant::now();
            let mut outs: HashMap<usize, ShardOutcome> = HashMap::new();
            while let Some(j) = set.join_next().await {
                if let Ok((i, out)) = j {
                    if let Some(s) = fleet.shards.get(i) {
                        let failing = out
                            .probes
                            .as_ref()
                            .map(|p| p.results.iter().filter(|r| r.would_fail).count())
                            .unwrap_or(0);
                        progress.event(ProgressEvent::ShardFinished {
                            shard: s.id.clone(),
                            failing_probes: failing,
                            unreachable: out.unreachable.is_some(),
                        });
                        steps.push(
                            "probe shard",
                            format!(
                                "{}: {}",
                                s.id,
                                match (&out.unreachable, &out.probes) {
                                    (Some(u), _) => format!("unreachable: {u}"),
                                    (None, Some(p)) => format!(
                                        "{} probe result(s), {} would fail the migration",
                                        p.results.len(),
                                        failing
                                    ),
                                    (None, None) => "not probed".to_string(),
                                }
                            ),
                            out.duration,
                        );
                    }
                    outs.insert(i, out);
                }
            }
            steps.push(
                "probes",
                format!(
                    "{} shard(s) probed, at most {} connection(s) per instance",
                    outs.len(),
                    o.concurrency
                ),
                probes_started.elapsed(),
            );
            outs
        };
        let (mut outs, (rehearsals, tp)) = tokio::join!(
            probe_all,
            rehearse_all(migration, jobs, o, progress, cancel, &steps)
        );
        for (pool, _) in pools.values() {
            pool.close().await;
        }
        if cancel.is_cancelled() {
            return Err(SimError::Cancelled);
        }

        // 6. assemble + estimates
        let mut shards = Vec::new();
        for (i, s) in fleet.shards.iter().enumerate() {
            let schema = s.location.schema().to_string();
            let mut ev = ShardEvidence {
                shard: s.id.clone(),
                instance: s.instance.clone(),
                database: s.location.database().to_string(),
                schema: schema.clone(),
                fingerprint: fingerprints.get(&s.id).cloned(),
                catalog: catalogs.get(&s.id).map(catalog_summary),
                server_version: None,
                probes: Vec::new(),
                tables: Vec::new(),
                custom_probes: BTreeMap::new(),
                rehearsal: None,
                estimate: None,
                estimated_lock_ms: 0,
                unreachable: unreachable.get(&s.id).cloned(),
                incomplete: None,
                duration_ms: 0,
            };
            if let Some(out) = outs.remove(&i) {
                ev.server_version = out.version;
                ev.duration_ms = out.duration.as_millis() as u64;
                ev.incomplete = out.incomplete;
                if out.unreachable.is_some() {
                    ev.unreachable = out.unreachable;
                }
                if let Some(p) = out.probes {
                    ev.probes = p.results;
                    ev.tables = p.tables;
                    ev.custom_probes = p.custom;
                }
            }
            if ev.unreachable.is_none() {
                let reh = ev.fingerprint.as_ref().and_then(|f| rehearsals.get(f));
                ev.rehearsal = reh.map(|r| r.fingerprint.clone());
                let version = ev.server_version.unwrap_or(migration.options.pg_version.0);
                let est = estimate(migration, reh, &schema, &ev.tables, version, &tp);
                ev.estimated_lock_ms = est.total_lock_ms;
                ev.estimate = Some(est);
            } else {
                ev.fingerprint = None;
            }
            shards.push(ev);
        }
        let _ = is_connection_error;
        Ok(SimulationResult {
            shards,
            rehearsals,
            throughput: tp,
            steps: steps.take(),
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The custom-probe pre-flight ([`crate::custom::preflight`]): one connection per (instance,
/// database) (within the instance's connection bound), all its reachable shards at once. `Err`
/// with the first refusal (nothing ran), or [`SimError::Cancelled`]. A database that cannot be
/// checked makes its shards unreachable, so that no unchecked probe runs there.
async fn preflight_custom_probes(
    fleet: &Fleet,
    pools: &BTreeMap<(String, String), (PgPool, PgConnectOptions)>,
    sems: &HashMap<String, Arc<Semaphore>>,
    unreachable: &mut HashMap<String, String>,
    o: &SimOptions,
    cancel: &CancelToken,
) -> Result<(), SimError> {
    let mut groups: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    let mut per_database_keys = std::collections::HashSet::new();
    for s in fleet
        .shards
        .iter()
        .filter(|s| !unreachable.contains_key(&s.id))
    {
        let key = (s.instance.clone(), s.location.database().to_string());
        if matches!(s.location, topology::ShardLocation::Database { .. }) {
            per_database_keys.insert(key.clone());
        }
        groups
            .entry(key)
            .or_default()
            .push((s.id.clone(), s.location.schema().to_string()));
    }
    let per_database_keys = &per_database_keys;
    let checks = groups.into_iter().map(|(key, shards)| async move {
        // Not checked means not run: such shards become unreachable below.
        let unchecked = || Err(sqlx::Error::Protocol("no connection to check on".into()));
        let (Some((pool, _)), Some(sem)) = (pools.get(&key), sems.get(&key.0)) else {
            return (shards, unchecked());
        };
        let Ok(_permit) = sem.acquire().await else {
            return (shards, unchecked());
        };
        // Database-per-tenant: no idle connection kept per database (as in `probe_shard`).
        let per_database = per_database_keys.contains(&key);
        let r = async {
            let mut conn = pool.acquire().await?;
            let r = crate::custom::preflight(&mut conn, &shards, &o.custom_probes).await;
            if per_database || r.is_err() {
                conn.close_on_drop();
            }
            r
        }
        .await;
        (shards, r)
    });
    let results = tokio::select! {
        r = futures::future::join_all(checks) => r,
        _ = cancel.cancelled() => return Err(SimError::Cancelled),
    };
    for (shards, r) in results {
        match r {
            Ok(Some(refusal)) => return Err(refusal),
            Ok(None) => {}
            Err(e) => {
                for (id, _) in shards {
                    unreachable.insert(
                        id,
                        format!("cannot check the custom probes' functions on this shard: {e}"),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Structural fingerprint computed by the simulator itself, used only when topology's catalog
/// introspection failed for a reachable shard. Same idea as `Catalog::fingerprint` (the schema's
/// own name stripped from definitions) but not byte-compatible with it: prefixed `sim:`.
const FALLBACK_FP_SQL: &str = r#"
SELECT s.nspname::text, 'sim:' || md5(coalesce((
  SELECT string_agg(x, E'\n' ORDER BY x) FROM (
    SELECT format('rel %s %s', c.relname, c.relkind) AS x FROM pg_class c WHERE c.relnamespace = s.oid
    UNION ALL
    SELECT format('col %s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  replace(pg_get_expr(d.adbin, d.adrelid), quote_ident(s.nspname) || '.', ''))
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE c.relnamespace = s.oid AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('con %s %s', co.conname, replace(pg_get_constraintdef(co.oid), quote_ident(s.nspname) || '.', ''))
      FROM pg_constraint co WHERE co.connamespace = s.oid
    UNION ALL
    SELECT format('idx %s', replace(pg_get_indexdef(i.indexrelid), quote_ident(s.nspname) || '.', ''))
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = s.oid
  ) parts), ''))
FROM pg_namespace s WHERE s.nspname = ANY($1)
"#;

async fn fallback_fingerprints(
    opts: &PgConnectOptions,
    schemas: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut c = PgConnection::connect_with(opts).await?;
    // pg_get_indexdef & co. wait for a lock on a table another session holds: never hang.
    sqlx::query(
        "SELECT set_config('lock_timeout', '5s', false), set_config('statement_timeout', '60s', false)",
    )
    .execute(&mut c)
    .await?;
    let rows: Vec<(String, String)> = sqlx::query_as(FALLBACK_FP_SQL)
        .bind(schemas)
        .fetch_all(&mut c)
        .await?;
    let _ = c.close().await;
    Ok(rows.into_iter().collect())
}
