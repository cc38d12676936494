//! Scratch-database leases and the reaper on a real server.

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::scratch::{Lease, new_scratch_name, reap_leftovers};

async fn exec(pg: &EphemeralPg, db: &str, sql: &str) {
    let mut c = PgConnection::connect_with(&pg.connect_options(db))
        .await
        .unwrap();
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .unwrap();
    let _ = c.close().await;
}

async fn databases(pg: &EphemeralPg) -> Vec<String> {
    let mut c = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .unwrap();
    let v = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'deployclaw%' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let _ = c.close().await;
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_drops_only_unleased_databases_whatever_database_it_runs_in() {
    let pg = EphemeralPg::start_async(EphemeralOptions::shadow())
        .await
        .unwrap();
    exec(&pg, "postgres", "CREATE DATABASE admin_b").await;
    // A live run: lease (in database `postgres`) first, then its database.
    let live = new_scratch_name();
    let lease = Lease::open(&pg.connect_options("postgres")).await.unwrap();
    lease.take(&live).await.unwrap();
    exec(&pg, "postgres", &format!("CREATE DATABASE {live}")).await;
    // A dead run's database, with a session still connected to it (a statement the killed
    // client left running), and a database that only looks like ours.
    let dead = new_scratch_name();
    exec(&pg, "postgres", &format!("CREATE DATABASE {dead}")).await;
    let mut orphan = PgConnection::connect_with(&pg.connect_options(&dead))
        .await
        .unwrap();
    exec(&pg, "postgres", "CREATE DATABASE deployclaw_shadow_notours").await;

    // The reaper runs in another database than the lease: pg_locks still shows the lease.
    let mut c = PgConnection::connect_with(&pg.connect_options("admin_b"))
        .await
        .unwrap();
    let reaped = reap_leftovers(&mut c).await.unwrap();
    assert_eq!(reaped.dropped, vec![dead.clone()]);
    assert!(reaped.left.is_empty(), "{:?}", reaped.left);
    assert!(reaped.summary().unwrap().contains(&dead));
    let mut expected = vec!["deployclaw_shadow_notours".to_string(), live.clone()];
    expected.sort();
    let mut now = databases(&pg).await;
    now.sort();
    assert_eq!(now, expected);
    assert!(
        sqlx::query("SELECT 1").execute(&mut orphan).await.is_err(),
        "the dead run's session was ended"
    );

    // Once the live run ends (its session closes), its database is a leftover too.
    let leases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'deployclaw-shadow-lease'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(leases, 1, "the lease session is recognisable");
    lease.close().await;
    // The server ends the closed session asynchronously: wait (bounded) until it is gone.
    for _ in 0..300 {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'deployclaw-shadow-lease'",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        if n == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let reaped = reap_leftovers(&mut c).await.unwrap();
    assert_eq!(reaped.dropped, vec![live]);
    assert_eq!(reap_leftovers(&mut c).await.unwrap().summary(), None);
    let _ = c.close().await;
}
