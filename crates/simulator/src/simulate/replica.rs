//! `--probe-on replica`: which read replica the data probes of each shard run on.
//!
//! Per writer with reachable shards, each of its replicas ([`Fleet::replicas_of`]) is measured
//! once, concurrently, before any probe runs: it must be in recovery (`pg_is_in_recovery()`)
//! and its replay lag within [`SimOptions::max_replica_lag`]. The lag is 0 when the replica has
//! replayed up to the writer's `pg_current_wal_lsn()` read just before (an idle writer makes
//! `pg_last_xact_replay_timestamp()` old without any lag); otherwise it is `now() -
//! pg_last_xact_replay_timestamp()` when that is within the bound, else the time the replica
//! takes to replay up to that LSN, polled until the bound has passed (then it is refused). The
//! shards of a writer are spread round-robin over its accepted replicas; a writer without one
//! keeps its shards' probes, and each shard's [`ReplicaRead`] says why (never a silent
//! fallback). Only `SELECT`s of WAL positions and a timestamp: nothing is written anywhere.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use evidence::ReplicaRead;
use sqlx::{Connection, PgConnection};
use topology::{Fleet, Instance, Shard};

use super::session::instance;
use crate::conn::connect_options;
use crate::control::{CancelToken, StepLog};
use crate::run::{ProbeOn, SimOptions};

/// Where each shard's data probes run, decided before probing.
#[derive(Debug, Default)]
pub(super) struct ReplicaPlan {
    /// Shard id → the replica instance its data probes run on.
    pub assigned: HashMap<String, String>,
    /// Shard id → what its `live.replica` records (used, or refused and why).
    pub reads: HashMap<String, ReplicaRead>,
}

impl ReplicaPlan {
    /// Record the shards whose replica failed while they were probed (they were probed on
    /// their writer): `failed` gives each one's fleet index and why; their
    /// [`ReplicaRead::refused`] says so.
    pub(super) fn failed_during_probing<'a>(
        &mut self,
        fleet: &Fleet,
        failed: impl IntoIterator<Item = (usize, &'a str)>,
    ) {
        for (i, reason) in failed {
            let Some(s) = fleet.shards.get(i) else {
                continue;
            };
            if let Some(read) = self.reads.get_mut(&s.id) {
                read.refused = Some(format!(
                    "`{}` could not be read while probing: {reason}",
                    read.instance
                ));
            }
        }
    }
}

/// Why a replica was not used, with the lag measured where there was one.
struct Refusal {
    reason: String,
    lag_ms: Option<u64>,
}

/// How often a lagging replica's replay position is read again while it may still catch up.
const POLL: Duration = Duration::from_millis(100);

/// The replicas of the run: a step with the fleet's summary when it has replicas and, with
/// [`ProbeOn::Replica`], the replica of every reachable shard (or why it has none).
pub(super) async fn plan(
    fleet: &Fleet,
    unreachable: &HashMap<String, String>,
    o: &SimOptions,
    cancel: &CancelToken,
    steps: &StepLog,
) -> ReplicaPlan {
    let mut out = ReplicaPlan::default();
    if o.probe_on != ProbeOn::Replica {
        if fleet.replica_count() > 0 {
            let line = format!("{} (data probes on the writers)", fleet.summary_line());
            steps.push("replicas", line, Duration::ZERO);
        }
        return out;
    }
    let t0 = Instant::now();
    let mut writers: BTreeMap<&str, Vec<&Shard>> = BTreeMap::new();
    for s in fleet
        .shards
        .iter()
        .filter(|s| !unreachable.contains_key(&s.id))
    {
        writers.entry(s.instance.as_str()).or_default().push(s);
    }
    let checks = writers.iter().map(|(writer, shards)| async move {
        let db = shards[0].location.database();
        let replicas: Vec<&Instance> = fleet.replicas_of(writer).collect();
        let measured = futures::future::join_all(replicas.iter().map(|r| async move {
            let m = tokio::select! {
                m = measure(fleet, writer, r, db, o.max_replica_lag, o.connect_timeout) => m,
                _ = cancel.cancelled() => Err(Refusal { reason: "cancelled".into(), lag_ms: None }),
            };
            (r.name.as_str(), m)
        }))
        .await;
        (*writer, measured)
    });
    let mut used = 0usize;
    let mut refused: Vec<String> = Vec::new();
    for (writer, measured) in futures::future::join_all(checks).await {
        let accepted: Vec<(&str, u64)> = measured
            .iter()
            .filter_map(|(name, m)| m.as_ref().ok().map(|lag| (*name, *lag)))
            .collect();
        let shards = &writers[writer];
        if accepted.is_empty() {
            let read = refusal_read(writer, &measured);
            refused.push(read.refused.clone().unwrap_or_default());
            for s in shards {
                out.reads.insert(s.id.clone(), read.clone());
            }
            continue;
        }
        used += accepted.len();
        for (k, s) in shards.iter().enumerate() {
            let (name, lag) = accepted[k % accepted.len()];
            out.assigned.insert(s.id.clone(), name.to_string());
            out.reads.insert(
                s.id.clone(),
                ReplicaRead {
                    instance: name.to_string(),
                    lag_ms: Some(lag),
                    refused: None,
                },
            );
        }
        for (name, m) in &measured {
            if let Err(r) = m {
                refused.push(format!("`{name}` not used: {}", r.reason));
            }
        }
    }
    let mut line = format!(
        "{}: data probes of {} shard(s) on {used} replica(s), {} shard(s) on their writer",
        fleet.summary_line(),
        out.assigned.len(),
        out.reads.len() - out.assigned.len()
    );
    if !refused.is_empty() {
        line.push_str(&format!(" ({})", refused.join("; ")));
    }
    steps.push("probe on replica", line, t0.elapsed());
    out
}

