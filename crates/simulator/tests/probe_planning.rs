//! Probe planning follows the one model of the migration (`MigrationState`): on a real shard,
//! the false-RED classes of issue 13 give no failing probe, and the true problems next to them
//! are still found.

mod common;

use common::*;
use simulator::{
    CancelToken, NoProgress, ProbeKind, ProbeResult, RehearsalMode, SimOptions, Simulator,
};

const SCHEMA: &str = r#"
CREATE SCHEMA tenant_a;
SET search_path TO tenant_a;
CREATE TABLE ev (id int PRIMARY KEY, ts timestamptz);
INSERT INTO ev VALUES (1, now()), (2, now());
CREATE MATERIALIZED VIEW old_mv AS SELECT id FROM ev;
CREATE UNIQUE INDEX old_mv_id ON old_mv (id);
CREATE TABLE people (id int PRIMARY KEY, m text, n int);
INSERT INTO people VALUES (1, 'ok', 1), (2, 'sad', 2), (3, NULL, 3);
CREATE TABLE moods (id int PRIMARY KEY, m text);
INSERT INTO moods VALUES (1, 'ok'), (2, 'angry');
CREATE TYPE status AS ENUM ('new', 'done');
CREATE TABLE tasks (id int PRIMARY KEY, s text);
INSERT INTO tasks VALUES (1, 'new'), (2, 'archived'), (3, 'bogus');
"#;

const MIGRATION: &str = r#"
ALTER TABLE ev RENAME COLUMN ts TO ts_old;
ALTER TABLE ev ADD COLUMN ts timestamptz;
CREATE MATERIALIZED VIEW mv AS SELECT id FROM ev;
CREATE UNIQUE INDEX mv_id ON mv (id);
DROP MATERIALIZED VIEW old_mv;
CREATE MATERIALIZED VIEW old_mv AS SELECT id FROM ev;
CREATE UNIQUE INDEX old_mv_id ON old_mv (id);
CREATE TYPE mood AS ENUM ('ok', 'sad');
ALTER TABLE people ALTER COLUMN m TYPE mood USING m::mood;
ALTER TABLE moods ALTER COLUMN m TYPE mood;
CREATE DOMAIN pos AS int CHECK (VALUE > 0);
ALTER TABLE people ALTER COLUMN n TYPE pos USING n::pos;
ALTER TYPE status ADD VALUE 'archived';
ALTER TABLE tasks ALTER COLUMN s TYPE status USING s::status;
"#;

