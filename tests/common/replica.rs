//! Streaming read replicas of an ephemeral fleet for the `--probe-on replica` tests: one hot
//! standby per cluster ([`EphemeralPg::start_replica`], `pg_basebackup -R`), added to the fleet
//! as `<writer>-ro` with `replica_of`; caught-up checks, an artificial apply delay, and the
//! user-table scan counters that show where the probes ran.

#![allow(dead_code)]

use std::time::Duration;

use deployclaw::topology::ephemeral::{EphemeralOptions, EphemeralPg};
use deployclaw::topology::fixture::EphemeralFleet;
use deployclaw::topology::{ConnectionSpec, Instance};
use sqlx::{Connection, PgConnection};

/// Start a replica of every cluster of `fleet` and add it to `fleet.fleet` as `<name>-ro`
/// (`replica_of = <name>`); returns the replicas (keep them alive), each caught up with its
/// writer.
pub async fn add_replicas(fleet: &mut EphemeralFleet) -> Vec<EphemeralPg> {
    let mut replicas = Vec::new();
    let writers: Vec<Instance> = fleet.fleet.instances.clone();
    for (pg, writer) in fleet.clusters.iter().zip(&writers) {
        let replica = tokio::task::block_in_place(|| pg.start_replica(EphemeralOptions::default()))
            .expect("start replica");
        wait_caught_up(&writer.connection, &replica.connection_spec()).await;
        fleet.fleet.instances.push(Instance {
            name: format!("{}-ro", writer.name),
            connection: replica.connection_spec().with_database("app"),
            labels: Default::default(),
            replica_of: Some(writer.name.clone()),
        });
        replicas.push(replica);
    }
    replicas
}

async fn connect(spec: &ConnectionSpec, db: &str) -> PgConnection {
    let opts = spec
        .with_database(db)
        .to_connect_options()
        .expect("options");
    PgConnection::connect_with(&opts).await.expect("connect")
}

/// How far a standby got in the writer's WAL.
#[derive(Clone, Copy)]
enum Wal {
    /// Streamed to it (`pg_last_wal_receive_lsn()`).
    Received,
    /// Applied (`pg_last_wal_replay_lsn()`).
    Replayed,
}

/// Whether the standby on `r` has got to `lsn` (as `how` says).
async fn reached(r: &mut PgConnection, how: Wal, lsn: &str) -> bool {
    let sql = match how {
        Wal::Received => "SELECT coalesce(pg_last_wal_receive_lsn() >= $1::pg_lsn, false)",
        Wal::Replayed => "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
    };
    sqlx::query_scalar(sql)
        .bind(lsn)
        .fetch_one(r)
        .await
        .expect("standby's WAL position")
}

/// Wait (bounded, 30 s) until the replica has replayed the writer's current WAL position.
pub async fn wait_caught_up(writer: &ConnectionSpec, replica: &ConnectionSpec) {
    let mut w = connect(writer, "postgres").await;
    let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut w)
        .await
        .expect("writer lsn");
    let mut r = connect(replica, "postgres").await;
    for _ in 0..300 {
        if reached(&mut r, Wal::Replayed, &lsn).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the replica did not replay up to {lsn}");
}

/// Delay the replica's apply by an hour (`recovery_min_apply_delay`, reloaded), then commit a
/// write on the writer outside the fixture's database: the replica now lags. Returns once the
/// replica has received that commit and not applied it: the reload reaches the standby's
/// startup process asynchronously (a session's `SHOW` sees the new value before it does), so a
/// commit arriving first is applied at once — the replica is then caught up, and a test
/// expecting a refusal failed now and then. The write is repeated until one is held back.
pub async fn make_it_lag(replica: &EphemeralPg, writer: &ConnectionSpec) {
    // The table first, replayed before the delay: only the row's commit is held back (a
    // delayed `CREATE TABLE` would leave its replayed ACCESS EXCLUSIVE lock on the standby).
    let mut w = connect(writer, "postgres").await;
    sqlx::query("CREATE TABLE IF NOT EXISTS lag_marker (x int)")
        .execute(&mut w)
        .await
        .expect("create the marker table");
    wait_caught_up(writer, &replica.connection_spec()).await;
    let conf = replica.data_dir().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
    text.push_str("\nrecovery_min_apply_delay = '1h'\n");
    std::fs::write(&conf, text).expect("write postgresql.conf");
    let mut r = connect(&replica.connection_spec(), "postgres").await;
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut r)
        .await
        .expect("reload");
    // The reload is asynchronous: wait until the standby reports the new setting.
    for _ in 0..100 {
        let v: String = sqlx::query_scalar("SHOW recovery_min_apply_delay")
            .fetch_one(&mut r)
            .await
            .expect("show");
        if v == "1h" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..50 {
        sqlx::query("INSERT INTO lag_marker VALUES (1)")
            .execute(&mut w)
            .await
            .expect("write on the writer");
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut w)
            .await
            .expect("writer lsn");
        // Received (streamed within a few ms), then given time to be applied if it is not held.
        for _ in 0..100 {
            if reached(&mut r, Wal::Received, &lsn).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !reached(&mut r, Wal::Replayed, &lsn).await {
            return;
        }
    }
    panic!("the replica applied every write at once: recovery_min_apply_delay did not take effect");
}

/// Sequential plus index scans of every tenant table in `app` on the instance behind `spec`,
/// read in a fresh session (the statistics of ended sessions are flushed when they exit).
pub async fn tenant_scans(spec: &ConnectionSpec) -> i64 {
    let mut c = connect(spec, "app").await;
    sqlx::query_scalar(
        "SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)::bigint FROM pg_stat_user_tables
          WHERE schemaname LIKE 'tenant\\_%'",
    )
    .fetch_one(&mut c)
    .await
    .expect("scan counters")
}

/// [`tenant_scans`] summed over `specs`.
pub async fn scans_of(specs: &[&ConnectionSpec]) -> i64 {
    let mut n = 0;
    for s in specs {
        n += tenant_scans(s).await;
    }
    n
}

/// Client sessions and the relation locks client sessions hold on a standby (waiting, bounded,
/// for closed sessions to leave). Unlike [`super::leftovers_on`] it ignores the locks the
/// standby's startup process holds while it replays the writer's (an autovacuum truncation
/// logs an ACCESS EXCLUSIVE lock), which are no session's leftovers.
pub async fn replica_leftovers(name: &str, spec: &ConnectionSpec) -> Vec<String> {
    let mut found = Vec::new();
    for _ in 0..20 {
        let mut c = connect(spec, "postgres").await;
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT coalesce(a.application_name, ''), a.state,
                    (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'relation')
               FROM pg_stat_activity a
              WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
        )
        .fetch_all(&mut c)
        .await
        .expect("activity");
        let _ = c.close().await;
        found = rows
            .into_iter()
            .map(|(app, state, locks)| {
                format!("{name}: session {app} ({state:?}), {locks} relation lock(s)")
            })
            .collect();
        if found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    found
}
