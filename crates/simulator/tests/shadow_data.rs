//! `--shadow-data sample`: real rows on the shadow (real PostgreSQL).

mod common;

use common::*;
use simulator::{
    CancelToken, SampleLimits, ShadowData, ShadowSample, SimOptions, SimulationResult, Simulator,
    StatementOutcome,
};
use sqlx::Connection;
use topology::ephemeral::EphemeralPg;

/// A value that must never leave the shard except into the shadow.
const SECRET: &str = "secret-mail-7f3a9c@example.invalid";

/// A shared lookup schema, and a tenant whose customers reference it and themselves, and whose
/// orders reference the customers. Customer 99 references customer 60 (self-reference to an
/// earlier row); orders 1..5 reference customers 100..96; customer `i` lives in country
/// `c{i % 50 + 1}`.
const SETUP: &str = "
CREATE SCHEMA shared;
CREATE TABLE shared.country (code text PRIMARY KEY, name text NOT NULL);
INSERT INTO shared.country SELECT 'c' || g, 'Country ' || g FROM generate_series(1, 50) g;
CREATE SCHEMA t1;
CREATE TABLE t1.customer (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  country text NOT NULL REFERENCES shared.country,
  email text NOT NULL,
  referrer int REFERENCES t1.customer,
  email_lower text GENERATED ALWAYS AS (lower(email)) STORED);
INSERT INTO t1.customer (country, email)
  SELECT 'c' || (g % 50 + 1), 'user' || g || '@example.invalid' FROM generate_series(1, 100) g;
UPDATE t1.customer SET email = 'secret-mail-7f3a9c@example.invalid' WHERE id = 3;
UPDATE t1.customer SET referrer = 60 WHERE id = 99;
CREATE TABLE t1.orders (id bigserial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES t1.customer, placed timestamptz NOT NULL DEFAULT now(),
  amount numeric(10,2), tags text[]);
INSERT INTO t1.orders (customer_id, amount, tags)
  SELECT 101 - g, g * 1.5, ARRAY['a''b', NULL, 'x\\y'] FROM generate_series(1, 100) g;
";

/// An `INSERT` that references an existing customer (42), and two inserts that take the next
/// key of a serial and of an identity column.
const MIGRATION: &str = "
INSERT INTO t1.orders (customer_id, amount) VALUES (42, 10);
INSERT INTO t1.customer (country, email) VALUES ('c1', 'new@example.invalid');
";

async fn shard() -> EphemeralPg {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    pg
}

async fn run(pg: &EphemeralPg, sql: &str, options: SimOptions) -> SimulationResult {
    let fleet = fleet(&[pg], &[(0, "app", "t1")]);
    Simulator::new(SimOptions {
        calibrate: false,
        ..options
    })
    .run(
        &migration(sql),
        &fleet,
        None,
        &simulator::NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("run")
}

fn sample_mode(rows_per_table: u32) -> ShadowData {
    ShadowData::Sample(SampleLimits {
        rows_per_table,
        ..SampleLimits::default()
    })
}

fn shadow_data_step(res: &SimulationResult) -> String {
    res.steps
        .iter()
        .find(|s| s.action == "shadow data")
        .map(|s| s.details.clone())
        .unwrap_or_else(|| panic!("no shadow data step: {:#?}", res.steps))
}

/// Today's behaviour, kept as the regression: on the empty shadow the `INSERT` that references
/// customer 42 fails with a foreign-key violation (a false `statement-fails` RED), and the
/// identity column's next key is 1, but the rows exist on the shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_an_insert_referencing_a_parent_fails_on_the_empty_shadow() {
    let pg = shard().await;
    let res = run(&pg, MIGRATION, SimOptions::default()).await;
    let r = res.rehearsals.values().next().expect("a rehearsal");
    assert_eq!(r.setup_error, None, "{r:#?}");
    match &r.statements[0].outcome {
        StatementOutcome::Failed { sqlstate, .. } => {
            assert_eq!(sqlstate.as_deref(), Some("23503"), "{r:#?}")
        }
        other => panic!("expected a foreign-key violation, got {other:?}"),
    }
    assert!(
        shadow_data_step(&res).starts_with("synthetic rows"),
        "{}",
        shadow_data_step(&res)
    );
}