fn failing(probes: &[ProbeResult]) -> Vec<&ProbeResult> {
    probes
        .iter()
        .filter(|p| p.would_fail && p.count > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_the_migration_creates_renames_or_drops_are_not_false_reds() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SCHEMA).await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let m = migration(MIGRATION);
    assert_eq!(m.statements.len(), 14, "{:#?}", m.statements);
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    });
    let res = sim
        .run(&m, &fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    let ev = &res.shards[0];
    assert!(ev.unreachable.is_none(), "{ev:#?}");
    let bad = failing(&ev.probes);
    // The real problems: `angry` is not a label of the new enum (statement 10), `bogus` is
    // none of the shard enum's labels nor the one the migration adds (statement 14;
    // `archived` converts).
    let found: Vec<_> = bad
        .iter()
        .map(|p| {
            (
                p.kind,
                p.statement_index,
                p.count,
                p.table.as_str(),
                p.samples.clone(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                ProbeKind::CastFailures,
                Some(9),
                1,
                "moods",
                vec!["angry".to_string()]
            ),
            (
                ProbeKind::CastFailures,
                Some(13),
                1,
                "tasks",
                vec!["bogus".to_string()]
            ),
        ]
    );
    // people.m holds only labels: checked, nothing found (no cast to a type the shard lacks).
    let labels = ev
        .probes
        .iter()
        .find(|p| p.kind == ProbeKind::CastFailures && p.statement_index == Some(8))
        .expect("label probe");
    assert!(
        labels.skipped.is_none() && labels.error.is_none() && labels.count == 0,
        "{labels:#?}"
    );
    assert!(
        labels.sql.contains("NOT IN ('ok', 'sad')"),
        "{}",
        labels.sql
    );
    // The domain is created by the migration over a type of the shard: the shard's rows are
    // checked against its base type and its CHECK (1, 2, 3 are all positive: nothing found,
    // and nothing left to the rehearsal's empty tables).
    for kind in [ProbeKind::CastFailures, ProbeKind::CheckViolations] {
        let domain = ev
            .probes
            .iter()
            .find(|p| p.kind == kind && p.statement_index == Some(11))
            .expect("domain probe");
        assert!(
            domain.skipped.is_none() && domain.error.is_none() && domain.count == 0,
            "{domain:#?}"
        );
    }
    assert!(
        !ev.probes.iter().any(|p| matches!(
            p.kind,
            ProbeKind::MissingObject | ProbeKind::ObjectAlreadyExists
        )),
        "{:#?}",
        ev.probes
    );
}

/// The migration is untrusted: the expressions it writes (`CHECK`, `USING`, index keys and
/// predicates) reach probe SQL that runs on the *target*. A probe runs them only when every
/// function is proven free of side effects on the shard and no relation is read; otherwise the
/// probe is skipped (the rehearsal decides). A live session of the target survives, and no
/// server file reaches a report through a cast error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migrations_expressions_in_probes_never_act_on_the_target() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE TABLE tenant_a.t (id int PRIMARY KEY, v text, w int);
         INSERT INTO tenant_a.t VALUES (1, 'a', 1), (2, 'b', -1);
         CREATE TABLE tenant_a.secret (s text); INSERT INTO tenant_a.secret VALUES ('s3cr3t-value');",
    )
    .await;
    let mut other = conn(&pg, "app").await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut other)
        .await
        .unwrap();
    let m = migration(&format!(
        "ALTER TABLE t ADD CONSTRAINT c1 CHECK (pg_terminate_backend({pid}));
         ALTER TABLE t ALTER COLUMN v TYPE int USING pg_read_file('/etc/passwd')::int;
         CREATE UNIQUE INDEX t_k ON t ((pg_terminate_backend({pid})));
         CREATE UNIQUE INDEX t_p ON t (id) WHERE pg_terminate_backend({pid});
         ALTER TABLE t ALTER COLUMN w TYPE int USING (SELECT s FROM secret)::int;
         ALTER TABLE t ADD CONSTRAINT c2 CHECK (w > 0);"
    ));
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    });
    let res = sim
        .run(
            &m,
            &fleet(&[&pg], &[(0, "app", "tenant_a")]),
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
    let probes = &res.shards[0].probes;
    let alive: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut other)
        .await
        .expect("a probe terminated a live session of the target");
    assert_eq!(alive, 1);
    let text = format!("{probes:?}");
    assert!(
        !text.contains("root:"),
        "a server file reached the report: {text}"
    );
    assert!(
        !text.contains("s3cr3t"),
        "another table reached the report: {text}"
    );
    for (stmt, kind, why) in [
        (0, ProbeKind::CheckViolations, "pg_terminate_backend"),
        (1, ProbeKind::CastFailures, "pg_read_file"),
        (2, ProbeKind::UniqueViolations, "pg_terminate_backend"),
        (3, ProbeKind::UniqueViolations, "pg_terminate_backend"),
        (4, ProbeKind::CastFailures, "secret"),
    ] {
        let p = find(probes, kind, stmt);
        assert!(
            p.skipped.as_deref().is_some_and(|s| s.contains(why)) && p.count == 0,
            "statement {stmt}: {p:#?}"
        );
    }
    // An ordinary expression is still probed: w = -1 violates c2.
    let c = find(probes, ProbeKind::CheckViolations, 5);
    assert_eq!((c.count, c.skipped.as_deref()), (1, None), "{c:#?}");
}

fn find(probes: &[ProbeResult], kind: ProbeKind, stmt: usize) -> &ProbeResult {
    probes
        .iter()
        .find(|p| p.kind == kind && p.statement_index == Some(stmt))
        .unwrap_or_else(|| panic!("no {kind:?} probe for statement {stmt}: {probes:#?}"))
}

