//! Live workload reads (issue 16), read-only, beside the probes: per (instance, database) one
//! set-based read of each kind covering all its shards — [`locks`] (`pg_stat_activity` ×
//! `pg_locks`), [`traffic`] (`pg_stat_user_tables` sampled twice, or `pg_stat_statements`),
//! [`statements`] (the application's own queries in `pg_stat_statements`). Each reader returns
//! per shard a [`LiveStatus`] and its findings; [`read_all`] assembles one [`LiveEvidence`] per
//! shard.

pub(crate) mod locks;
pub(crate) mod statements;
pub(crate) mod traffic;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use evidence::{LiveEvidence, LiveStatus};
use migration_parser::Migration;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use topology::Shard;

use crate::control::{CancelToken, StepLog};

/// What the live reads do. Default: every read on, a traffic window of at least 1 s on every
/// database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Read the live workload at all (`false`: [`LiveEvidence`] stays empty).
    pub enabled: bool,
    /// The traffic sampling window: two reads of `pg_stat_user_tables` at least this far
    /// apart — the second waits for the probes and rehearsals too, when they take longer;
    /// `Duration::ZERO` = no window sampling.
    pub traffic_window: Duration,
    /// The blocking-lock budget of the gate (`[lock_budget] max_blocking_ms`), when the rates
    /// serve only it: the window is then waited out in full only on a database where some
    /// shard's estimated blocking-lock time comes near the budget (over half of it; over a
    /// quarter while the throughput is not calibrated) — the only place a rate changes what
    /// the gate says (what would queue behind that lock). Elsewhere the second sample is taken
    /// as soon as the probes and rehearsals are done, and the rates say how short their window
    /// was. `None`: the full window on every database.
    pub lock_budget: Option<Duration>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            enabled: true,
            // The counters' own granularity (a busy backend publishes them once a second);
            // 2 s cost +31 % on a warm 100-shard run, 1 s +8 % (BENCHMARKS.md).
            traffic_window: Duration::from_secs(1),
            lock_budget: None,
        }
    }
}

/// One database of an instance and the reachable shards in it: the unit of a set-based read.
pub(crate) struct LiveDatabase<'a> {
    /// Instance name.
    pub instance: &'a str,
    /// Database name.
    pub database: &'a str,
    /// The run's pool for this (instance, database).
    pub pool: &'a PgPool,
    /// The instance's connection bound, shared with the probes (`--concurrency`).
    pub sem: Arc<Semaphore>,
    /// The instance holds several of the run's databases (database-per-tenant): a live read's
    /// connection is closed after use, so idle connections never pile up across databases.
    pub close_after: bool,
    /// The reachable shards located in it.
    pub shards: Vec<&'a Shard>,
}

/// A connection of a live read: a slot of the instance's bound held while it is in use.
pub(crate) struct LiveConnection {
    conn: PoolConnection<Postgres>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for LiveConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for LiveConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl LiveDatabase<'_> {
    /// A connection of the run's pool within the instance's connection bound (waits for a slot
    /// the probes are not using); closed after use when the instance holds several databases.
    pub(crate) async fn connection(&self) -> Result<LiveConnection, sqlx::Error> {
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let mut conn = self.pool.acquire().await?;
        if self.close_after {
            conn.close_on_drop();
        }
        Ok(LiveConnection {
            conn,
            _permit: permit,
        })
    }
}

/// Said by the run when the probes and rehearsals are done, with the databases whose traffic
/// window must last its full length ([`LiveOptions::lock_budget`]).
#[derive(Debug, Default)]
pub(crate) struct RestDone {
    token: CancelToken,
    /// (instance, database) pairs that need the full window; `None`: all of them.
    full_window: std::sync::OnceLock<Option<HashSet<(String, String)>>>,
}

impl RestDone {
    /// The probes and rehearsals are done; `full_window` as in the field.
    pub(crate) fn finish(&self, full_window: Option<HashSet<(String, String)>>) {
        let _ = self.full_window.set(full_window);
        self.token.cancel();
    }

    /// Wait until [`finish`](Self::finish) was called.
    pub(crate) async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// Whether `db`'s window must last its full length (always, before `finish`).
    pub(crate) fn needs_full_window(&self, db: &LiveDatabase<'_>) -> bool {
        match self.full_window.get() {
            Some(Some(set)) => set.contains(&(db.instance.to_string(), db.database.to_string())),
            _ => true,
        }
    }
}

