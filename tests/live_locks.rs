//! Issue 16, lock-queue risk now, end to end on a real PostgreSQL fleet: another session holds
//! an open transaction on one tenant's `orders` (a `SELECT` carrying a secret literal, then
//! idle in transaction); a migration that takes `ACCESS EXCLUSIVE` on `orders` gets
//! `lock-queue-risk` on that tenant only, naming the pid and the relation — yellow under the
//! default idle limit, red past a short `[live] idle_in_transaction_red_after`. The JSON's
//! `shards[].live.lock_holders` carries the session, no rendering carries the literal, and the
//! target is unchanged. A role without `pg_read_all_stats` gets an info finding saying the
//! read could not run and how to grant it, never a silent green.

mod common;

use deployclaw::pipeline::validate;
use deployclaw::report::{ValidationReport, render};
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::fixture::{FixtureSpec, start_fleet};
use deployclaw::topology::{Fleet, Secret};
use sqlx::{Connection, PgConnection};

const SECRET: &str = "hunter2-card-4111-secret";
const MIGRATION: &str = "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN gift_note text;\n";

async fn run(fleet: &Fleet, sql: &std::path::Path, red_after_ms: Option<u64>) -> ValidationReport {
    let mut opts = common::options(sql, RehearsalMode::Shadow);
    if let Some(ms) = red_after_ms {
        opts.config.live.idle_in_transaction_red_after_ms = ms;
    }
    validate(&opts, fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("report")
}

/// Every rendering a user reads, and the JSON.
fn all_text(r: &ValidationReport) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        serde_json::to_string(r).unwrap(),
        render::markdown(r, &Default::default()),
        render::html(r),
        render::terminal(r, &Default::default())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_open_transaction_on_one_tenant_is_a_lock_queue_risk_there_only() {
    let spec = FixtureSpec {
        tenants: 4,
        rows: 30,
        ..FixtureSpec::default()
    };
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("add_gift_note.sql");
    std::fs::write(&sql, MIGRATION).unwrap();
    let before = common::fingerprint_db(&common::su(pg, "app")).await;

    // The holder: an application session left idle in transaction after reading tenant 3's
    // orders with a literal that must never reach a report.
    let mut holder =
        PgConnection::connect_with(&pg.connect_options("app").application_name("billing-worker"))
            .await
            .expect("holder connects");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT count(*) FROM tenant_0003.orders WHERE external_ref = '{SECRET}' OR total_cents = 987654321"
    )))
    .execute(&mut holder)
    .await
    .expect("holder's transaction");

    // A long idle limit (the default, 30 s, could pass on a loaded machine): yellow, on tenant 3
    // only.
    let report = run(&fx.fleet, &sql, Some(600_000)).await;
    let with_risk: Vec<&str> = report
        .shards
        .iter()
        .filter(|s| s.findings.iter().any(|f| f.rule == "lock-queue-risk"))
        .map(|s| s.shard.as_str())
        .collect();
    assert_eq!(with_risk.len(), 1, "{with_risk:?}");
    assert!(with_risk[0].ends_with("tenant_0003"), "{with_risk:?}");
    let shard = report
        .shards
        .iter()
        .find(|s| s.shard.ends_with("tenant_0003"))
        .unwrap();
    let f = shard
        .findings
        .iter()
        .find(|f| f.rule == "lock-queue-risk")
        .unwrap();
    assert_eq!(
        f.severity,
        deployclaw::gates::Severity::Yellow,
        "{}",
        f.message
    );
    assert!(f.message.contains(&format!("pid {pid}")), "{}", f.message);
    assert!(f.message.contains("tenant_0003.orders"), "{}", f.message);
    assert!(f.message.contains("billing-worker"), "{}", f.message);
    assert!(f.message.contains("ACCESS EXCLUSIVE"), "{}", f.message);
    assert_eq!(f.location.as_ref().map(|l| l.line), Some(2));

    // The JSON carries the holder, with the query normalised.
    let json = serde_json::to_value(&report).unwrap();
    let shards = json["shards"].as_array().unwrap();
    let j3 = shards
        .iter()
        .find(|s| s["shard"].as_str().unwrap().ends_with("tenant_0003"))
        .unwrap();
    let h = &j3["live"]["lock_holders"][0];
    assert_eq!(h["pid"], pid);
    assert_eq!(h["relation"], "tenant_0003.orders");
    assert_eq!(h["mode"], "AccessShareLock");
    assert_eq!(h["state"], "idle in transaction");
    assert_eq!(h["blocks_mode"], "AccessExclusiveLock");
    let q = h["query"].as_str().expect("a normalised query");
    assert!(
        q.contains("external_ref = $1") && q.contains("total_cents = $2"),
        "{q}"
    );
    for s in shards
        .iter()
        .filter(|s| !s["shard"].as_str().unwrap().ends_with("tenant_0003"))
    {
        assert_eq!(s["live"]["locks"]["status"], "read", "{}", s["live"]);
        assert!(s["live"].get("lock_holders").is_none(), "{}", s["live"]);
    }
    let text = all_text(&report);
    assert!(
        !text.contains(SECRET),
        "the holder's literal leaked into a report"
    );
    assert!(
        !text.contains("987654321"),
        "the holder's number leaked into a report"
    );
    assert!(text.contains("Live workload"));

    // Past a short idle limit: red.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let report = run(&fx.fleet, &sql, Some(500)).await;
    let shard = report
        .shards
        .iter()
        .find(|s| s.shard.ends_with("tenant_0003"))
        .unwrap();
    assert_eq!(shard.gate, deployclaw::gates::Gate::Red);
    let f = shard
        .findings
        .iter()
        .find(|f| f.rule == "lock-queue-risk")
        .expect("still reported");
    assert_eq!(
        f.severity,
        deployclaw::gates::Severity::Red,
        "{}",
        f.message
    );
    assert!(
        f.message.contains("idle_in_transaction_red_after"),
        "{}",
        f.message
    );

    // The holder ends; the target is what it was.
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    holder.close().await.unwrap();
    assert_eq!(common::fingerprint_db(&common::su(pg, "app")).await, before);
    assert_eq!(common::leftovers(&[pg]).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_pg_read_all_stats_the_lock_read_says_it_could_not_run() {
    let spec = FixtureSpec {
        tenants: 2,
        rows: 20,
        ..FixtureSpec::default()
    };
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    common::create_reader(pg, "gate_reader", "reader-pw-5521").await;
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("add_gift_note.sql");
    std::fs::write(&sql, MIGRATION).unwrap();
    let mut fleet = fx.fleet.clone();
    for i in &mut fleet.instances {
        i.connection.user = "gate_reader".into();
        i.connection.password = Some(Secret::new("reader-pw-5521"));
    }
    let report = run(&fleet, &sql, None).await;
    assert_eq!(report.shards.len(), 2);
    for s in &report.shards {
        let f = s
            .findings
            .iter()
            .find(|f| f.rule == "lock-queue-risk")
            .unwrap_or_else(|| panic!("{}: no lock-queue-risk finding: {:?}", s.shard, s.findings));
        assert_eq!(f.severity, deployclaw::gates::Severity::Info);
        assert!(f.message.contains("could not run"), "{}", f.message);
        assert!(
            f.message.contains("GRANT pg_read_all_stats TO gate_reader"),
            "{}",
            f.message
        );
        assert!(matches!(
            s.live.locks,
            deployclaw::gates::evidence::LiveStatus::Unavailable { .. }
        ));
    }
    assert_eq!(common::leftovers(&[pg]).await, Vec::<String>::new());
}
