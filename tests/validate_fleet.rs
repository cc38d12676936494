//! The whole gate on a real fleet: 3 ephemeral PostgreSQL instances, 100 tenant schemas with
//! the demo's planted problems. Planted problems must produce exactly the expected per-shard
//! verdicts, and the target's catalog and table contents must be byte-identical before and
//! after validation, in both rehearsal modes, with no session, lock or shadow left behind.

use std::collections::BTreeMap;

use deployclaw::demo::{DemoOptions, start_demo_fleet};
use deployclaw::gates::Gate;
use deployclaw::pipeline::{ValidateOptions, validate};
use deployclaw::report::ValidationReport;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode, Throughput};
use deployclaw::topology::Fleet;
use sqlx::{Connection, PgConnection, Row};

const MIGRATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/schema_v42.sql"
);

/// Expected (gate, rule that must be among the findings) for the planted tenants; every other
/// tenant is GREEN.
fn expected() -> BTreeMap<usize, (Gate, &'static str)> {
    let mut e = BTreeMap::new();
    for t in [7, 42, 77] {
        e.insert(t, (Gate::Red, "fk-orphans"));
    }
    for t in [13, 58] {
        e.insert(t, (Gate::Red, "not-null-violations"));
    }
    e.insert(21, (Gate::Red, "unique-violations"));
    for t in [34, 89] {
        e.insert(t, (Gate::Red, "cast-failures"));
    }
    e.insert(95, (Gate::Red, "check-violations"));
    e.insert(50, (Gate::Yellow, "schema-drift"));
    e.insert(64, (Gate::Yellow, "lock-time-budget"));
    e
}

fn tenant_number(shard: &str) -> usize {
    let tail = shard.rsplit("tenant_").next().unwrap_or_default();
    tail.parse().unwrap_or(0)
}

/// A checksum of every non-system catalog object and every tenant table's contents, per
/// instance.
async fn fingerprint_target(fleet: &Fleet) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for inst in &fleet.instances {
        let opts = inst
            .connection
            .with_database("app")
            .to_connect_options()
            .expect("options");
        let mut c = PgConnection::connect_with(&opts).await.expect("connect");
        let catalog: String = sqlx::query_scalar(
            "SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
               SELECT format('rel %s.%s %s %s %s', n.nspname, c.relname, c.relkind, c.relfilenode, c.relnatts) AS x
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                  AND n.nspname NOT LIKE 'pg_temp%'
               UNION ALL
               SELECT format('att %s.%s %s %s %s %s', n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attisdropped)
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE a.attnum > 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
               UNION ALL
               SELECT format('con %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) FROM pg_constraint
                WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
               UNION ALL
               SELECT format('db %s', datname) FROM pg_database
             ) s",
        )
        .fetch_one(&mut c)
        .await
        .expect("catalog checksum");
        let tables = sqlx::query(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'r' AND (n.nspname LIKE 'tenant\\_%' OR n.nspname = 'shared')
              ORDER BY 1, 2",
        )
        .fetch_all(&mut c)
        .await
        .expect("tables");
        let mut data = Vec::new();
        for t in tables {
            let (s, r): (String, String) = (t.get(0), t.get(1));
            let q = format!(
                "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \"{s}\".\"{r}\" t"
            );
            let h: String = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_one(&mut c)
                .await
                .expect("data checksum");
            data.push(format!("{s}.{r}={h}"));
        }
        out.insert(inst.name.clone(), format!("{catalog} {}", data.join(",")));
        c.close().await.expect("close");
    }
    out
}

