//! Evidence wins over prediction (issue 15), through the whole gate on a real fleet: a rewrite
//! the rehearsal observed that no static rule predicted is an `observed-rewrite` finding on
//! every shard (never GREEN), and a rewrite a static rule predicted that the rehearsal did not
//! see is demoted to info with the reason.

mod common;

use common::options;
use deployclaw::gates::{Gate, Severity};
use deployclaw::pipeline::validate;
use deployclaw::simulator::{CancelToken, NoProgress, RehearsalMode};
use deployclaw::topology::fixture::{EphemeralFleet, FixtureSpec, start_fleet};
use sqlx::{Connection, PgConnection};

/// Statement 1 rewrites `orders` through a `DO` block (the parser cannot see inside it);
/// statement 2 "changes" `created_at` to the type it already has: `changing-column-type`
/// cannot know the shard's type and predicts a rewrite, PostgreSQL does nothing.
const MIGRATION: &str = "SET lock_timeout = '2s';
DO $$ BEGIN EXECUTE 'ALTER TABLE orders ALTER COLUMN coupon_id TYPE numeric(20,0)'; END $$;
ALTER TABLE orders ALTER COLUMN created_at TYPE timestamptz;
";

/// A fixture fleet of one instance with `tenants` tenant schemas of `rows` rows each, and
/// `migration` written to `m.sql` in a temporary directory (kept alive by the caller).
async fn fleet_and_migration(
    tenants: usize,
    rows: u32,
    migration: &str,
) -> (EphemeralFleet, tempfile::TempDir, std::path::PathBuf) {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants,
            rows,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let dir = tempfile::tempdir().expect("tempdir");
    let sql = dir.path().join("m.sql");
    std::fs::write(&sql, migration).expect("write migration");
    (fx, dir, sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpredicted_rewrite_is_reported_and_a_predicted_one_not_seen_is_demoted() {
    let (fx, _dir, sql) = fleet_and_migration(2, 20, MIGRATION).await;

    let report = validate(
        &options(&sql, RehearsalMode::Shadow),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate");

    assert_eq!(report.shards.len(), 2);
    for s in &report.shards {
        let schema = s.shard.rsplit('/').next().unwrap_or(&s.shard).to_string();
        let observed: Vec<_> = s
            .findings
            .iter()
            .filter(|f| f.rule == "observed-rewrite")
            .collect();
        assert_eq!(observed.len(), 1, "{}: {:#?}", s.shard, s.findings);
        let f = observed[0];
        assert_eq!(f.severity, Severity::Yellow);
        assert_eq!(f.location.as_ref().map(|l| l.statement), Some(1));
        assert!(
            f.message.contains(".orders`") && f.message.contains("relfilenode changed"),
            "{}",
            f.message
        );
        assert!(f.message.contains("ACCESS EXCLUSIVE"), "{}", f.message);
        let ev = f.evidence.as_ref().expect("evidence");
        assert!(
            ev["relation"]
                .as_str()
                .is_some_and(|r| r.ends_with(".orders")),
            "{ev} ({schema})"
        );
        assert_ne!(
            s.gate,
            Gate::Green,
            "{}: an observed rewrite is never GREEN",
            s.shard
        );

        let predicted: Vec<_> = s
            .findings
            .iter()
            .filter(|f| f.rule == "changing-column-type")
            .collect();
        assert_eq!(predicted.len(), 1, "{}: {:#?}", s.shard, s.findings);
        assert_eq!(
            predicted[0].severity,
            Severity::Info,
            "{}",
            predicted[0].message
        );
        assert!(
            predicted[0]
                .message
                .contains("Demoted: the rehearsal on this shard's shape ran it with every relfilenode unchanged"),
            "{}",
            predicted[0].message
        );
        // The DO block's lock is reported with its rewrite, not again as an observed lock.
        assert!(
            !s.findings.iter().any(|f| f.rule == "observed-lock"),
            "{:#?}",
            s.findings
        );
    }
}

/// Probe evidence on real data: an `UPDATE` whose `WHERE` is not a batch carries, per shard,
/// the exact number of rows it touches there, and is info under the configured threshold and
/// yellow above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbatched_update_carries_its_row_count_per_shard() {
    let (fx, _dir, sql) = fleet_and_migration(2, 40, "SET lock_timeout = '2s';\nUPDATE orders SET external_ref = 'none' WHERE external_ref IS NULL OR total_cents >= 0;\n").await;
    let mut c = PgConnection::connect_with(&fx.clusters[0].connect_options("app"))
        .await
        .expect("connect");
    for (threshold, severity) in [(10_000, Severity::Info), (1, Severity::Yellow)] {
        let mut o = options(&sql, RehearsalMode::Shadow);
        o.config.data_changes.max_unbatched_rows = threshold;
        let report = validate(&o, &fx.fleet, &NoProgress, &CancelToken::new())
            .await
            .expect("validate");
        for s in &report.shards {
            let schema = s.shard.rsplit(['/', '.']).next().unwrap_or(&s.shard);
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {schema}.orders WHERE external_ref IS NULL OR total_cents >= 0"
            )))
            .fetch_one(&mut c)
            .await
            .expect("count");
            let f = s
                .findings
                .iter()
                .find(|f| f.rule == "unbatched-data-change")
                .unwrap_or_else(|| panic!("{}: {:#?}", s.shard, s.findings));
            assert_eq!(f.severity, severity, "{}", f.message);
            assert!(
                f.message.contains(&format!(
                    "On this shard: {n} rows of `{schema}.orders` (exact count of the same WHERE)"
                )),
                "{}",
                f.message
            );
        }
    }
    c.close().await.ok();
}

