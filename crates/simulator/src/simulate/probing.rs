//! Probe execution: one pool per (instance, database) and one connection bound per instance,
//! the custom-probe pre-flight, and the probes of every reachable shard, spawned concurrently.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Semaphore;
use topology::{Fleet, Shard, ShardLocation};

use super::session::{guarded, instance};
use crate::SimError;
use crate::conn::{connect_options, lazy_pool};
use crate::control::{CancelToken, Progress, ProgressEvent, StepLog};
use crate::probe::{self, ProbeLimits, ProbePlan};
use crate::run::SimOptions;

/// Where one shard's probes run: a pool, its connect options (to cancel a query) and the
/// instance's connection bound.
type Target = (PgPool, PgConnectOptions, Arc<Semaphore>);

/// The connections of a run: a lazy pool per (instance, database), a semaphore per instance;
/// with `--probe-on replica`, a pool per (replica instance, database) its shards' data probes
/// use.
pub(super) struct Pools {
    pools: BTreeMap<(String, String), (PgPool, PgConnectOptions)>,
    sems: HashMap<String, Arc<Semaphore>>,
    replicas: BTreeMap<(String, String), (PgPool, PgConnectOptions)>,
    /// Shard id → the replica its probes run on.
    assigned: HashMap<String, String>,
}

impl Pools {
    /// Pools for the reachable shards; a shard whose connect options are invalid becomes
    /// unreachable.
    pub(super) fn open(
        fleet: &Fleet,
        unreachable: &mut HashMap<String, String>,
        o: &SimOptions,
    ) -> Pools {
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
        Pools {
            pools,
            sems,
            replicas: BTreeMap::new(),
            assigned: HashMap::new(),
        }
    }