/// The [`ReplicaRead`] of a writer none of whose replicas could be used (its shards' probes
/// run on it): the first replica (empty without any) and every replica's reason.
fn refusal_read(writer: &str, measured: &[(&str, Result<u64, Refusal>)]) -> ReplicaRead {
    let Some((first, first_m)) = measured.first() else {
        return ReplicaRead {
            instance: String::new(),
            lag_ms: None,
            refused: Some(format!(
                "instance `{writer}` has no read replica in the fleet (`replica_of`)"
            )),
        };
    };
    let reasons: Vec<String> = measured
        .iter()
        .filter_map(|(name, m)| m.as_ref().err().map(|r| format!("`{name}`: {}", r.reason)))
        .collect();
    ReplicaRead {
        instance: first.to_string(),
        lag_ms: first_m.as_ref().err().and_then(|r| r.lag_ms),
        refused: Some(reasons.join("; ")),
    }
}

/// A replica's lag behind `writer` in ms (see the module documentation), or why it is refused.
async fn measure(
    fleet: &Fleet,
    writer: &str,
    replica: &Instance,
    db: &str,
    bound: Duration,
    connect_timeout: Duration,
) -> Result<u64, Refusal> {
    let refuse = |reason: String| Refusal {
        reason,
        lag_ms: None,
    };
    let w = instance(fleet, writer).ok_or_else(|| refuse(format!("no writer `{writer}`")))?;
    let mut wc = connect(w, db, connect_timeout)
        .await
        .map_err(|e| refuse(format!("cannot read the writer's WAL position: {e}")))?;
    let writer_lsn: Result<String, _> = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut wc)
        .await;
    let _ = wc.close().await;
    let writer_lsn =
        writer_lsn.map_err(|e| refuse(format!("cannot read the writer's WAL position: {e}")))?;
    let mut rc = connect(replica, db, connect_timeout)
        .await
        .map_err(|e| refuse(format!("unreachable: {e}")))?;
    let r = lag_against(&mut rc, &writer_lsn, bound).await;
    let _ = rc.close().await;
    r
}

/// Poll the replica on `rc` until it has replayed up to `writer_lsn`, at most `bound`.
async fn lag_against(
    rc: &mut PgConnection,
    writer_lsn: &str,
    bound: Duration,
) -> Result<u64, Refusal> {
    let started = Instant::now();
    let mut first = true;
    loop {
        let row: (bool, bool, Option<i64>, Option<String>) = sqlx::query_as(
            "SELECT pg_is_in_recovery(), coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false), \
                    (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint, \
                    pg_last_wal_replay_lsn()::text",
        )
        .bind(writer_lsn)
        .fetch_one(&mut *rc)
        .await
        .map_err(|e| Refusal {
            reason: format!("cannot read its replay position: {e}"),
            lag_ms: None,
        })?;
        let (in_recovery, caught_up, since_last_xact, replayed) = row;
        if !in_recovery {
            return Err(Refusal {
                reason: "not in recovery (`pg_is_in_recovery()` is false): not a read replica"
                    .into(),
                lag_ms: None,
            });
        }
        let since_last_xact = since_last_xact.map(|ms| ms.max(0) as u64);
        if caught_up {
            return Ok(if first {
                0
            } else {
                started.elapsed().as_millis() as u64
            });
        }
        if first && since_last_xact.is_some_and(|ms| ms <= bound.as_millis() as u64) {
            return Ok(since_last_xact.unwrap_or(0));
        }
        first = false;
        let waited = started.elapsed();
        if waited >= bound {
            let last = since_last_xact
                .map(|ms| format!("; its last replayed transaction committed {ms} ms ago"))
                .unwrap_or_default();
            return Err(Refusal {
                reason: format!(
                    "replica lag over the bound of {} ms: after {} ms it had replayed up to {} of the writer's {writer_lsn}{last}",
                    bound.as_millis(),
                    waited.as_millis(),
                    replayed.as_deref().unwrap_or("nothing"),
                ),
                lag_ms: Some(since_last_xact.unwrap_or(0).max(waited.as_millis() as u64)),
            });
        }
        tokio::time::sleep(POLL.min(bound - waited)).await;
    }
}

/// One connection to `db` on `i`, within `timeout`.
async fn connect(i: &Instance, db: &str, timeout: Duration) -> Result<PgConnection, String> {
    let opts = connect_options(&i.connection, db).map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, PgConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}