/// With `--shadow-data sample` the same migration succeeds on the shadow (customer 42 was
/// copied; the serial and the identity were advanced past the copied keys); the target is
/// unchanged, the report says which rows the shadow had, no row value is in the serialized
/// result, and the `--shadow` database is gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_sample_the_insert_succeeds_and_nothing_leaks_or_stays() {
    let pg = shard().await;
    let shadow = start().await;
    let before = (
        checksum(&pg, "app", "t1").await,
        checksum(&pg, "app", "shared").await,
    );
    // A third statement fails on a real value: its message must not carry it.
    let sql = format!("{MIGRATION}UPDATE t1.customer SET referrer = email::int WHERE id = 3;\n");
    let res = run(
        &pg,
        &sql,
        SimOptions {
            shadow: Some(shadow.connection_spec()),
            shadow_data: ShadowData::Sample(SampleLimits::default()),
            ..SimOptions::default()
        },
    )
    .await;
    let r = res.rehearsals.values().next().expect("a rehearsal");
    assert_eq!(r.setup_error, None, "{r:#?}");
    assert!(r.clone_errors.is_empty(), "{:?}", r.clone_errors);
    assert_eq!(
        r.statements[0].outcome,
        StatementOutcome::Succeeded,
        "{r:#?}"
    );
    assert_eq!(
        r.statements[1].outcome,
        StatementOutcome::Succeeded,
        "{r:#?}"
    );
    match &r.statements[2].outcome {
        StatementOutcome::Failed { sqlstate, message } => {
            assert_eq!(sqlstate.as_deref(), Some("22P02"));
            assert!(message.starts_with("message withheld"), "{message}");
        }
        other => panic!("expected 22P02, got {other:?}"),
    }
    assert_eq!(
        shadow_data_step(&res),
        "real sample, 250 rows from 3 tables of shard pg-1/app/t1"
    );
    let json = serde_json::to_string(&res).expect("json");
    assert!(!json.contains(SECRET), "a row value reached the result");
    assert!(!json.contains("user42@"), "a row value reached the result");
    assert!(
        !json.contains("Country 1"),
        "a row value reached the result"
    );
    assert_eq!(
        (
            checksum(&pg, "app", "t1").await,
            checksum(&pg, "app", "shared").await
        ),
        before,
        "the target changed"
    );
    assert!(
        shadow_dbs(&shadow).await.is_empty(),
        "{:?}",
        shadow_dbs(&shadow).await
    );
    assert!(leftover_sessions(&pg).await.is_empty());
    assert!(leftover_sessions(&shadow).await.is_empty());
}

/// Count rows of `table` in `db`.
async fn count(pg: &EphemeralPg, db: &str, table: &str) -> i64 {
    let mut c = conn(pg, db).await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut c)
        .await
        .expect("count");
    c.close().await.ok();
    n
}

/// The bound holds per table, every parent a sampled row references is there even past its
/// table's bound (across schemas, and a self-reference to an earlier row), and the script loads
/// into a copy of the structure with every foreign key checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_is_bounded_and_closed_under_foreign_keys() {
    let pg = shard().await;
    let mut c = conn(&pg, "app").await;
    let limits = SampleLimits {
        rows_per_table: 5,
        ..SampleLimits::default()
    };
    let sample = ShadowSample::read(
        &mut c,
        &["shared".to_string(), "t1".to_string()],
        limits,
        std::time::Duration::from_secs(30),
    )
    .await
    .expect("sample");
    c.close().await.ok();
    // orders: 5 (the bound); customers: 1..5, the orders' 96..100, and 60 (99's referrer);
    // countries: the first 5 codes and those of these customers.
    assert_eq!(sample.tables, 3);
    assert!(!format!("{sample:?}").contains("example.invalid"));
    // Load it into an empty copy of the structure: every foreign key is checked on insert.
    create_db(&pg, "copy").await;
    let structure: String = SETUP
        .lines()
        .filter(|l| {
            !l.starts_with("INSERT") && !l.starts_with("UPDATE") && !l.starts_with("  SELECT")
        })
        .collect::<Vec<_>>()
        .join("\n");
    exec(&pg, "copy", &structure).await;
    exec(&pg, "copy", &sample.sql).await;
    assert_eq!(count(&pg, "copy", "t1.orders").await, 5);
    assert_eq!(count(&pg, "copy", "t1.customer").await, 11);
    let mut c = conn(&pg, "copy").await;
    let ids: Vec<i32> = sqlx::query_scalar("SELECT id FROM t1.customer ORDER BY id")
        .fetch_all(&mut c)
        .await
        .expect("ids");
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 60, 96, 97, 98, 99, 100]);
    let countries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM shared.country WHERE code NOT IN (SELECT country FROM t1.customer)",
    )
    .fetch_one(&mut c)
    .await
    .expect("countries");
    assert!(
        countries <= 5,
        "beyond the base bound only referenced countries"
    );
    // Values survive the trip: arrays with quotes, backslashes and NULLs, numerics.
    let same: bool = sqlx::query_scalar(
        "SELECT tags = ARRAY['a''b', NULL, 'x\\y'] AND amount = 1.5 FROM t1.orders WHERE id = 1",
    )
    .fetch_one(&mut c)
    .await
    .expect("values");
    assert!(same);
    // The serial and the identity were advanced past the copied keys.
    exec(
        &pg,
        "copy",
        "INSERT INTO t1.customer (country, email) VALUES ('c1', 'n')",
    )
    .await;
    exec(
        &pg,
        "copy",
        "INSERT INTO t1.orders (customer_id) VALUES (1)",
    )
    .await;
    c.close().await.ok();
    assert_eq!(
        sample.rows,
        5 + 11 + count(&pg, "copy", "shared.country").await as u64
    );
    assert_eq!(sample.beyond_bound, 6 + (sample.rows - 5 - 11 - 5));
}

