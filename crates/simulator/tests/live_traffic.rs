//! Traffic during the lock (issue 16), on a real PostgreSQL: a paced insert workload on one
//! tenant's table while the simulator samples `pg_stat_user_tables`; the queued-writes estimate
//! is compared with what a real `ACCESS EXCLUSIVE` lock of the estimated length queues, measured
//! in the same test. The tenant without traffic gets no queue, and the gate changes nothing.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use simulator::{
    CancelToken, LiveOptions, NoProgress, RehearsalMode, SimOptions, Simulator, Throughput,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgPool};

const SCHEMA: &str = "
CREATE TABLE orders (id bigserial PRIMARY KEY, v integer NOT NULL, payload text);
INSERT INTO orders (v, payload) SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
ANALYZE orders;";

/// The paced workload: one insert every `INTERVAL` (100 per second), each in its own task on a
/// pool, so an insert blocked by a lock does not delay the schedule of the next ones.
const INTERVAL: Duration = Duration::from_millis(10);

/// One insert of the workload: when it was due and when it finished.
type Record = (Instant, Instant);

/// Start the workload on `schema.orders`; it runs until `stop` is cancelled.
fn workload(pool: PgPool, schema: &str, stop: CancelToken) -> Arc<Mutex<Vec<Record>>> {
    let records = Arc::new(Mutex::new(Vec::new()));
    let sql = format!(
        "INSERT INTO {}.orders (v, payload) VALUES (1, 'w')",
        simulator::quote_ident(schema)
    );
    let out = records.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                t = tick.tick() => {
                    let (pool, sql, out) = (pool.clone(), sql.clone(), out.clone());
                    let due = t.into_std();
                    tokio::spawn(async move {
                        // Inserts still queued when the test closes the pool are not counted.
                        if sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.is_ok() {
                            out.lock().unwrap().push((due, Instant::now()));
                        }
                    });
                }
                _ = stop.cancelled() => break,
            }
        }
    });
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_estimate_is_within_2x_of_a_real_access_exclusive_queue() {
    let pg = start().await;
    create_db(&pg, "app").await;
    for s in ["tenant_busy", "tenant_idle"] {
        exec(
            &pg,
            "app",
            &format!("CREATE SCHEMA {s}; SET search_path TO {s}; {SCHEMA}"),
        )
        .await;
    }
    let fleet = fleet(
        &[&pg],
        &[(0, "app", "tenant_busy"), (0, "app", "tenant_idle")],
    );
    let idle_before = checksum(&pg, "app", "tenant_idle").await;

    // The rewrite rate that makes the estimated lock of the busy table ~1.5 s: the assertion is
    // about the traffic model, not this machine's disk.
    let mut c = conn(&pg, "app").await;
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('tenant_busy.orders')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let throughput = Throughput {
        rewrite_mb_per_s: bytes as f64 / 1e6 / 1.5,
        calibrated: false,
        ..Throughput::default()
    };

    let stop = CancelToken::new();
    let app = PgPoolOptions::new()
        .max_connections(8)
        .connect_with(pg.connect_options("app"))
        .await
        .expect("workload pool");
    let records = workload(app.clone(), "tenant_busy", stop.clone());
    // Let the workload's statistics flow (a backend publishes them at most once a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let m = migration("ALTER TABLE orders ALTER COLUMN v TYPE bigint;");
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        calibrate: false,
        throughput: Some(throughput),
        live: LiveOptions::default(),
        ..Default::default()
    });
    let res = sim
        .run(&m, &fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    let busy = res
        .shards
        .iter()
        .find(|s| s.schema == "tenant_busy")
        .unwrap();
    let idle = res
        .shards
        .iter()
        .find(|s| s.schema == "tenant_idle")
        .unwrap();
    assert_eq!(
        busy.live.traffic,
        evidence::LiveStatus::Read,
        "{:#?}",
        busy.live
    );
    let rate = &busy.live.table_traffic[0];
    assert_eq!(rate.relation, "tenant_busy.orders");
    assert!(rate.window_ms >= 1000, "{rate:#?}");
    let q = busy
        .live
        .queued
        .iter()
        .find(|q| q.statement == 0)
        .unwrap_or_else(|| panic!("no queue estimate: {:#?}", busy.live));
    let lock_ms = q.lock_ms;
    let estimated = q.writes.expect("ACCESS EXCLUSIVE blocks writes");
    assert!(q.reads.is_some(), "ACCESS EXCLUSIVE blocks reads: {q:#?}");
    assert!(
        (1000.0..3000.0).contains(&lock_ms),
        "lock estimate {lock_ms} ms"
    );

    // The real lock, as long as the estimate, while the workload runs.
    let mut locker = conn(&pg, "app").await;
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE tenant_busy.orders IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let granted = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(lock_ms / 1000.0)).await;
    // Taken before the release is sent: the queued inserts may finish before this task hears
    // that its ROLLBACK is done.
    let released = Instant::now();
    tx.rollback().await.unwrap();
    // Let the queue drain (generously: the machine may be loaded), then stop the workload.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Inserts due while the lock was held that finished only after it was released: the writes
    // that queued behind it.
    let queued = records
        .lock()
        .unwrap()
        .iter()
        .filter(|(due, done)| *due >= granted && *due < released && *done >= released)
        .count();
    assert!(queued >= 50, "the real lock queued only {queued} inserts");
    let ratio = estimated / queued as f64;
    eprintln!(
        "rate {:.1} writes/s over {} ms; lock {lock_ms:.0} ms; estimated {estimated:.1} queued, real {queued}, ratio {ratio:.2}",
        rate.writes_per_s, rate.window_ms
    );
    assert!(
        (0.5..=2.0).contains(&ratio),
        "estimated {estimated:.1} writes queued, a real lock of {lock_ms:.0} ms queued {queued} (ratio {ratio:.2})"
    );

    // The idle tenant: read, no writes, so no queue of writes claimed.
    assert_eq!(idle.live.traffic, evidence::LiveStatus::Read);
    let iq = idle.live.queued.iter().find(|q| q.statement == 0).unwrap();
    assert_eq!(iq.writes, Some(0.0), "{:#?}", idle.live);
    assert!(iq.reads.unwrap_or(0.0) < 0.5, "{:#?}", idle.live);

    // The gate changed nothing: the idle tenant is byte-identical, the busy table's column
    // type and file are the ones it had.
    app.close().await;
    assert_eq!(checksum(&pg, "app", "tenant_idle").await, idle_before);
    let ty: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = 'tenant_busy.orders'::regclass AND attname = 'v'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(ty, "integer");
    c.close().await.ok();
}

