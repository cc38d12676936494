//! `--rehearse in-place` through the whole gate: a migration with statements whose effects a
//! rollback does not undo never touches the target; every shard of the shape gets an
//! `in-place-refused` finding naming the statement and why, and the shape is rehearsed on the
//! shadow instead.

mod common;

use common::{fingerprint_instances, leftovers, options};
use deployclaw::gates::{Gate, Severity};
use deployclaw::pipeline::validate;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::fixture::{FixtureSpec, start_fleet};
use sqlx::{Connection, PgConnection};

const MIGRATION: &str = "SET lock_timeout = '2s';
ALTER TABLE orders ADD COLUMN note text;
SELECT setval(pg_get_serial_sequence('orders', 'id'), 100000);
SELECT pg_advisory_lock(42);
";

/// Sequence positions of every tenant's `orders` and the advisory locks held, on `app`.
async fn volatile_state(fx: &deployclaw::topology::fixture::EphemeralFleet) -> Vec<String> {
    let mut c = PgConnection::connect_with(&fx.clusters[0].connect_options("app"))
        .await
        .expect("connect");
    let v: Vec<String> = sqlx::query_scalar(
        "SELECT format('%s.%s %s %s', schemaname, sequencename, last_value, increment_by)
           FROM pg_sequences
         UNION ALL SELECT format('advisory locks %s', count(*)) FROM pg_locks WHERE locktype = 'advisory'
         ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .expect("sequences");
    c.close().await.ok();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_statements_are_reported_and_rehearsed_on_the_shadow() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 2,
            rows: 20,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = dir.path().join("m.sql");
    std::fs::write(&sql, MIGRATION).expect("write migration");
    let before = fingerprint_instances(&fx.fleet.instances).await;
    let state = volatile_state(&fx).await;

    let report = validate(
        &options(&sql, RehearsalMode::InPlace),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate");

    assert_eq!(fingerprint_instances(&fx.fleet.instances).await, before);
    assert_eq!(
        volatile_state(&fx).await,
        state,
        "a sequence or lock changed"
    );
    assert_eq!(
        leftovers(&fx.clusters.iter().collect::<Vec<_>>()).await,
        Vec::<String>::new()
    );

    assert_eq!(report.shards.len(), 2);
    for s in &report.shards {
        let refused: Vec<_> = s
            .findings
            .iter()
            .filter(|f| f.rule == "in-place-refused")
            .collect();
        let lines: Vec<u32> = refused
            .iter()
            .filter_map(|f| f.location.as_ref().map(|l| l.line))
            .collect();
        assert_eq!(lines, [3, 4], "{}: {:#?}", s.shard, s.findings);
        assert!(refused.iter().all(|f| f.severity == Severity::Yellow));
        assert!(
            refused[0].message.contains("calls `setval`"),
            "{}",
            refused[0].message
        );
        assert!(
            refused[1].message.contains("advisory lock"),
            "{}",
            refused[1].message
        );
        assert!(
            refused[0]
                .message
                .contains("rehearsed on the shadow instead"),
            "{}",
            refused[0].message
        );
        assert!(s.gate >= Gate::Yellow, "{}: {}", s.shard, s.gate);
    }
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.action == "rehearse on the shadow (in place refused)"),
        "{:#?}",
        report.steps
    );
    assert!(
        !report.steps.iter().any(|s| s.action == "rehearse in place"),
        "{:#?}",
        report.steps
    );
}
