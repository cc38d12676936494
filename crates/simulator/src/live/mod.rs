//! Live workload reads (issue 16), read-only, beside the probes: per (instance, database) one
//! set-based read of each kind covering all its shards — [`locks`] (`pg_stat_activity` ×
//! `pg_locks`), [`traffic`] (`pg_stat_user_tables` sampled twice, or `pg_stat_statements`),
//! [`statements`] (the application's own queries in `pg_stat_statements`). Each reader returns
//! per shard a [`LiveStatus`] and its findings; [`read_all`] assembles one [`LiveEvidence`] per
//! shard.

pub(crate) mod locks;
pub(crate) mod statements;
pub(crate) mod traffic;

use std::collections::HashMap;
use std::time::Duration;

use evidence::{LiveEvidence, LiveStatus};
use migration_parser::Migration;
use sqlx::PgPool;
use topology::Shard;

use crate::control::{CancelToken, StepLog};

/// What the live reads do. Default: every read on, a traffic window of at least 1 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Read the live workload at all (`false`: [`LiveEvidence`] stays empty).
    pub enabled: bool,
    /// The traffic sampling window: two reads of `pg_stat_user_tables` at least this far
    /// apart — the second waits for the probes and rehearsals too, when they take longer;
    /// `Duration::ZERO` = no window sampling.
    pub traffic_window: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            enabled: true,
            // The counters' own granularity (a busy backend publishes them once a second);
            // 2 s cost +31 % on a warm 100-shard run, 1 s +8 % (BENCHMARKS.md).
            traffic_window: Duration::from_secs(1),
        }
    }
}

/// One database of an instance and the reachable shards in it: the unit of a set-based read.
#[allow(dead_code)] // read by the readers as they are implemented (issue 16)
pub(crate) struct LiveDatabase<'a> {
    /// Instance name.
    pub instance: &'a str,
    /// Database name.
    pub database: &'a str,
    /// The run's pool for this (instance, database).
    pub pool: &'a PgPool,
    /// The reachable shards located in it.
    pub shards: Vec<&'a Shard>,
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
    rest_done: &CancelToken,
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
        format!("{} database(s)", databases.len()),
        t0.elapsed(),
    );
    out
}
