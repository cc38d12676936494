//! Sample rows valid by construction (`rollback::seed_rows`), on a real PostgreSQL: every
//! table gets its rows whatever its constraints, the migration of issue 14 runs forward on
//! them, hints come before synthetic values, and what cannot be seeded is reported column by
//! column, never all-or-nothing.

use migration_parser::{Migration, ParseOptions, TransactionMode, parse};
use rollback::{
    Options, ProveOptions, RollbackSource, SeedReport, Setup, Shadow, ValueHints,
    execute_migration, mismatches, prove, seed_rows,
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use topology::catalog::introspect_schema_conn;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

const SCHEMA: &str = "tenant_7";

fn migration(sql: &str) -> Migration {
    parse(
        "m.sql",
        sql,
        &ParseOptions {
            transaction_mode: TransactionMode::Autocommit,
            ..Default::default()
        },
    )
    .expect("test SQL parses")
}

struct Seeded {
    _pg: EphemeralPg,
    conn: PgConnection,
    report: SeedReport,
    m: Migration,
}

/// A cluster with `setup` loaded in schema `tenant_7`, seeded with `n` rows per table for
/// migration `sql`; the catalog must be exactly as before the seeding.
async fn seeded(setup: &str, sql: &str, n: usize, hints: &ValueHints) -> Seeded {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("ephemeral PostgreSQL starts");
    let mut conn = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    let load = format!("CREATE SCHEMA {SCHEMA}; SET search_path = {SCHEMA};\n{setup}");
    sqlx::raw_sql(AssertSqlSafe(load))
        .execute(&mut conn)
        .await
        .expect("setup loads");
    let c0 = introspect_schema_conn(&mut conn, SCHEMA)
        .await
        .expect("introspect");
    let m = migration(sql);
    let report = seed_rows(&mut conn, &c0, n, hints, &m).await;
    let c1 = introspect_schema_conn(&mut conn, SCHEMA)
        .await
        .expect("introspect");
    let diff = mismatches(&c0, &c1);
    assert!(
        diff.is_empty(),
        "seeding must leave the catalog as it was: {diff:#?}"
    );
    Seeded {
        _pg: pg,
        conn,
        report,
        m,
    }
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {SCHEMA}.{table}"
    )))
    .fetch_one(conn)
    .await
    .expect("count")
}

async fn texts(conn: &mut PgConnection, sql: &str) -> Vec<Option<String>> {
    sqlx::query_scalar(AssertSqlSafe(sql.to_string()))
        .fetch_all(conn)
        .await
        .expect("query")
}