/// Whether a statement's estimated blocking-lock time on shard `ev` comes near `budget`: over
/// half of it, or over a quarter while the estimate's rates are not calibrated (a calibration
/// may still raise it: the defaults are conservative, a quarter leaves room for a machine four
/// times slower than they assume). Where this is false for every shard, nothing the gate says
/// depends on how precisely the lock time or the traffic behind it is known: the traffic
/// window need not be waited out, and a first run need not calibrate.
pub fn lock_near_budget(ev: &evidence::ShardEvidence, budget: Duration, calibrated: bool) -> bool {
    let budget_ms = budget.as_secs_f64() * 1000.0;
    let near = if calibrated {
        budget_ms / 2.0
    } else {
        budget_ms / 4.0
    };
    ev.estimate
        .as_ref()
        .is_some_and(|e| e.statements.iter().any(|s| s.estimated_lock_ms > near))
}

/// The (instance, database) pairs of `shards` where a lock comes near `budget`
/// ([`lock_near_budget`]): where a traffic rate can change what the gate says.
pub(crate) fn near_budget_databases(
    shards: &[evidence::ShardEvidence],
    budget: Duration,
    tp: &crate::estimate::Throughput,
) -> HashSet<(String, String)> {
    shards
        .iter()
        .filter(|ev| lock_near_budget(ev, budget, tp.calibrated))
        .map(|ev| (ev.instance.clone(), ev.database.clone()))
        .collect()
}

/// What one reader found for one shard.
pub(crate) type PerShard<T> = HashMap<String, (LiveStatus, Vec<T>)>;

/// Run every live read on every database, concurrently; one [`LiveEvidence`] per shard id
/// (shards missing from the map were not read). `rest_done` is cancelled when the probes and
/// rehearsals are done (the traffic window lasts at least until then, at no cost).
pub(crate) async fn read_all(
    migration: &Migration,
    databases: &[LiveDatabase<'_>],
    options: &LiveOptions,
    cancel: &CancelToken,
    rest_done: &RestDone,
    steps: &StepLog,
) -> HashMap<String, LiveEvidence> {
    let mut out: HashMap<String, LiveEvidence> = HashMap::new();
    if !options.enabled {
        return out;
    }
    let reads = databases.iter().map(|db| async move {
        let (locks, traffic, statements) = tokio::join!(
            locks::read(migration, db, cancel),
            traffic::read(migration, db, options, cancel, rest_done),
            statements::read(migration, db, cancel),
        );
        (locks, traffic, statements)
    });
    let t0 = std::time::Instant::now();
    for (locks, traffic, statements) in futures::future::join_all(reads).await {
        for (shard, (status, found)) in locks {
            let e = out.entry(shard).or_default();
            e.locks = status;
            e.lock_holders = found;
        }
        for (shard, (status, found)) in traffic {
            let e = out.entry(shard).or_default();
            e.traffic = status;
            e.table_traffic = found;
        }
        let (statements, skipped) = statements;
        for (shard, (status, found)) in statements {
            let e = out.entry(shard).or_default();
            e.statements = status;
            e.query_uses = found;
            e.queries_skipped = skipped;
        }
    }
    steps.push(
        "read live workload",
        summary(databases.len(), &out),
        t0.elapsed(),
    );
    out
}

/// The execution log's line about the live reads: what each read found over the fleet, and on
/// how many shards it could not run.
fn summary(databases: usize, out: &HashMap<String, LiveEvidence>) -> String {
    let count = |f: &dyn Fn(&LiveEvidence) -> bool| out.values().filter(|e| f(e)).count();
    let unavailable = |s: &LiveStatus| matches!(s, LiveStatus::Unavailable { .. });
    let holders: usize = out.values().map(|e| e.lock_holders.len()).sum();
    let writes: f64 = out
        .values()
        .flat_map(|e| &e.table_traffic)
        .map(|t| t.writes_per_s)
        .sum();
    let uses: usize = out.values().map(|e| e.query_uses.len()).sum();
    format!(
        "{databases} database(s), {} shard(s): {holders} session(s) holding or awaiting a \
         conflicting lock on {} shard(s); traffic on the locked tables {writes:.1} writes/s \
         over {} shard(s) read; {uses} application-query use(s) of what the migration changes \
         on {} shard(s); could not run: locks on {}, traffic on {}, queries on {} shard(s)",
        out.len(),
        count(&|e| !e.lock_holders.is_empty()),
        count(&|e| e.traffic == LiveStatus::Read),
        count(&|e| !e.query_uses.is_empty()),
        count(&|e| unavailable(&e.locks)),
        count(&|e| unavailable(&e.traffic)),
        count(&|e| unavailable(&e.statements)),
    )
}