/// Backends other than the checker's own, and locks they hold, on every instance.
async fn leftovers(fleet: &Fleet) -> Vec<String> {
    let mut found = Vec::new();
    for inst in &fleet.instances {
        let opts = inst
            .connection
            .with_database("postgres")
            .to_connect_options()
            .expect("options");
        let mut c = PgConnection::connect_with(&opts).await.expect("connect");
        let rows = sqlx::query(
            "SELECT coalesce(application_name, ''), coalesce(datname, ''), state FROM pg_stat_activity
              WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut c)
        .await
        .expect("activity");
        for r in rows {
            let (app, db, state): (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
            found.push(format!("{}: session {app} on {db} ({state:?})", inst.name));
        }
        let locks: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid() AND locktype = 'relation'",
        )
        .fetch_one(&mut c)
        .await
        .expect("locks");
        if locks > 0 {
            found.push(format!("{}: {locks} relation locks held", inst.name));
        }
        let dbs: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1', 'app') ORDER BY 1",
        )
        .fetch_all(&mut c)
        .await
        .expect("databases");
        for d in dbs {
            found.push(format!("{}: unexpected database {d}", inst.name));
        }
        c.close().await.expect("close");
    }
    found
}

fn options(mode: RehearsalMode) -> ValidateOptions {
    let mut o = ValidateOptions::new(MIGRATION);
    o.sim.rehearsal = mode;
    // Fixed throughput so the lock estimates (and so `lock-time-budget`) do not depend on how
    // busy the machine is: the large shard's events table (~25 MB) takes ~1.2 s to rewrite at
    // 20 MB/s, the small ones well under the 500 ms budget.
    o.sim.calibrate = false;
    o.sim.throughput = Some(Throughput {
        scan_mb_per_s: 150.0,
        rewrite_mb_per_s: 20.0,
        index_mb_per_s: 30.0,
        catalog_ms: 5.0,
        calibrated: false,
        sample_mb: 0.0,
    });
    o.lock_budget_ms = Some(500);
    o
}

fn check_verdicts(report: &ValidationReport) {
    let expected = expected();
    assert_eq!(report.shards.len(), 100);
    let mut wrong = Vec::new();
    for s in &report.shards {
        let n = tenant_number(&s.shard);
        let rules: Vec<&str> = s
            .findings
            .iter()
            .filter(|f| f.severity > deployclaw::gates::Severity::Info)
            .map(|f| f.rule.as_str())
            .collect();
        match expected.get(&n) {
            Some((gate, rule)) => {
                if s.gate != *gate || !rules.contains(rule) {
                    wrong.push(format!(
                        "{}: {} {:?}, expected {gate} with {rule}",
                        s.shard, s.gate, rules
                    ));
                }
            }
            None => {
                if s.gate != Gate::Green {
                    wrong.push(format!(
                        "{}: {} {:?}, expected GREEN",
                        s.shard, s.gate, rules
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
    assert_eq!(report.gate, Gate::Red);
    assert_eq!(report.safety_gates.shard_exceptions.len(), expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn planted_problems_give_exact_verdicts_and_the_target_is_unchanged() {
    let demo = DemoOptions {
        rows: 60,
        large_tenant_events: 200_000,
        ..DemoOptions::default()
    };
    let fleet = start_demo_fleet(&demo).await.expect("demo fleet");
    let before = fingerprint_target(&fleet.fleet).await;

    // Shadow rehearsal (the default), with the rollback proven.
    let report = validate(
        &options(RehearsalMode::Shadow),
        &fleet.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate (shadow)");
    check_verdicts(&report);
    assert!(
        report.rollback.tested,
        "rollback must be tested: {:?}",
        report.rollback
    );
    assert_eq!(
        fingerprint_target(&fleet.fleet).await,
        before,
        "shadow mode changed the target"
    );
    assert_eq!(leftovers(&fleet.fleet).await, Vec::<String>::new());

    // In-place rehearsal (opt-in): always rolled back.
    let report = validate(
        &options(RehearsalMode::InPlace),
        &fleet.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate (in place)");
    check_verdicts(&report);
    assert_eq!(
        fingerprint_target(&fleet.fleet).await,
        before,
        "in-place mode changed the target"
    );
    assert_eq!(leftovers(&fleet.fleet).await, Vec::<String>::new());
}