    /// Pools on the replicas `plan` assigned shards to (a shard whose replica pool cannot be
    /// made keeps its writer, and its `reads` entry says so).
    pub(super) fn use_replicas(
        &mut self,
        fleet: &Fleet,
        plan: &mut super::replica::ReplicaPlan,
        o: &SimOptions,
    ) {
        for s in &fleet.shards {
            let Some(replica) = plan.assigned.get(&s.id).cloned() else {
                continue;
            };
            let key = (replica.clone(), s.location.database().to_string());
            if !self.replicas.contains_key(&key) {
                let made = instance(fleet, &replica)
                    .ok_or_else(|| format!("instance `{replica}` is not in the fleet"))
                    .and_then(|i| {
                        connect_options(&i.connection, &key.1).map_err(|e| e.to_string())
                    });
                match made {
                    Ok(opts) => {
                        let pool = lazy_pool(opts.clone(), o.concurrency, o.connect_timeout);
                        self.replicas.insert(key.clone(), (pool, opts));
                    }
                    Err(e) => {
                        plan.assigned.remove(&s.id);
                        if let Some(r) = plan.reads.get_mut(&s.id) {
                            r.refused = Some(format!("cannot connect to it: {e}"));
                        }
                        continue;
                    }
                }
            }
            self.sems
                .entry(replica.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(o.concurrency as usize)));
            self.assigned.insert(s.id.clone(), replica);
        }
    }

    /// The pool, connect options and connection bound of a shard's own instance.
    fn writer_target(&self, s: &Shard) -> Option<Target> {
        let key = (s.instance.clone(), s.location.database().to_string());
        let (pool, opts) = self.pools.get(&key)?;
        Some((
            pool.clone(),
            opts.clone(),
            self.sems.get(&s.instance)?.clone(),
        ))
    }

    /// The same of the replica assigned to the shard, if any.
    fn replica_target(&self, s: &Shard) -> Option<Target> {
        let replica = self.assigned.get(&s.id)?;
        let key = (replica.clone(), s.location.database().to_string());
        let (pool, opts) = self.replicas.get(&key)?;
        Some((pool.clone(), opts.clone(), self.sems.get(replica)?.clone()))
    }

    /// One [`LiveDatabase`] per pool, with the reachable shards located in it.
    pub(super) fn live_databases<'a>(
        &'a self,
        fleet: &'a Fleet,
        unreachable: &HashMap<String, String>,
    ) -> Vec<crate::live::LiveDatabase<'a>> {
        let mut per_instance: HashMap<&str, usize> = HashMap::new();
        for (inst, _) in self.pools.keys() {
            *per_instance.entry(inst.as_str()).or_default() += 1;
        }
        self.pools
            .iter()
            .filter_map(|((inst, db), (pool, _))| {
                Some((inst, db, pool, self.sems.get(inst)?.clone()))
            })
            .map(|(inst, db, pool, sem)| crate::live::LiveDatabase {
                instance: inst,
                database: db,
                pool,
                sem,
                close_after: per_instance.get(inst.as_str()).copied().unwrap_or(0) > 1,
                shards: fleet
                    .shards
                    .iter()
                    .filter(|s| {
                        &s.instance == inst
                            && s.location.database() == db
                            && !unreachable.contains_key(&s.id)
                    })
                    .collect(),
            })
            .collect()
    }

    /// Close every pool.
    pub(super) async fn close(&self) {
        for (pool, _) in self.pools.values().chain(self.replicas.values()) {
            pool.close().await;
        }
    }

    /// The custom probes, proven side-effect free on every shard before any runs anywhere
    /// ([`preflight_custom_probes`]); logged. On `Err` the pools are closed.
    pub(super) async fn check_custom_probes(
        &self,
        fleet: &Fleet,
        unreachable: &mut HashMap<String, String>,
        o: &SimOptions,
        cancel: &CancelToken,
        steps: &StepLog,
    ) -> Result<(), SimError> {
        if o.custom_probes.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let checked =
            preflight_custom_probes(fleet, &self.pools, &self.sems, unreachable, o, cancel).await;
        if let Err(e) = checked {
            self.close().await;
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
        Ok(())
    }

    /// Probe every reachable shard (spawned, at most [`SimOptions::concurrency`] at once per
    /// instance), reporting progress and logging each shard. Outcomes by fleet index.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn probe_all(
        &self,
        fleet: &Fleet,
        unreachable: &HashMap<String, String>,
        plan: &Arc<ProbePlan>,
        o: &SimOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
        steps: &StepLog,
    ) -> HashMap<usize, ShardOutcome> {
        let mut set = tokio::task::JoinSet::new();
        // A task that panics returns no index: which shard it probed, by task id.
        let mut task_shard: HashMap<tokio::task::Id, usize> = HashMap::new();
        let batches = self.batches(fleet, unreachable);
        for (i, s) in fleet.shards.iter().enumerate() {
            if unreachable.contains_key(&s.id) {
                progress.event(ProgressEvent::ShardFinished {
                    shard: s.id.clone(),
                    failing_probes: 0,
                    unreachable: true,
                });
                continue;
            }
            let Some(writer) = self.writer_target(s) else {
                continue;
            };
            let replica = self.replica_target(s);
            let batch = batches.get(&s.id).cloned();
            let shard = s.clone();
            let plan = plan.clone();
            let options = o.clone();
            let cancel = cancel.clone();
            let task = set.spawn(async move {
                let out = probe_on_replica_or_writer(
                    replica,
                    (writer, batch),
                    shard,
                    plan,
                    options,
                    cancel,
                );
                (i, out.await)
            });
            task_shard.insert(task.id(), i);
        }
        let probes_started = Instant::now();
        let mut outs: HashMap<usize, ShardOutcome> = HashMap::new();
        while let Some(j) = set.join_next().await {
            // A probe task that failed (a bug of ours: it panicked) left its shard unchecked,
            // which is never a clean shard: its evidence is incomplete.
            let (i, out) = match j {
                Ok(done) => done,
                Err(e) => match task_shard.get(&e.id()) {
                    Some(&i) => (i, ShardOutcome::failed_task(&e)),
                    None => continue,
                },
            };
            if let Some(s) = fleet.shards.get(i) {
                shard_finished(s, &out, progress, steps);
            }
            outs.insert(i, out);
        }
        let mut distinct: Vec<&Arc<DatabaseBatch>> = batches.values().collect();
        distinct.sort_by_key(|b| Arc::as_ptr(b));
        distinct.dedup_by_key(|b| Arc::as_ptr(b));
        let read = distinct.iter().filter(|b| b.succeeded()).count();
        let batched = match distinct.len() {
            0 => String::new(),
            n => format!(
                "; the catalogs read in {n} batch(es) of up to {BATCH_SHARDS} shards of a database ({} failed: their shards read their own)",
                n - read
            ),
        };
        steps.push(
            "probes",
            format!(
                "{} shard(s) probed, at most {} connection(s) per instance{batched}",
                outs.len(),
                o.concurrency
            ),
            probes_started.elapsed(),
        );
        outs
    }

    /// The catalog batches, by shard id: one per [`BATCH_SHARDS`] reachable shards of a
    /// schema-per-tenant database (a database with one such shard has none), for the shards
    /// probed on their own instance (a shard probed on a replica reads its catalog there).
    /// Chunks keep one batch's query small and let a large database's batches run on several
    /// connections at once.
    fn batches(
        &self,
        fleet: &Fleet,
        unreachable: &HashMap<String, String>,
    ) -> HashMap<String, Arc<DatabaseBatch>> {
        let mut groups: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for s in &fleet.shards {
            if unreachable.contains_key(&s.id)
                || self.assigned.contains_key(&s.id)
                || !matches!(s.location, ShardLocation::Schema { .. })
            {
                continue;
            }
            groups
                .entry((s.instance.clone(), s.location.database().to_string()))
                .or_default()
                .push((s.id.clone(), s.location.schema().to_string()));
        }
        let mut out = HashMap::new();
        for shards in groups.into_values().filter(|v| v.len() > 1) {
            for chunk in shards.chunks(BATCH_SHARDS) {
                let batch = Arc::new(DatabaseBatch {
                    schemas: chunk.iter().map(|(_, s)| s.clone()).collect(),
                    read: tokio::sync::OnceCell::new(),
                });
                for (id, _) in chunk {
                    out.insert(id.clone(), batch.clone());
                }
            }
        }
        out
    }
}

