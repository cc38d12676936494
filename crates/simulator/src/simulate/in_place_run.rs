//! In-place rehearsal: per shape, classify the statements on the representative shard
//! ([`crate::in_place::classify`]) and run them on the target inside one transaction that is
//! always rolled back — or, when any is refused, rehearse that shape on the shadow instead.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use migration_parser::Migration;
use sqlx::{Connection, PgConnection};

use super::job::{RehearsalJob, rehearsal_line, setup_failed};
use super::session::{backend_pid, guarded};
use super::shadow::{rehearse_on_shadow, start_shadow};
use crate::conn::{connect_options, is_connection_error, redacted};
use crate::control::{CancelToken, Progress, ProgressEvent, StepLog};
use crate::dump::schemas_to_clone_on;
use crate::in_place::{self, InPlaceRefusal};
use crate::rehearsal::execute::run_in_place;
use crate::rehearsal::server::{ShadowServer, server_version};
use crate::rehearsal::{RehearsalLimits, RehearsalMode, RehearsalResult};
use crate::run::{IDLE_MARGIN, SimOptions};

/// The in-place rehearsals of a run: per shape, classify the statements on the representative
/// shard ([`crate::in_place::classify`]); run them in place only when none is refused, else
/// rehearse that shape on the shadow (started on first need) and record the refusals.
pub(super) struct InPlaceRun<'a> {
    pub migration: &'a Migration,
    pub options: &'a SimOptions,
    pub named: &'a BTreeSet<String>,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancelToken,
    pub steps: &'a StepLog,
}

impl InPlaceRun<'_> {
    /// Rehearse every job, in place where allowed; results by fingerprint.
    pub(super) async fn all(
        &self,
        jobs: Vec<RehearsalJob>,
        results: &mut BTreeMap<String, RehearsalResult>,
    ) {
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
                (self.cancel, self.steps),
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
                                None,
                                server,
                                shadow_limits,
                                self.named,
                                o,
                                self.cancel,
                                self.steps,
                            )
                            .await
                            .0
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

/// What [`rehearse_in_place`] did.
enum InPlaceOutcome {
    /// Ran in place (or could not be set up).
    Done(RehearsalResult),
    /// Nothing ran: these statements may not run on the target.
    Refused(Vec<InPlaceRefusal>),
}

/// Classify the statements on the job's shard, and run them in place when none is refused.
async fn rehearse_in_place(
    migration: &Migration,
    job: &RehearsalJob,
    limits: RehearsalLimits,
    named: &BTreeSet<String>,
    (cancel, steps): (&CancelToken, &StepLog),
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
        let v = server_version(&mut conn).await?;
        let schemas = schemas_to_clone_on(&mut conn, &schema, named).await?;
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
    // The deploy client's TimeZone (see `dump::client_timezone`); unknown (no libpq tools,
    // psql failed): a stand-in under which a timestamp <-> timestamptz change rewrites.
    let read = match topology::ephemeral::find_bin_dir() {
        Ok(bin) => crate::dump::client_timezone(&bin, &job.spec, &db).await,
        Err(_) => None,
    };
    let (timezone, unknown_tz) = crate::dump::rehearsal_timezone(read, &job.shard.id);
    if let Some(line) = unknown_tz {
        steps.push("timezone", line, std::time::Duration::ZERO);
    }
    let timezone = Some(timezone);
    let local = CancelToken::new();
    let (r, _) = guarded(
        run_in_place(
            &mut conn,
            migration,
            schemas,
            &schema,
            version,
            limits,
            timezone.as_deref(),
            &local,
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
