//! The application's own queries (issue 16) through the whole gate, on real PostgreSQL with
//! `shared_preload_libraries = 'pg_stat_statements'`: application queries run by the test
//! (several tenants; qualified, unqualified with `search_path`, aliases) use
//! `orders.shipping_address` but not `orders.legacy_amount`. Dropping the used column is red
//! `breaking-change-in-use` naming the query and its calls; dropping the unused one is nothing;
//! renaming a used table is red; `bigint → text` on a used column is yellow. Without the
//! extension: one info finding per run. The gate's role needs `pg_read_all_stats` to see other
//! roles' query texts; statements of the gate's own role (its probes) are only informational.
//! The target is unchanged.

mod common;

use common::{fingerprint_instances, options};
use deployclaw::evidence::{LiveStatus, QueryUse};
use deployclaw::gates::{Finding, Severity};
use deployclaw::pipeline::validate;
use deployclaw::report::ValidationReport;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::Fleet;
use deployclaw::topology::ephemeral::EphemeralOptions;
use deployclaw::topology::fixture::{EphemeralFleet, FixtureSpec, start_fleet, start_fleet_with};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Statement 1 drops a used column, 2 an unused one, 3 converts a used column, 4 renames a used
/// table.
const MIGRATION: &str = "SET lock_timeout = '2s';
ALTER TABLE orders DROP COLUMN shipping_address;
ALTER TABLE orders DROP COLUMN legacy_amount;
ALTER TABLE payments ALTER COLUMN amount_cents TYPE text;
ALTER TABLE coupons RENAME TO vouchers;
";

const RULE: &str = "breaking-change-in-use";

async fn fleet_with_statements(tenants: usize) -> EphemeralFleet {
    let eph = EphemeralOptions {
        settings: vec![(
            "shared_preload_libraries".into(),
            "pg_stat_statements".into(),
        )],
        ..EphemeralOptions::default()
    };
    let spec = FixtureSpec {
        tenants,
        rows: 20,
        ..FixtureSpec::default()
    };
    start_fleet_with(1, &spec, &eph)
        .await
        .expect("fixture fleet")
}

async fn connect(fx: &EphemeralFleet) -> PgConnection {
    PgConnection::connect_with(&fx.clusters[0].connect_options("app"))
        .await
        .expect("connect")
}

/// The extension and the application's own role (`app_user`, not the gate's).
async fn setup(fx: &EphemeralFleet) {
    let mut c = connect(fx).await;
    exec(
        &mut c,
        "CREATE EXTENSION pg_stat_statements;
         CREATE ROLE app_user LOGIN; GRANT pg_read_all_data TO app_user;
         CREATE ROLE gate_ro LOGIN; GRANT pg_read_all_data TO gate_ro;
         CREATE ROLE gate_stats LOGIN; GRANT pg_read_all_data, pg_read_all_stats TO gate_stats",
    )
    .await;
    c.close().await.ok();
}

/// Reset the statistics, then run the application's workload as `app_user`.
async fn reset_and_run_application(fx: &EphemeralFleet) {
    let mut c = connect(fx).await;
    exec(&mut c, "SELECT pg_stat_statements_reset()").await;
    c.close().await.ok();
    let opts = fx.clusters[0].connect_options("app").username("app_user");
    let mut c = PgConnection::connect_with(&opts).await.expect("connect");
    run_application(&mut c).await;
    c.close().await.ok();
}

