//! `--shadow URL`: a run killed with `SIGKILL` leaves its `deployclaw_shadow_*` database on the
//! scratch server; the next run drops it and says so in `steps[]`, and never touches the
//! database of a run that is still alive. Real binary, real PostgreSQL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::fixture::{FixtureSpec, start_fleet};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    c
}

fn validate(sql: &Path, target: &str, shadow: &str, cache: &Path) -> Command {
    let mut c = bin();
    c.args(["validate-migration", "--sql-file"])
        .arg(sql)
        .args(["--target-db", target, "--tenant-schemas", "tenant_*"])
        .args(["--shadow", shadow, "--format", "json", "--cache-dir"])
        .arg(cache);
    c
}

/// Scratch databases on the scratch server, and whether a session of each is sleeping.
async fn scratch_dbs(pg: &EphemeralPg) -> Vec<(String, bool)> {
    let mut c = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect to the scratch server");
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT d.datname::text, EXISTS (SELECT 1 FROM pg_stat_activity a
                WHERE a.datname = d.datname AND a.query ILIKE '%pg_sleep%')
           FROM pg_database d WHERE d.datname LIKE 'deployclaw\\_shadow\\_%' ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .expect("list databases");
    let _ = c.close().await;
    rows
}

/// Sessions holding scratch leases on the scratch server.
async fn lease_sessions(pg: &EphemeralPg) -> i64 {
    let mut c = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect to the scratch server");
    let n = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'deployclaw-shadow-lease'",
    )
    .fetch_one(&mut c)
    .await
    .expect("count sessions");
    let _ = c.close().await;
    n
}

/// Wait (bounded, polling) until a run's shadow database exists and its rehearsal is inside
/// the sleeping statement; the database's name.
async fn wait_for_sleeping_shadow(pg: &EphemeralPg, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some((name, _)) = scratch_dbs(pg).await.into_iter().find(|(_, s)| *s) {
            return name;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the busy run ended early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the busy run never reached its rehearsal"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn reap_steps(stdout: &[u8]) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!("report JSON: {e}\n{}", String::from_utf8_lossy(stdout));
    });
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["action"] == "reap shadow leftovers")
        .map(|s| s["details"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_a_killed_run_are_reaped_and_a_live_run_is_left_alone() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 1,
            rows: 10,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let target = format!(
        "postgres://postgres@127.0.0.1:{}/app",
        fx.clusters[0].port()
    );
    let scratch = EphemeralPg::start_async(EphemeralOptions::shadow())
        .await
        .expect("scratch server");
    let shadow_url = scratch.url();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let busy = dir.path().join("busy.sql");
    std::fs::write(&busy, "SELECT pg_sleep(600);\n").unwrap();
    let quick = dir.path().join("quick.sql");
    std::fs::write(&quick, "ALTER TABLE accounts ADD COLUMN note text;\n").unwrap();

    // A run that stays busy in its rehearsal on the scratch server.
    let mut a = validate(&busy, &target, &shadow_url, &cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the busy run");
    let a_db = wait_for_sleeping_shadow(&scratch, &mut a).await;

    // A second run while the first is alive (its rehearsal and its rollback proof both on the
    // scratch server): it must not touch the live run's database.
    let b = validate(&quick, &target, &shadow_url, &cache)
        .arg("--validate-rollback")
        .output()
        .expect("second run");
    assert!(
        b.status.code().is_some_and(|c| c <= 2),
        "second run failed: {}",
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(
        reap_steps(&b.stdout).iter().all(|s| !s.contains(&a_db)),
        "the live run's database was reaped: {:?}",
        reap_steps(&b.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(
        report["rollback"]["tested"], true,
        "the rollback proof ran on the scratch server: {}",
        report["rollback"]
    );
    let now = scratch_dbs(&scratch).await;
    assert!(
        now.iter().any(|(n, sleeping)| *n == a_db && *sleeping),
        "the live run's database or its session is gone: {now:?}"
    );
    assert!(
        a.try_wait().unwrap().is_none(),
        "the busy run was disturbed"
    );

    // SIGKILL: nothing of the run can clean up; its database stays behind.
    a.kill().expect("SIGKILL");
    let _ = a.wait();
    let after_kill = scratch_dbs(&scratch).await;
    assert!(
        after_kill.iter().any(|(n, _)| *n == a_db),
        "expected the killed run's leftover: {after_kill:?}"
    );

    // The server notices the dead client's lease session asynchronously (it ends as soon as
    // it reads the closed socket): wait (bounded) until it is gone, as any later run would.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lease_sessions(&scratch).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the killed run's lease session stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The next run reaps it and says so.
    let c = validate(&quick, &target, &shadow_url, &cache)
        .arg("--validate-rollback")
        .output()
        .expect("third run");
    let steps = reap_steps(&c.stdout);
    assert!(
        steps
            .iter()
            .any(|s| s.contains("dropped") && s.contains(&a_db)),
        "no reap step naming {a_db}: {steps:?}\n{}",
        String::from_utf8_lossy(&c.stderr)
    );
    assert_eq!(scratch_dbs(&scratch).await, Vec::<(String, bool)>::new());
}