/// One tenant (`app.tenant_a`, the orders table) on a fresh cluster, and its fleet.
async fn one_tenant() -> (topology::ephemeral::EphemeralPg, topology::Fleet) {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        &format!("CREATE SCHEMA tenant_a; SET search_path TO tenant_a; {SCHEMA}"),
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    (pg, fleet)
}

/// A run of `m` on `fleet` with the live reads of `live` (probes only, no calibration).
async fn run_live(
    m: &migration_parser::Migration,
    fleet: &topology::Fleet,
    live: LiveOptions,
) -> simulator::SimulationResult {
    Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        calibrate: false,
        live,
        ..Default::default()
    })
    .run(m, fleet, None, &NoProgress, &CancelToken::new())
    .await
    .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_window_samples_nothing_and_says_so() {
    let (_pg, fleet) = one_tenant().await;
    let m = migration("ALTER TABLE orders ALTER COLUMN v TYPE bigint;");
    let res = run_live(
        &m,
        &fleet,
        LiveOptions {
            traffic_window: Duration::ZERO,
            ..LiveOptions::default()
        },
    )
    .await;
    let live = &res.shards[0].live;
    match &live.traffic {
        evidence::LiveStatus::Unavailable { reason } => {
            assert!(reason.contains("traffic window is 0"), "{reason}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(live.table_traffic.is_empty() && live.queued.is_empty());
    // Live reads off: nothing attempted, nothing in the JSON.
    let res = run_live(
        &m,
        &fleet,
        LiveOptions {
            enabled: false,
            ..LiveOptions::default()
        },
    )
    .await;
    assert!(res.shards[0].live.is_empty(), "{:#?}", res.shards[0].live);
    let json = serde_json::to_value(&res.shards[0]).unwrap();
    assert!(json.get("live").is_none(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_lasts_in_full_only_where_a_lock_comes_near_the_budget() {
    let (_pg, fleet) = one_tenant().await;
    // A rewrite under ACCESS EXCLUSIVE: a few milliseconds on this small table.
    let m = migration("ALTER TABLE orders ALTER COLUMN v TYPE bigint;");
    let window = Duration::from_millis(2_500);
    let run = |lock_budget: Option<Duration>| {
        run_live(
            &m,
            &fleet,
            LiveOptions {
                traffic_window: window,
                lock_budget,
                ..LiveOptions::default()
            },
        )
    };
    let sampled_ms = |res: &simulator::SimulationResult| {
        let live = &res.shards[0].live;
        assert_eq!(live.traffic, evidence::LiveStatus::Read, "{live:#?}");
        live.table_traffic
            .iter()
            .find(|t| t.relation == "tenant_a.orders")
            .map(|t| t.window_ms)
            .expect("orders sampled")
    };
    // An hour's budget: nothing comes near it, the second sample is taken when the probes are
    // done — the rate says how short its window was.
    let far = run(Some(Duration::from_secs(3600))).await;
    let ms = sampled_ms(&far);
    assert!(ms < window.as_millis() as u64, "window {ms} ms");
    // A 1 ms budget: the rewrite's estimate is over it, the window lasts in full.
    let near = run(Some(Duration::from_millis(1))).await;
    let ms = sampled_ms(&near);
    assert!(ms >= window.as_millis() as u64 - 20, "window {ms} ms");
    // No budget given (the library's default): always the full window.
    let res = run(None).await;
    assert!(sampled_ms(&res) >= window.as_millis() as u64 - 20);
}