async fn exec(c: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The application's workload: `shipping_address` read unqualified under each tenant's
/// search path (3 calls) and qualified with an alias in tenant 2 (2 calls); `payments` and
/// `coupons` of tenant 1 by qualified names; `SELECT *` of tenant 3's orders. Nothing names
/// `legacy_amount`.
async fn run_application(c: &mut PgConnection) {
    for tenant in ["tenant_0001", "tenant_0002", "tenant_0003"] {
        exec(c, &format!("SET search_path = {tenant}")).await;
        for id in 1..=3i64 {
            sqlx::query("SELECT id, shipping_address FROM orders WHERE id = $1")
                .bind(id)
                .execute(&mut *c)
                .await
                .expect("app query");
        }
    }
    exec(c, "RESET search_path").await;
    for id in 1..=2i64 {
        sqlx::query("SELECT o.shipping_address FROM tenant_0002.orders o WHERE o.id = $1")
            .bind(id)
            .execute(&mut *c)
            .await
            .expect("app query");
    }
    sqlx::query("SELECT sum(p.amount_cents) FROM tenant_0001.payments p WHERE p.order_id = $1")
        .bind(1i64)
        .execute(&mut *c)
        .await
        .expect("app query");
    sqlx::query("SELECT code FROM tenant_0001.coupons WHERE id = $1")
        .bind(1i64)
        .execute(&mut *c)
        .await
        .expect("app query");
    exec(c, "SELECT * FROM tenant_0003.orders WHERE id = 1").await;
}

async fn gate(fleet: &Fleet, dir: &tempfile::TempDir) -> ValidationReport {
    let sql = dir.path().join("m.sql");
    std::fs::write(&sql, MIGRATION).expect("write migration");
    validate(
        &options(&sql, RehearsalMode::Shadow),
        fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate")
}

fn findings<'r>(report: &'r ValidationReport, shard: &str) -> Vec<&'r Finding> {
    let s = report
        .shards
        .iter()
        .find(|s| s.shard.ends_with(shard))
        .unwrap_or_else(|| panic!("shard {shard}"));
    s.findings.iter().filter(|f| f.rule == RULE).collect()
}

fn uses<'r>(report: &'r ValidationReport, shard: &str) -> &'r [QueryUse] {
    let s = report
        .shards
        .iter()
        .find(|s| s.shard.ends_with(shard))
        .unwrap_or_else(|| panic!("shard {shard}"));
    &s.live.query_uses
}

/// (statement, severity) of a shard's `breaking-change-in-use` findings, sorted; the gate's
/// own statements (info: its probes run concurrently) left out.
fn by_statement(report: &ValidationReport, shard: &str) -> Vec<(usize, Severity)> {
    let mut v: Vec<(usize, Severity)> = findings(report, shard)
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .map(|f| (f.location.as_ref().expect("located").statement, f.severity))
        .collect();
    v.sort_by_key(|(s, _)| *s);
    v.dedup();
    v
}