/// The cast-to-enum probe writes the migration's labels into `col::text NOT IN (...)` and the
/// shard enum's name into `enum_range(NULL::…)`: hostile labels and names (quotes, `$$`,
/// `$tag$`, backslashes, semicolons, newlines, `E'…'`, unicode, keywords) stay literals and
/// names — the probe runs, reads only, and counts exactly the values that are no label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_enum_labels_and_names_stay_literals_in_the_cast_probe() {
    let pg = start().await;
    create_db(&pg, "app").await;
    let labels = [
        "a'); DROP TABLE t; --",
        "$$ b $$",
        "$t$c$t$",
        "e\nf;",
        "E'g'",
        "ünï",
        "select",
    ];
    let lit = |l: &str| simulator::quote_literal(l);
    let values: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("({i}, {})", lit(l)))
        .collect();
    exec(
        &pg,
        "app",
        &format!(
            r#"CREATE SCHEMA tenant_a;
            CREATE TYPE tenant_a."Mo""od $x$" AS ENUM ({first});
            CREATE TABLE tenant_a.t (id int PRIMARY KEY, v text, w text);
            INSERT INTO tenant_a.t (id, v) VALUES {values};
            UPDATE tenant_a.t SET w = v;
            INSERT INTO tenant_a.t VALUES (100, 'not a label', 'not a label');
            CREATE TYPE tenant_a.bs AS ENUM ('a');
            CREATE TABLE tenant_a.b (id int PRIMARY KEY, x text);
            INSERT INTO tenant_a.b VALUES (1, 'a'), (2, E'd\\');"#,
            first = lit(labels[0]),
            values = values.join(", ")
        ),
    )
    .await;
    let list: Vec<String> = labels.iter().map(|l| lit(l)).collect();
    let adds: Vec<String> = labels[1..]
        .iter()
        .map(|l| format!(r#"ALTER TYPE "Mo""od $x$" ADD VALUE {};"#, lit(l)))
        .collect();
    let m = migration(&format!(
        "CREATE TYPE \"new; enum\" AS ENUM ({});
         ALTER TABLE t ALTER COLUMN v TYPE \"new; enum\" USING v::\"new; enum\";
         {}
         ALTER TABLE t ALTER COLUMN w TYPE \"Mo\"\"od $x$\" USING w::\"Mo\"\"od $x$\";
         ALTER TYPE bs ADD VALUE E'd\\\\';
         ALTER TABLE b ALTER COLUMN x TYPE bs USING x::bs;",
        list.join(", "),
        adds.join("\n")
    ));
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    });
    let res = sim
        .run(
            &m,
            &fleet(&[&pg], &[(0, "app", "tenant_a")]),
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
    let probes = &res.shards[0].probes;
    let last = m.statements.len() - 1;
    for stmt in [1, last - 2] {
        let p = find(probes, ProbeKind::CastFailures, stmt);
        assert!(p.error.is_none() && p.skipped.is_none(), "{p:#?}");
        assert_eq!(
            (p.count, p.samples.clone()),
            (1, vec!["not a label".to_string()]),
            "{p:#?}"
        );
    }
    // A label the parser does not type (`E'…'`) is not known to the model: the probe does not
    // claim that `d\` will not convert (it will); the rehearsal decides.
    let p = find(probes, ProbeKind::CastFailures, last);
    assert!(p.count == 0 && p.skipped.is_some(), "{p:#?}");
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_a.t")
        .fetch_one(&mut c)
        .await
        .expect("the table is still there");
    assert_eq!(n, labels.len() as i64 + 1);
}

/// A column added nullable and set `NOT NULL` later: with no statement setting it in between,
/// every existing row of the shard is NULL and the `SET NOT NULL` fails (23502) — on the
/// shard, although a rehearsal on empty tables succeeds; an empty table passes; a backfill in
/// between, or code the model cannot follow, leaves it to the rehearsal (skipped, never a false
/// red).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_added_then_set_not_null_without_a_backfill_fails_on_a_shard_with_rows() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_a;
         CREATE TABLE tenant_a.orders (id int PRIMARY KEY);
         INSERT INTO tenant_a.orders SELECT g FROM generate_series(1, 7) g;
         CREATE TABLE tenant_a.empty_t (id int PRIMARY KEY);
         CREATE TABLE tenant_a.filled (id int PRIMARY KEY);
         INSERT INTO tenant_a.filled VALUES (1), (2);",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let m = migration(
        "ALTER TABLE orders ADD COLUMN region text;
ALTER TABLE orders ALTER COLUMN region SET NOT NULL;
ALTER TABLE empty_t ADD COLUMN region text;
ALTER TABLE empty_t ALTER COLUMN region SET NOT NULL;
ALTER TABLE filled ADD COLUMN region text;
UPDATE filled SET region = 'eu';
ALTER TABLE filled ALTER COLUMN region SET NOT NULL;
ALTER TABLE orders ADD COLUMN zone text;
SELECT pg_catalog.now();
ALTER TABLE orders ALTER COLUMN zone SET NOT NULL;
",
    );
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        ..Default::default()
    });
    let res = sim
        .run(&m, &fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    let p = &res.shards[0].probes;
    let orders = find(p, ProbeKind::NotNullViolations, 1);
    assert_eq!(
        (orders.count, orders.would_fail, orders.skipped.is_none()),
        (7, true, true),
        "{orders:#?}"
    );
    assert!(orders.error.is_none(), "{orders:#?}");
    let empty = find(p, ProbeKind::NotNullViolations, 3);
    assert_eq!(
        (empty.count, empty.skipped.is_none()),
        (0, true),
        "{empty:#?}"
    );
    let filled = find(p, ProbeKind::NotNullViolations, 6);
    assert!(
        filled
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("backfilled")),
        "{filled:#?}"
    );
    // Code the model cannot follow ran in between (it could backfill): the rehearsal decides.
    let coded = find(p, ProbeKind::NotNullViolations, 9);
    assert!(
        coded
            .skipped
            .as_deref()
            .is_some_and(|s| s.contains("rehearsal decides")),
        "{coded:#?}"
    );
    assert_eq!(failing(p).len(), 1, "{p:#?}");
}