fn assert_all_seeded(s: &Seeded, tables: &[&str], n: usize) {
    for t in tables {
        assert_eq!(
            s.report.rows.get(*t),
            Some(&n),
            "table {t} gets {n} rows: {:#?}",
            s.report
        );
    }
    assert!(s.report.partial().is_none(), "{:#?}", s.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_constraints_and_composite_unique_keys_are_respected() {
    let setup = "
        CREATE TABLE items (
            id int PRIMARY KEY,
            price numeric NOT NULL CHECK (price > 0 AND price < 100),
            qty int NOT NULL CHECK (qty BETWEEN 5 AND 7),
            sku text NOT NULL,
            region text NOT NULL,
            code text NOT NULL CHECK (char_length(code) = 3),
            status text NOT NULL CHECK (status IN ('open', 'closed', 'void')),
            UNIQUE (sku, region),
            UNIQUE (qty)
        );
        CREATE TABLE spans (
            id int PRIMARY KEY,
            starts_on date NOT NULL,
            ends_on date NOT NULL,
            hi int NOT NULL,
            lo int NOT NULL,
            CHECK (starts_on < ends_on),
            CHECK (hi > lo)
        );";
    let mut s = seeded(setup, "SELECT 1;", 3, &ValueHints::new()).await;
    assert_all_seeded(&s, &["items", "spans"], 3);
    assert_eq!(count(&mut s.conn, "items").await, 3);
    let qty = texts(
        &mut s.conn,
        "SELECT qty::text FROM tenant_7.items ORDER BY qty",
    )
    .await;
    assert_eq!(qty, ["5", "6", "7"].map(|v| Some(v.to_string())).to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enums_domains_arrays_identity_defaults_and_generated_columns() {
    let setup = "
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN big_int AS integer NOT NULL CHECK (VALUE > 1000);
        CREATE DOMAIN color AS text CHECK (VALUE IN ('red', 'green', 'blue'));
        CREATE TABLE readings (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            m mood NOT NULL UNIQUE,
            level big_int,
            c color NOT NULL,
            tags text[] NOT NULL CHECK (cardinality(tags) > 0),
            moods mood[] NOT NULL,
            doubled int GENERATED ALWAYS AS (level * 2) STORED,
            created timestamptz NOT NULL DEFAULT now(),
            seen date NOT NULL,
            ref uuid NOT NULL UNIQUE,
            doc jsonb NOT NULL
        );";
    let mut s = seeded(setup, "SELECT 1;", 3, &ValueHints::new()).await;
    assert_all_seeded(&s, &["readings"], 3);
    let moods = texts(
        &mut s.conn,
        "SELECT m::text FROM tenant_7.readings ORDER BY readings.m",
    )
    .await;
    assert_eq!(
        moods,
        ["sad", "ok", "happy"].map(|v| Some(v.to_string())).to_vec()
    );
    let generated = texts(
        &mut s.conn,
        "SELECT (doubled = level * 2 AND level > 1000)::text FROM tenant_7.readings",
    )
    .await;
    assert!(generated.iter().all(|v| v.as_deref() == Some("true")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_chains_composite_keys_self_references_and_cycles() {
    let setup = "
        CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL UNIQUE);
        CREATE TABLE child (
            id int NOT NULL,
            pid int NOT NULL REFERENCES parent (id),
            PRIMARY KEY (id, pid)
        );
        CREATE TABLE grandchild (
            id int PRIMARY KEY,
            cid int NOT NULL,
            cpid int NOT NULL,
            FOREIGN KEY (cid, cpid) REFERENCES child (id, pid)
        );
        CREATE TABLE node (id int PRIMARY KEY, up int REFERENCES node (id));
        CREATE TABLE chain (id int PRIMARY KEY, prev int NOT NULL REFERENCES chain (id));
        CREATE TABLE a (id int PRIMARY KEY, b_id int);
        CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a (id));
        ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b (id);";
    let tables = ["parent", "child", "grandchild", "node", "chain", "a", "b"];
    let mut s = seeded(setup, "SELECT 1;", 3, &ValueHints::new()).await;
    assert_all_seeded(&s, &tables, 3);
    for t in tables {
        assert_eq!(count(&mut s.conn, t).await, 3, "{t}");
    }
    let distinct_parents = texts(
        &mut s.conn,
        "SELECT count(DISTINCT (cid, cpid))::text FROM tenant_7.grandchild",
    )
    .await;
    assert_eq!(distinct_parents, [Some("3".to_string())]);
    let cycle_closed = texts(
        &mut s.conn,
        "SELECT count(DISTINCT b_id)::text FROM tenant_7.a",
    )
    .await;
    assert_eq!(
        cycle_closed,
        [Some("3".to_string())],
        "the cycle's nullable key takes the parents' keys once they exist"
    );
}

const ISSUE_14_SETUP: &str = "
    CREATE TABLE accounts (id bigint PRIMARY KEY, email text, plan text NOT NULL);
    CREATE TABLE orders (
        id bigint PRIMARY KEY,
        account_id bigint,
        amount text NOT NULL,
        status text
    );";

const ISSUE_14_MIGRATION: &str = "
    ALTER TABLE orders ADD CONSTRAINT orders_account_fk
        FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;
    ALTER TABLE orders VALIDATE CONSTRAINT orders_account_fk;
    ALTER TABLE orders ALTER COLUMN status SET NOT NULL;
    CREATE UNIQUE INDEX accounts_email_key ON accounts (email);
    ALTER TABLE orders ALTER COLUMN amount TYPE integer USING amount::integer;
    ALTER TABLE orders ADD CONSTRAINT orders_status_check
        CHECK (status IN ('new', 'paid')) NOT VALID;
    ALTER TABLE orders VALIDATE CONSTRAINT orders_status_check;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_14_migration_runs_forward_on_the_seeded_rows() {
    let mut s = seeded(ISSUE_14_SETUP, ISSUE_14_MIGRATION, 3, &ValueHints::new()).await;
    assert_all_seeded(&s, &["accounts", "orders"], 3);
    let nulls = texts(
        &mut s.conn,
        "SELECT count(*)::text FROM tenant_7.orders o \
         WHERE o.status IS NULL OR NOT EXISTS \
         (SELECT 1 FROM tenant_7.accounts a WHERE a.id = o.account_id)",
    )
    .await;
    assert_eq!(nulls, [Some("0".to_string())], "{:#?}", s.report);
    sqlx::raw_sql("SET search_path = tenant_7")
        .execute(&mut s.conn)
        .await
        .expect("search_path");
    let forward = execute_migration(&mut s.conn, &s.m).await;
    assert!(forward.is_ok(), "forward runs: {forward:?}");
    assert_eq!(count(&mut s.conn, "orders").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_keys_and_checks_of_a_migration_through_renames_accept_the_rows() {
    let setup = "
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE owners (id int PRIMARY KEY);
        CREATE TABLE t (
            id int PRIMARY KEY,
            m text NOT NULL,
            u text,
            a text,
            b text,
            label text,
            owner_id int
        );";
    let sql = "
        ALTER TABLE t RENAME TO things;
        ALTER TABLE things RENAME COLUMN owner_id TO owner;
        ALTER TABLE things ALTER COLUMN m TYPE mood USING m::mood;
        ALTER TABLE things ALTER COLUMN u TYPE uuid USING u::uuid;
        CREATE UNIQUE INDEX things_a_b ON things (a, b);
        ALTER TABLE things ALTER COLUMN a SET NOT NULL, ALTER COLUMN b SET NOT NULL;
        ALTER TABLE things ADD CONSTRAINT things_label_len CHECK (char_length(label) > 4);
        ALTER TABLE things ADD CONSTRAINT things_owner_fk
            FOREIGN KEY (owner) REFERENCES owners (id) NOT VALID;
        ALTER TABLE things VALIDATE CONSTRAINT things_owner_fk;
        ALTER TABLE things ALTER COLUMN owner SET NOT NULL;";
    let mut s = seeded(setup, sql, 3, &ValueHints::new()).await;
    assert_all_seeded(&s, &["owners", "t"], 3);
    sqlx::raw_sql("SET search_path = tenant_7")
        .execute(&mut s.conn)
        .await
        .expect("search_path");
    let forward = execute_migration(&mut s.conn, &s.m).await;
    assert!(
        forward.is_ok(),
        "forward runs: {forward:?}\n{:#?}",
        s.report
    );
    assert_eq!(count(&mut s.conn, "things").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_of_the_issue_14_migration_seeds_data_and_runs_forward() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let setup = format!("CREATE SCHEMA {SCHEMA}; SET search_path = {SCHEMA};\n{ISSUE_14_SETUP}");
    let m = migration(ISSUE_14_MIGRATION);
    let options = ProveOptions {
        schema: SCHEMA.into(),
        ..Default::default()
    };
    let proof = prove(
        &shadow,
        Setup::Sql(&setup),
        &m,
        RollbackSource::Generate(Options::default()),
        &options,
    )
    .await
    .expect("prover runs");
    assert!(proof.forward_error.is_none(), "{proof:#?}");
    assert!(
        matches!(proof.data, rollback::DataPhase::Ran { rows: 6, .. }),
        "{proof:#?}"
    );
    assert!(
        matches!(
            proof.outcome(),
            rollback::ProofOutcome::Proven { data: true, .. }
        ),
        "{proof:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_come_before_synthetic_values_and_never_reach_the_report() {
    let mut hints = ValueHints::new();
    hints.insert(
        ("accounts".into(), "email".into()),
        vec!["ann@example.test".into(), "bob@example.test".into()],
    );
    // "n/a" does not cast to integer, which the migration needs: it is passed over.
    hints.insert(
        ("orders".into(), "amount".into()),
        vec!["n/a".into(), "90417".into(), "90418".into(), "90419".into()],
    );
    let mut s = seeded(ISSUE_14_SETUP, ISSUE_14_MIGRATION, 3, &hints).await;
    assert_all_seeded(&s, &["accounts", "orders"], 3);
    let amounts = texts(
        &mut s.conn,
        "SELECT amount FROM tenant_7.orders ORDER BY amount",
    )
    .await;
    assert_eq!(
        amounts,
        ["90417", "90418", "90419"]
            .map(|v| Some(v.to_string()))
            .to_vec()
    );
    let emails = texts(
        &mut s.conn,
        "SELECT email FROM tenant_7.accounts ORDER BY email",
    )
    .await;
    for hint in ["ann@example.test", "bob@example.test"] {
        assert!(emails.contains(&Some(hint.to_string())), "{emails:?}");
    }
    assert_eq!(emails.len(), 3, "the third row takes a synthetic value");
    assert!(
        s.report
            .hinted
            .contains(&("orders".to_string(), "amount".to_string()))
    );
    let shown = format!(
        "{:?} {}",
        s.report,
        serde_json::to_string(&s.report).expect("json")
    );
    for secret in ["90417", "ann@example", "n/a"] {
        assert!(!shown.contains(secret), "hint value in the report: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_seeded_falls_back_column_by_column() {
    let setup = "
        CREATE TABLE fine (id int PRIMARY KEY, label text NOT NULL);
        CREATE TABLE impossible (
            id int PRIMARY KEY,
            v int NOT NULL CONSTRAINT impossible_v_range CHECK (v > 10 AND v < 5)
        );
        CREATE TABLE picky (
            id int PRIMARY KEY,
            note text CONSTRAINT picky_note_shape CHECK (note ~ '^Z{5}$'),
            point point NOT NULL DEFAULT point(0, 0)
        );
        CREATE TABLE orphan (
            id int PRIMARY KEY,
            imp_id int NOT NULL REFERENCES impossible (id)
        );";
    let mut s = seeded(setup, "SELECT 1;", 2, &ValueHints::new()).await;
    assert_eq!(s.report.rows.get("fine"), Some(&2));
    assert_eq!(s.report.rows.get("picky"), Some(&2));
    assert_eq!(count(&mut s.conn, "fine").await, 2);
    let notes = texts(&mut s.conn, "SELECT note FROM tenant_7.picky").await;
    assert_eq!(
        notes,
        [None, None],
        "the unsatisfiable nullable column is NULL"
    );
    insta::assert_snapshot!(
        "seed_fallbacks",
        format!(
            "partial: {}\nfallbacks:\n{}",
            s.report.partial().unwrap_or_default(),
            s.report
                .fallbacks
                .iter()
                .map(|f| format!("  {}.{}: {}", f.table, f.column, f.reason))
                .collect::<Vec<_>>()
                .join("\n")
        )
    );
}

fn pagila_in_tenant_schema() -> String {
    // Beside the checkout, or two levels up from a git worktree (`/work/wt/<name>`).
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = here.join("../../../shared/corpus/pagila/pagila-schema.sql");
    let p = if near.is_file() {
        near
    } else {
        here.join("../../../../shared/corpus/pagila/pagila-schema.sql")
    };
    std::fs::read_to_string(p)
        .expect("pagila schema is readable")
        .replace("public.", &format!("{SCHEMA}."))
        .replace("SCHEMA public", &format!("SCHEMA {SCHEMA}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_of_pagila_gets_its_rows() {
    let s = seeded(
        &pagila_in_tenant_schema(),
        "SELECT 1;",
        3,
        &ValueHints::new(),
    )
    .await;
    // 15 tables (the partitioned `payment` seeded through its parent, into the partitions its
    // bounds name), with a domain, an enum, arrays, tsvector, triggers and FK chains.
    assert_eq!(s.report.rows.len(), 15, "{:#?}", s.report);
    assert!(s.report.rows.values().all(|n| *n == 3), "{:#?}", s.report);
    assert!(s.report.partial().is_none(), "{:#?}", s.report);
    assert!(s.report.fallbacks.is_empty(), "{:#?}", s.report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_expression_cannot_end_the_seeding_transaction() {
    // The CHECK's text as the parser keeps it is spliced into a temporary constraint: a
    // statement smuggled after it must not run (the catalog check in `seeded` fails if the
    // temporary constraint or a smuggled table is left behind).
    let setup = "CREATE TABLE t (id int PRIMARY KEY, v int);";
    let sql = "ALTER TABLE t ADD CONSTRAINT t_v CHECK (v > 0);";
    let mut m = migration(sql);
    for s in &mut m.statements {
        for op in &mut s.operations {
            if let migration_parser::Operation::AddConstraint { constraint, .. } = op
                && let migration_parser::ConstraintKind::Check { expr } = &mut constraint.kind
            {
                *expr = "v > 0) NOT VALID; COMMIT; CREATE TABLE smuggled (x int); --".into();
            }
        }
    }
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("ephemeral PostgreSQL starts");
    let mut conn = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    let load = format!("CREATE SCHEMA {SCHEMA}; SET search_path = {SCHEMA};\n{setup}");
    sqlx::raw_sql(AssertSqlSafe(load))
        .execute(&mut conn)
        .await
        .expect("setup loads");
    let c0 = introspect_schema_conn(&mut conn, SCHEMA)
        .await
        .expect("introspect");
    let report = seed_rows(&mut conn, &c0, 2, &ValueHints::new(), &m).await;
    assert_eq!(report.rows.get("t"), Some(&2), "{report:#?}");
    let c1 = introspect_schema_conn(&mut conn, SCHEMA)
        .await
        .expect("introspect");
    assert!(
        mismatches(&c0, &c1).is_empty(),
        "{:#?}",
        mismatches(&c0, &c1)
    );
    let smuggled: Option<String> = sqlx::query_scalar("SELECT to_regclass('smuggled')::text")
        .fetch_one(&mut conn)
        .await
        .expect("query");
    assert_eq!(smuggled, None);
}

/// A tenant table referencing a table of a shared schema (empty on the shadow: the dump holds
/// no rows) still gets its rows: the shared parent is seeded first, under its qualified name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_in_a_shared_schema_are_seeded_first() {
    let setup = "
        CREATE SCHEMA shared;
        CREATE TABLE shared.regions (code text PRIMARY KEY CHECK (length(code) = 2));
        CREATE TABLE shared.plans (id int PRIMARY KEY, region text NOT NULL REFERENCES shared.regions,
                                   price numeric NOT NULL CHECK (price > 0));
        CREATE TABLE shared.unrelated (id int PRIMARY KEY);
        CREATE TABLE accounts (id bigint PRIMARY KEY, plan_id int NOT NULL REFERENCES shared.plans);
    ";
    let mut s = seeded(
        setup,
        "ALTER TABLE accounts ADD COLUMN note text;",
        3,
        &ValueHints::new(),
    )
    .await;
    assert_eq!(count(&mut s.conn, "accounts").await, 3, "{:?}", s.report);
    assert!(s.report.rows.contains_key("shared.plans"), "{:?}", s.report);
    assert!(
        s.report.rows.contains_key("shared.regions"),
        "its own parent too: {:?}",
        s.report
    );
    assert!(
        !s.report.rows.contains_key("shared.unrelated"),
        "only what is referenced: {:?}",
        s.report
    );
    assert_eq!(s.report.partial(), None, "{:?}", s.report);
}