/// At most this many shards share one catalog batch (some 500 tables for a migration that
/// touches five: a few milliseconds of catalog reads).
const BATCH_SHARDS: usize = 100;

/// The catalog batch of one schema-per-tenant database ([`probe::read_catalog`]): its shards'
/// schemas, and what the first of its shard tasks to hold a connection read for all of them
/// (`None`: the batch failed, and every shard reads its own catalog).
struct DatabaseBatch {
    schemas: Vec<String>,
    read: tokio::sync::OnceCell<Option<HashMap<String, probe::ShardCatalog>>>,
}

impl DatabaseBatch {
    /// The answers for the shard of `schema`: read now on `conn` when no task has yet.
    async fn for_shard(
        &self,
        conn: &mut sqlx::PgConnection,
        plan: &ProbePlan,
        schema: &str,
        limits: ProbeLimits,
    ) -> Option<probe::ShardCatalog> {
        let read = self
            .read
            .get_or_init(|| async {
                probe::read_catalog(conn, plan, &self.schemas, limits)
                    .await
                    .ok()
            })
            .await;
        read.as_ref()?.get(schema).cloned()
    }

    /// Whether the batch was read.
    fn succeeded(&self) -> bool {
        matches!(self.read.get(), Some(Some(_)))
    }
}

/// Report and log one probed shard.
fn shard_finished(s: &Shard, out: &ShardOutcome, progress: &dyn Progress, steps: &StepLog) {
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

impl ShardOutcome {
    /// The outcome of a probe task that did not finish (`e`: it panicked, or was cancelled):
    /// nothing was read, and the evidence says so.
    fn failed_task(e: &tokio::task::JoinError) -> ShardOutcome {
        let why = if e.is_panic() {
            "the probe task panicked (a deployclaw bug; please report it)"
        } else {
            "the probe task was cancelled"
        };
        ShardOutcome {
            probes: None,
            version: None,
            unreachable: None,
            incomplete: Some(format!(
                "{why}: no probe result was recorded for this shard"
            )),
            duration: Duration::ZERO,
            replica_failed: None,
        }
    }
}

/// What probing one shard gave.
pub(super) struct ShardOutcome {
    /// The probe results (none when the shard could not be probed).
    pub probes: Option<probe::ShardProbes>,
    /// Server major version.
    pub version: Option<u32>,
    /// Why the shard could not be reached or read.
    pub unreachable: Option<String>,
    /// Why the probes did not all finish.
    pub incomplete: Option<String>,
    /// Wall time spent probing (not waiting for a connection slot).
    pub duration: Duration,
    /// The shard's replica could not be reached or read during probing (why); the probes then
    /// ran on its writer.
    pub replica_failed: Option<String>,
}

/// Probe one shard on its replica when it has one, else (or when the replica cannot be
/// reached or read, or cancels a probe for a conflict with recovery) on its writer; [`ShardOutcome::replica_failed`] says why the replica's
/// probes did not count.
async fn probe_on_replica_or_writer(
    replica: Option<Target>,
    (writer, batch): (Target, Option<Arc<DatabaseBatch>>),
    shard: Shard,
    plan: Arc<ProbePlan>,
    options: SimOptions,
    cancel: CancelToken,
) -> ShardOutcome {
    if let Some((pool, opts, sem)) = replica {
        let (s, p, o, c) = (shard.clone(), plan.clone(), options.clone(), cancel.clone());
        let out = probe_shard((pool, opts, sem), None, s, p, o, c).await;
        match out.unreachable.clone().or_else(|| recovery_conflict(&out)) {
            Some(reason) if !cancel.is_cancelled() => {
                let mut out = probe_shard(writer, batch, shard, plan, options, cancel).await;
                out.replica_failed = Some(reason);
                return out;
            }
            _ => return out,
        }
    }
    probe_shard(writer, batch, shard, plan, options, cancel).await
}

/// A probe a hot standby cancelled because replay needed what it read (SQLSTATE `40001`,
/// "conflict with recovery"): its answer is missing, so the replica's probes do not count.
fn recovery_conflict(out: &ShardOutcome) -> Option<String> {
    let probes = out.probes.as_ref()?;
    let conflict = |r: &&evidence::ProbeResult| {
        r.error
            .as_ref()
            .is_some_and(|e| e.sqlstate.as_deref() == Some("40001"))
    };
    let n = probes.results.iter().filter(conflict).count();
    (n > 0).then(|| format!("{n} probe(s) cancelled by a conflict with recovery (SQLSTATE 40001)"))
}

/// Probe one shard within its instance's connection bound, its shard timeout and the run's
/// cancellation; its catalog from its database's `batch` when there is one.
async fn probe_shard(
    (pool, opts, sem): Target,
    batch: Option<Arc<DatabaseBatch>>,
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
        replica_failed: None,
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
    let probes = async {
        let read = match &batch {
            Some(b) => b.for_shard(&mut conn, &plan, &schema, limits).await,
            None => None,
        };
        probe::run_probes(
            &mut conn,
            &shard.id,
            &schema,
            &plan,
            &options.custom_probes,
            limits,
            &local,
            read,
        )
        .await
    };
    let (res, timed_out) = guarded(
        probes,
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
    if matches!(shard.location, ShardLocation::Database { .. }) || timed_out {
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
    let mut per_database_keys = HashSet::new();
    for s in fleet
        .shards
        .iter()
        .filter(|s| !unreachable.contains_key(&s.id))
    {
        let key = (s.instance.clone(), s.location.database().to_string());
        if matches!(s.location, ShardLocation::Database { .. }) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe_tx;

    /// A probe task that panicked leaves an incomplete shard (a yellow finding of
    /// shard-unreachable), never a shard without evidence and without a reason.
    #[tokio::test]
    async fn a_panicked_probe_task_is_an_incomplete_shard() {
        let mut set = tokio::task::JoinSet::new();
        let task = set.spawn(async { panic!("boom") });
        let e = set.join_next().await.unwrap().unwrap_err();
        assert_eq!(e.id(), task.id());
        let out = ShardOutcome::failed_task(&e);
        assert!(out.probes.is_none() && out.unreachable.is_none());
        let why = out.incomplete.unwrap();
        assert!(why.contains("panicked"), "{why}");
    }

    /// The catalog read once for a database gives every shard the answers it reads alone, and
    /// a batch that fails answers nothing: the shard then reads its own catalog (its missing
    /// table is still found), never an empty catalog.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_batch_answers_as_each_shard_alone_and_a_failed_one_answers_nothing() {
        use sqlx::Connection;
        let pg = topology::ephemeral::EphemeralPg::start_async(Default::default())
            .await
            .expect("start");
        let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
            .await
            .expect("connect");
        probe_tx::exec(
            &mut conn,
            r#"CREATE SCHEMA a; CREATE TABLE a.t (id int PRIMARY KEY, v text);
               INSERT INTO a.t SELECT g, repeat('x', 500) FROM generate_series(1, 2000) g;
               CREATE TABLE a.u (id int PRIMARY KEY); ANALYZE a.t;
               CREATE SCHEMA "b ""x"""; CREATE TABLE "b ""x""".t (id int, v text);
               CREATE SCHEMA c; CREATE TABLE c.u (id int PRIMARY KEY);
               CREATE TABLE public.p (id int PRIMARY KEY); INSERT INTO public.p VALUES (1);
               CREATE TABLE a.f (id int PRIMARY KEY, pid int); INSERT INTO a.f VALUES (1, 1), (2, 9);
               CREATE TABLE "b ""x""".f (id int, pid bigint); INSERT INTO "b ""x""".f VALUES (1, 1);
               CREATE TABLE c.f (id int, pid int); CREATE TABLE c.p (id int PRIMARY KEY);
               INSERT INTO c.p VALUES (1);
               INSERT INTO c.f VALUES (1, 1);"#,
        )
        .await
        .expect("setup");
        let m = migration_parser::parse(
            "m.sql",
            "ALTER TABLE t ALTER COLUMN v SET NOT NULL; ALTER TABLE u ADD COLUMN w int;
             ALTER TABLE f ADD CONSTRAINT f_p FOREIGN KEY (pid) REFERENCES p;
             ALTER TABLE f ADD CONSTRAINT f_u FOREIGN KEY (pid) REFERENCES u (id);",
            &Default::default(),
        )
        .expect("parse");
        let plan = probe::plan(&m);
        let limits = ProbeLimits {
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(2),
            server_version: pg.version(),
        };
        let schemas: Vec<String> = ["a", "b \"x\"", "c"].map(String::from).into();
        let cancel = CancelToken::new();
        let batch = DatabaseBatch {
            schemas: schemas.clone(),
            read: tokio::sync::OnceCell::new(),
        };
        // Comparable evidence: everything but the timing.
        let strip = |mut p: probe::ShardProbes| {
            for r in &mut p.results {
                r.duration_ms = 0;
            }
            p
        };
        for s in &schemas {
            let read = batch.for_shard(&mut conn, &plan, s, limits).await;
            assert!(read.is_some(), "{s}");
            // The orphan probes' operators came with the batch: both of `c`'s, and `REFERENCES u
            // (id)` of `a` and `b "x"` (an error for `b "x"`, which has no `u`, nor `public`); a
            // primary key the batch did not read (`public.p`'s) leaves the lookup to the shard.
            let prepared = read.as_ref().map(|r| r.fk_joins.len()).unwrap_or_default();
            assert_eq!(prepared, if s == "c" { 2 } else { 1 }, "{s}");
            let batched = probe::run_probes(&mut conn, s, s, &plan, &[], limits, &cancel, read)
                .await
                .expect("probes");
            let alone = probe::run_probes(&mut conn, s, s, &plan, &[], limits, &cancel, None)
                .await
                .expect("probes");
            assert_eq!(
                format!("{:?}", strip(batched)),
                format!("{:?}", strip(alone)),
                "{s}"
            );
        }
        assert!(batch.succeeded());
        // What the comparison covered: a missing table, a table that exists, real sizes, orphans
        // (`a.f` against `public.p` and the empty `a.u`, `c.f` against `c.p` and `c.u`).
        let orphans = |p: &probe::ShardProbes| -> Vec<u64> {
            p.results
                .iter()
                .filter(|r| r.kind == probe::ProbeKind::FkOrphans && r.error.is_none())
                .map(|r| r.count)
                .collect()
        };
        let c = probe::run_probes(&mut conn, "c", "c", &plan, &[], limits, &cancel, None)
            .await
            .expect("probes");
        assert_eq!(orphans(&c), [0, 1], "{c:#?}");
        assert!(
            c.results
                .iter()
                .any(|r| r.kind == probe::ProbeKind::MissingObject && r.table == "t"),
            "{c:#?}"
        );
        let a = probe::run_probes(&mut conn, "a", "a", &plan, &[], limits, &cancel, None)
            .await
            .expect("probes");
        assert!(
            a.tables
                .iter()
                .any(|t| t.table == "t" && t.exists && t.heap_bytes > 8192),
            "{a:#?}"
        );
        assert_eq!(orphans(&a), [1, 2], "{a:#?}");

        // A batch whose transaction cannot start (this session's transaction is aborted).
        probe_tx::exec(&mut conn, "BEGIN").await.expect("begin");
        assert!(probe_tx::exec(&mut conn, "SELECT 1/0").await.is_err());
        let failed = DatabaseBatch {
            schemas,
            read: tokio::sync::OnceCell::new(),
        };
        assert!(
            failed
                .for_shard(&mut conn, &plan, "c", limits)
                .await
                .is_none()
        );
        assert!(!failed.succeeded());
        probe_tx::exec(&mut conn, "ROLLBACK")
            .await
            .expect("rollback");
        let c = probe::run_probes(&mut conn, "c", "c", &plan, &[], limits, &cancel, None)
            .await
            .expect("probes");
        assert!(
            c.results
                .iter()
                .any(|r| r.kind == probe::ProbeKind::MissingObject && r.table == "t"),
            "{c:#?}"
        );
    }
}