/// A bound of one row per table is respected (a customer outside it is not copied, so an order
/// for it still fails on the shadow), and the step says parents were added past the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_bound_copies_only_what_it_must() {
    let pg = shard().await;
    let res = run(
        &pg,
        "INSERT INTO t1.orders (customer_id) VALUES (2);",
        SimOptions {
            shadow_data: sample_mode(1),
            ..SimOptions::default()
        },
    )
    .await;
    let r = res.rehearsals.values().next().expect("a rehearsal");
    // One row per table: customer 1, order 1 and its customer 100 (past the bound), and
    // customer 60 that 99 — not sampled — would reference. Customer 2 is not in the sample: an
    // order for it still fails; the bound is what the operator chose.
    assert!(
        matches!(&r.statements[0].outcome, StatementOutcome::Failed { sqlstate, .. } if sqlstate.as_deref() == Some("23503")),
        "{r:#?}"
    );
    let step = shadow_data_step(&res);
    assert!(step.starts_with("real sample, "), "{step}");
    assert!(
        step.contains("parent rows past the per-table bound"),
        "{step}"
    );
}

/// The least-privilege role: a table it cannot `SELECT` is skipped with a note naming it, and
/// so is a table whose parent is skipped (its rows could not be inserted without their parents).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_the_role_cannot_read_are_skipped_with_a_note() {
    let pg = shard().await;
    exec(
        &pg,
        "app",
        "CREATE ROLE gate_reader NOLOGIN; GRANT USAGE ON SCHEMA shared, t1 TO gate_reader;
         GRANT SELECT ON shared.country, t1.orders TO gate_reader;",
    )
    .await;
    let mut c = conn(&pg, "app").await;
    sqlx::raw_sql("SET ROLE gate_reader")
        .execute(&mut c)
        .await
        .expect("set role");
    let sample = ShadowSample::read(
        &mut c,
        &["shared".to_string(), "t1".to_string()],
        SampleLimits::default(),
        std::time::Duration::from_secs(30),
    )
    .await
    .expect("sample");
    c.close().await.ok();
    assert_eq!(sample.tables, 1, "{sample:?}");
    assert_eq!(sample.rows, 50);
    assert_eq!(
        sample.notes,
        vec![
            "\"t1\".\"customer\": not sampled (no SELECT privilege)".to_string(),
            "\"t1\".\"orders\": not sampled (its parent \"t1\".\"customer\" is not sampled)"
                .to_string(),
        ]
    );
    assert!(
        sample
            .summary("s")
            .ends_with("(no SELECT privilege); \"t1\".\"orders\": not sampled (its parent \"t1\".\"customer\" is not sampled)"),
        "{}",
        sample.summary("s")
    );
}

/// A materialized view whose refresh fails on the sampled rows (its query casts the secret
/// e-mail to an integer only on a table of fewer than 100 rows: on the shard it holds NULL):
/// the copy is incomplete and says which view (from our own list, even with a tenant
/// `unnest(text[])` on the path), never the server's message, which quotes the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_refresh_failing_on_sampled_rows_does_not_quote_them() {
    let pg = shard().await;
    exec(
        &pg,
        "app",
        "CREATE MATERIALIZED VIEW t1.mv AS
           SELECT CASE WHEN (SELECT count(*) FROM t1.customer) < 100
                       THEN (SELECT email FROM t1.customer WHERE id = 3)::int END AS x;
         -- A tenant `unnest(text[])` would win over pg_catalog's on the tenant's path: the
         -- query that names unpopulated views must not call it.
         CREATE FUNCTION t1.unnest(a text[]) RETURNS SETOF text LANGUAGE sql
           AS $$ SELECT email FROM t1.customer WHERE id = 3 $$;",
    )
    .await;
    let res = run(
        &pg,
        "ALTER TABLE t1.orders ADD COLUMN note text;",
        SimOptions {
            shadow_data: sample_mode(10),
            ..SimOptions::default()
        },
    )
    .await;
    let r = res.rehearsals.values().next().expect("a rehearsal");
    assert_eq!(r.setup_error, None, "{r:#?}");
    assert_eq!(
        r.clone_errors,
        [
            r#"ERROR: materialized view "t1"."mv" could not be refreshed on the shadow (left unpopulated)"#
        ],
    );
    let json = serde_json::to_string(&res).expect("json");
    assert!(!json.contains(SECRET), "a row value reached the result");
}