fn static_rule_count(report: &ValidationReport, rule: &str) -> usize {
    report
        .static_findings
        .iter()
        .filter(|f| f.rule == rule)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_queries_make_drops_and_renames_red_and_type_changes_yellow() {
    let fx = fleet_with_statements(3).await;
    setup(&fx).await;
    let before = fingerprint_instances(&fx.fleet.instances).await;
    let dir = tempfile::tempdir().expect("tempdir");

    reset_and_run_application(&fx).await;
    let report = gate(&fx.fleet, &dir).await;

    use Severity::{Red, Yellow};
    // Tenant 1: the unqualified query (its search path), payments and coupons by name.
    assert_eq!(
        by_statement(&report, "tenant_0001"),
        [(1, Red), (3, Yellow), (4, Red)]
    );
    // Tenants 2 and 3: only the column (an unqualified query matches every tenant of the
    // database; `SELECT *` of tenant 3 names no column).
    assert_eq!(
        by_statement(&report, "tenant_0002"),
        [(1, Red)],
        "{:#?}",
        uses(&report, "tenant_0002")
    );
    assert_eq!(by_statement(&report, "tenant_0003"), [(1, Red)]);
    // Dropping the unused column (statement 2) is nothing anywhere.
    for s in &report.shards {
        assert_eq!(
            s.live.statements,
            LiveStatus::Read,
            "{}: {:?}",
            s.shard,
            s.live
        );
        assert_eq!(s.live.queries_skipped, 0, "every application query parses");
        assert!(
            s.live
                .query_uses
                .iter()
                .all(|u| u.statement != 2 || u.by_gate_role),
            "{s:?}"
        );
    }

    // The qualified, aliased query counts for tenant 2 only, with its calls.
    let t2 = uses(&report, "tenant_0002");
    let aliased = t2
        .iter()
        .find(|u| u.query.contains("tenant_0002.orders o"))
        .unwrap_or_else(|| panic!("{t2:?}"));
    assert_eq!(aliased.calls, 2);
    assert_eq!(aliased.uses, "tenant_0002.orders.shipping_address");
    assert!(
        uses(&report, "tenant_0001")
            .iter()
            .all(|u| !u.query.contains("tenant_0002"))
    );
    // The unqualified query: 9 calls over the three search paths (one queryid each).
    let unqualified: i64 = t2
        .iter()
        .filter(|u| {
            u.query
                .starts_with("SELECT id, shipping_address FROM orders")
        })
        .map(|u| u.calls)
        .sum();
    assert_eq!(unqualified, 9, "{t2:?}");
    // The message names the query, its calls, the column and the statement's change.
    let msg = &findings(&report, "tenant_0002")
        .into_iter()
        .find(|f| f.message.contains("tenant_0002.orders o"))
        .expect("aliased query finding")
        .message;
    assert!(
        msg.contains("2 calls") && msg.contains("`tenant_0002.orders.shipping_address`"),
        "{msg}"
    );
    assert!(msg.contains("drops"), "{msg}");
    // The statistics reset time is known (PG 14+).
    assert!(aliased.stats_since.is_some(), "{aliased:?}");
    assert_eq!(static_rule_count(&report, "query-stats-unavailable"), 0);

    // Least privilege: without pg_read_all_stats the superuser's query texts are hidden →
    // unavailable, said once; with it, the same verdicts as the superuser's.
    let as_role = |role: &str| {
        let mut f = fx.fleet.clone();
        for i in &mut f.instances {
            i.connection.user = role.to_string();
        }
        f
    };
    reset_and_run_application(&fx).await;
    let hidden = gate(&as_role("gate_ro"), &dir).await;
    assert_eq!(static_rule_count(&hidden, "query-stats-unavailable"), 1);
    for s in &hidden.shards {
        match &s.live.statements {
            LiveStatus::Unavailable { reason } => {
                assert!(reason.contains("pg_read_all_stats"), "{reason}")
            }
            other => panic!("{}: {other:?}", s.shard),
        }
        assert!(
            s.findings
                .iter()
                .all(|f| f.rule != RULE || f.severity == Severity::Info)
        );
    }
    reset_and_run_application(&fx).await;
    let stats = gate(&as_role("gate_stats"), &dir).await;
    for t in ["tenant_0001", "tenant_0002", "tenant_0003"] {
        assert_eq!(by_statement(&stats, t), by_statement(&report, t), "{t}");
    }
    assert_eq!(fingerprint_instances(&fx.fleet.instances).await, before);
}

/// Instance 1 has no pg_stat_statements at all; instance 2 has the extension installed but
/// not loaded (`shared_preload_libraries`), so reading the view fails. One info finding for the
/// run, naming both reasons; every shard says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_extension_one_info_finding_per_run() {
    let fx = start_fleet(
        2,
        &FixtureSpec {
            tenants: 2,
            rows: 20,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let mut c = PgConnection::connect_with(&fx.clusters[1].connect_options("app"))
        .await
        .expect("connect");
    exec(&mut c, "CREATE EXTENSION pg_stat_statements").await;
    c.close().await.ok();
    let before = fingerprint_instances(&fx.fleet.instances).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let report = gate(&fx.fleet, &dir).await;
    assert_eq!(fingerprint_instances(&fx.fleet.instances).await, before);

    let info: Vec<&Finding> = report
        .static_findings
        .iter()
        .filter(|f| f.rule == "query-stats-unavailable")
        .collect();
    assert_eq!(info.len(), 1, "{:?}", report.static_findings);
    assert_eq!(info[0].severity, Severity::Info);
    let msg = &info[0].message;
    assert!(msg.contains("2 of 2 shard(s)"), "{msg}");
    assert!(
        msg.contains("pg_stat_statements is not installed in database `app`"),
        "{msg}"
    );
    assert!(msg.contains("could not be read"), "{msg}");
    assert!(
        msg.contains("shared_preload_libraries = 'pg_stat_statements'")
            && msg.contains("CREATE EXTENSION pg_stat_statements"),
        "{msg}"
    );
    for s in &report.shards {
        assert!(
            matches!(s.live.statements, LiveStatus::Unavailable { .. }),
            "{:?}",
            s.live
        );
        assert!(
            s.findings
                .iter()
                .all(|f| f.rule != "query-stats-unavailable")
        );
        assert!(s.findings.iter().all(|f| f.rule != RULE));
    }
}