/// The per-fleet proof of non-tenant objects: two tenants share the database `app`; the
/// migration creates a schema and a function in `public` without `IF NOT EXISTS` / `OR
/// REPLACE`. Rehearsed for the first tenant and then the second on one shadow database, the
/// second run fails on both: a red `second-tenant-fails` on the second shard naming the object
/// and the shard that ran first; nothing on the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_tenant_object_fails_the_second_tenant_of_a_database() {
    let (fx, _dir, sql) = fleet_and_migration(
        2,
        10,
        "SET lock_timeout = '2s';
CREATE SCHEMA utils;
CREATE FUNCTION public.slug_of(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(t) $$;
ALTER TABLE orders ADD COLUMN slug text;
",
    )
    .await;
    let report = validate(
        &options(&sql, RehearsalMode::Shadow),
        &fx.fleet,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("validate");
    assert_eq!(report.shards.len(), 2);
    let (first, second) = (&report.shards[0], &report.shards[1]);
    let of = |s: &deployclaw::report::ShardReport| -> Vec<(usize, String)> {
        s.findings
            .iter()
            .filter(|f| f.rule == "second-tenant-fails")
            .map(|f| {
                (
                    f.location.as_ref().map_or(0, |l| l.statement),
                    f.message.clone(),
                )
            })
            .collect()
    };
    assert!(of(first).is_empty(), "{:#?}", first.findings);
    let found = of(second);
    assert_eq!(
        found.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [1, 2],
        "{:#?}",
        second.findings
    );
    assert!(
        found[0].1.contains("42P06") && found[0].1.contains("\"utils\""),
        "{}",
        found[0].1
    );
    assert!(
        found[1].1.contains("42723") && found[1].1.contains("slug_of"),
        "{}",
        found[1].1
    );
    assert!(
        found[0]
            .1
            .contains(&format!("after shard `{}`", first.shard)),
        "{}",
        found[0].1
    );
    assert_eq!(second.gate, Gate::Red);
}

/// One `pg_dump` serves the whole shadow side of a run (issue 17): the first rehearsal clones
/// both tenants of the database and runs the second after the first on that clone (the
/// per-fleet proof), and the rollback proof loads the same dump, taken while the fleet was
/// introspected. Before, the per-fleet proof made a clone of its own (a second dump of the
/// source's catalog). The second tenant's run still finds what the first left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_dump_serves_the_rehearsal_the_per_fleet_proof_and_the_rollback_proof() {
    let (fx, _dir, sql) = fleet_and_migration(
        3,
        10,
        "SET lock_timeout = '2s';
CREATE SCHEMA utils;
ALTER TABLE orders ADD COLUMN slug text;
",
    )
    .await;
    let mut opts = options(&sql, RehearsalMode::Shadow);
    opts.validate_rollback = true;
    let cache = std::sync::Arc::new(deployclaw::simulator::DumpCache::new());
    opts.sim.dump_cache = Some(cache.clone());
    let report = validate(&opts, &fx.fleet, &NoProgress, &CancelToken::new())
        .await
        .expect("validate");
    assert_eq!(cache.len(), 1, "{:#?}", report.steps);
    // Those that list the schemas before asking for the dump (the early prefetch, the
    // rehearsal's prefetch, the proof) asked for the same list, read once.
    assert_eq!(cache.lists_read(), 1, "{:#?}", report.steps);
    let step = |action: &str| -> String {
        report
            .steps
            .iter()
            .filter(|s| s.action == action)
            .map(|s| s.details.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let (first, second) = (&report.shards[0].shard, &report.shards[1].shard);
    let schema = |id: &str| id.rsplit('/').next().unwrap_or_default().to_string();
    let clone = step("clone schema");
    assert!(
        clone.contains(&schema(first)) && clone.contains(&schema(second)),
        "{clone}"
    );
    let rerun = step("rehearse per fleet");
    assert!(
        rerun.contains(&format!("shard {second} after shard {first}"))
            && rerun.contains("statement 2 failed")
            && rerun.contains("run on the rehearsal's shadow database"),
        "{rerun}"
    );
    assert!(
        report.shards[1]
            .findings
            .iter()
            .any(|f| f.rule == "second-tenant-fails" && f.message.contains("\"utils\"")),
        "{:#?}",
        report.shards[1].findings
    );
    // The proof ran on the same dump and proved the generated rollback.
    assert_eq!(report.rollback.proofs.len(), 1, "{:#?}", report.rollback);
    assert!(report.rollback.tested, "{:#?}", report.rollback);
}
