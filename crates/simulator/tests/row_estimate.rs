//! The `row_estimate` probe on a real shard: an `UPDATE` / `DELETE` whose `WHERE` is not a
//! bounded batch gets the planner's estimate of the rows it touches (large) or their exact
//! count (small), nothing is written, a batched one is not probed, and a `WHERE` calling a
//! function with side effects is not run.

mod common;

use common::*;
use simulator::{CancelToken, NoProgress, ProbeKind, RehearsalMode, SimOptions, Simulator};

const SCHEMA: &str = r#"
CREATE SCHEMA tenant_a;
SET search_path TO tenant_a;
CREATE TABLE big (id int PRIMARY KEY, flag boolean, note text);
INSERT INTO big SELECT g, NULL, 'n' || g FROM generate_series(1, 200000) g;
ANALYZE big;
"#;

const MIGRATION: &str = r#"
UPDATE big SET flag = true WHERE flag IS NULL;
DELETE FROM big WHERE id % 1000 = 0;
UPDATE big SET flag = false WHERE id IN (SELECT id FROM big WHERE flag LIMIT 10);
UPDATE big SET note = 'x' WHERE pg_advisory_lock(7) IS NOT NULL;
DELETE FROM big b WHERE b.note LIKE 'n1999%';
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbatched_changes_get_their_row_figure_and_nothing_is_written() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SCHEMA).await;
    let before = checksum(&pg, "app", "tenant_a").await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    });
    let res = sim
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
    let ev = &res.shards[0];
    let est: Vec<_> = ev
        .probes
        .iter()
        .filter(|p| p.kind == ProbeKind::RowEstimate)
        .collect();
    let at = |i: usize| est.iter().find(|p| p.statement_index == Some(i));

    // Every row matches: the planner's estimate (above the exact-count bound), not a count.
    let all = at(0).expect("statement 1 probed");
    assert!(all.skipped.is_none() && all.error.is_none(), "{all:#?}");
    assert!(!all.exact, "{all:#?}");
    assert!((150_000..=250_000).contains(&all.count), "{all:#?}");
    assert!(
        all.sql
            .starts_with("EXPLAIN (FORMAT JSON) SELECT 1 FROM big WHERE"),
        "{}",
        all.sql
    );

    // A small estimate is replaced by the exact count of the same WHERE.
    let few = at(1).expect("statement 2 probed");
    assert!(few.exact, "{few:#?}");
    assert_eq!(few.count, 200);
    assert_eq!(few.sql, "SELECT count(*) FROM big WHERE id % 1000 = 0");
    let alias = at(4).expect("statement 5 probed");
    assert!(alias.exact, "{alias:#?}");
    assert_eq!(alias.count, 111, "n1999, n19990..n19999, n199900..n199999");

    // A bounded batch is not probed.
    assert!(at(2).is_none(), "{est:#?}");

    // A WHERE that takes an advisory lock never runs on the shard.
    let refused = at(3).expect("statement 4 planned");
    assert!(
        refused
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("pg_advisory_lock")),
        "{refused:#?}"
    );
    assert!(refused.sql.is_empty(), "{refused:#?}");

    assert_eq!(
        checksum(&pg, "app", "tenant_a").await,
        before,
        "the shard changed"
    );
    assert_eq!(foreign_locks(&pg, "app").await, 0);
}
