//! Proofs on a real shadow: tenant schemas, user-supplied rollback scripts, PostgreSQL's default
//! constraint and index names.

use migration_parser::{Migration, ParseOptions, TransactionMode, parse};
use rollback::{Options, ProveOptions, RollbackSource, Setup, Shadow, generate, prove};

fn parse_as(name: &str, sql: &str, mode: TransactionMode) -> Migration {
    parse(
        name,
        sql,
        &ParseOptions {
            transaction_mode: mode,
            ..Default::default()
        },
    )
    .expect("test SQL parses")
}

const TENANT_SETUP: &str = r#"
CREATE TABLE public.users (id int PRIMARY KEY, note text);
CREATE SCHEMA tenant_0042;
CREATE TABLE tenant_0042.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL,
    plan text DEFAULT 'free'
);
CREATE INDEX users_email_idx ON tenant_0042.users (email);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_schema_rollback_stays_unqualified_and_restores() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let c0 = shadow
        .catalog_of(Setup::Sql(TENANT_SETUP), "tenant_0042")
        .await
        .expect("setup loads");
    let m = parse_as(
        "tenant.sql",
        "ALTER TABLE users ADD COLUMN bio text;\n\
         ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'trial';\n\
         DROP INDEX users_email_idx;\n\
         ALTER TABLE users ADD CONSTRAINT users_email_check CHECK (email <> '');\n",
        TransactionMode::Autocommit,
    );
    let rb = generate(&m, &c0, &Options::default());
    assert!(
        !rb.script.contains("tenant_0042"),
        "the rollback must fan out per tenant:\n{}",
        rb.script
    );
    assert!(
        rb.script.contains("SET DEFAULT 'free'::text"),
        "old default from the tenant's catalog:\n{}",
        rb.script
    );
    let options = ProveOptions {
        schema: "tenant_0042".into(),
        ..Default::default()
    };
    let proof = prove(
        &shadow,
        Setup::Sql(TENANT_SETUP),
        &m,
        RollbackSource::Generated(&rb),
        &options,
    )
    .await
    .expect("prover runs");
    assert!(
        proof.tested && proof.restored,
        "tenant round trip: {proof:#?}"
    );
    assert!(
        proof.data_loss.is_empty(),
        "no data lost: {:?}",
        proof.data_loss
    );

    // A migration that names the schema gets a rollback that names it too.
    let q = parse_as(
        "q.sql",
        "ALTER TABLE tenant_0042.users ADD COLUMN bio text;",
        TransactionMode::WrapFile,
    );
    let rb = generate(&q, &c0, &Options::default());
    assert!(
        rb.script
            .contains("ALTER TABLE tenant_0042.users DROP COLUMN bio;"),
        "{}",
        rb.script
    );
}

const SETUP: &str = r#"
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL, name text);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_rollback_scripts_are_checked() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let forward = parse_as(
        "up.sql",
        "CREATE INDEX users_email_idx ON users (email);\nALTER TABLE users ADD COLUMN bio text;",
        TransactionMode::WrapFile,
    );
    // Forgets the index: the round trip leaves it behind.
    let incomplete = parse_as(
        "down.sql",
        "ALTER TABLE users DROP COLUMN bio;",
        TransactionMode::WrapFile,
    );
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &forward,
        RollbackSource::Script(&incomplete),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert!(p.tested && !p.restored);
    insta::assert_yaml_snapshot!("incomplete_down_mismatches", p.mismatches);

    // Fails: wrong column name -> SQLSTATE 42703, and the catalog still differs.
    let failing = parse_as(
        "down.sql",
        "DROP INDEX users_email_idx;\nALTER TABLE users DROP COLUMN biography;",
        TransactionMode::WrapFile,
    );
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &forward,
        RollbackSource::Script(&failing),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert!(!p.tested);
    let err = p.rollback_error.expect("the down fails");
    assert_eq!(err.sqlstate.as_deref(), Some("42703"));
    assert_eq!(err.statement, 1);
    assert!(
        !p.mismatches.is_empty(),
        "a failed WrapFile down rolls back: the migration's changes remain"
    );

    // A correct down passes.
    let good = parse_as(
        "down.sql",
        "ALTER TABLE users DROP COLUMN bio;\nDROP INDEX users_email_idx;",
        TransactionMode::WrapFile,
    );
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &forward,
        RollbackSource::Script(&good),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert!(p.tested && p.restored, "{p:#?}");

    // The forward failing is reported, not an Err, and no rollback runs.
    let bad_forward = parse_as(
        "up.sql",
        "ALTER TABLE nope ADD COLUMN x int;",
        TransactionMode::WrapFile,
    );
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &bad_forward,
        RollbackSource::Generate(Options::default()),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert_eq!(
        p.forward_error.and_then(|f| f.sqlstate).as_deref(),
        Some("42P01")
    );
    assert!(!p.tested);
}

const NAMES_SETUP: &str = r#"
CREATE TABLE parent (a int, b int, PRIMARY KEY (a, b));
CREATE TABLE child (
    id int,
    pa int,
    pb int,
    qty int,
    lo int,
    hi int,
    a_rather_long_column_name_that_goes_on_and_on_and_on int
);
CREATE TABLE child_qty_check (x int);
"#;

/// The rollback drops constraints and indexes the migration created without names; it can only
/// succeed if it predicts PostgreSQL's names (and the proof then finds the catalog restored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_names_match_postgres() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let m = parse_as(
        "names.sql",
        "ALTER TABLE child ADD PRIMARY KEY (id);\n\
         ALTER TABLE child ADD FOREIGN KEY (pa, pb) REFERENCES parent (a, b);\n\
         ALTER TABLE child ADD CHECK (qty > 0);\n\
         ALTER TABLE child ADD CHECK (qty > 1);\n\
         ALTER TABLE child ADD CHECK (lo < hi);\n\
         ALTER TABLE child ADD UNIQUE (lo, hi);\n\
         ALTER TABLE child ADD UNIQUE (a_rather_long_column_name_that_goes_on_and_on_and_on, lo);\n\
         CREATE INDEX ON child (lower(a_rather_long_column_name_that_goes_on_and_on_and_on::text));\n\
         CREATE INDEX ON child (qty);\n\
         CREATE INDEX ON child (qty);\n\
         ALTER TABLE child ADD COLUMN code text UNIQUE;\n",
        TransactionMode::Autocommit,
    );
    let c0 = shadow
        .catalog_of(Setup::Sql(NAMES_SETUP), "public")
        .await
        .expect("setup loads");
    let rb = generate(&m, &c0, &Options::default());
    insta::assert_snapshot!("default_names_script", rb.script);
    // Structure only: sample rows would trip the CHECK constraints.
    let options = ProveOptions {
        sample_rows: 0,
        ..Default::default()
    };
    let p = prove(
        &shadow,
        Setup::Sql(NAMES_SETUP),
        &m,
        RollbackSource::Generated(&rb),
        &options,
    )
    .await
    .expect("prover runs");
    assert!(p.tested && p.restored, "{p:#?}");
}

/// A rollback generated from a `topology` catalog (what the CLI has for a shard) also proves out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_from_a_topology_catalog() {
    use topology::ephemeral::{EphemeralOptions, EphemeralPg};
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("ephemeral PostgreSQL starts");
    let pool = pg.pool("postgres", 2).await.expect("pool");
    sqlx::raw_sql(TENANT_SETUP)
        .execute(&pool)
        .await
        .expect("setup loads");
    let cat = topology::catalog::introspect_schema(&pool, "tenant_0042")
        .await
        .expect("topology introspects");
    pool.close().await;
    assert!(cat.tables.contains_key("users"));
    let m = parse_as(
        "tenant.sql",
        "ALTER TABLE users ALTER COLUMN plan SET DEFAULT 'trial';\n\
         DROP INDEX users_email_idx;\n\
         ALTER TABLE users DROP CONSTRAINT users_pkey;\n\
         ALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n",
        TransactionMode::Autocommit,
    );
    // generate() takes the topology catalog directly; a fleet catalog and the shadow's catalog
    // of the same structure (one introspection) give the same rollback.
    let rb = generate(&m, &cat, &Options::default());
    assert!(!rb.script.contains("tenant_0042"), "{}", rb.script);
    // A scratch server given by URL (`--shadow URL`).
    let shadow = Shadow::from_url(&pg.url()).expect("URL parses");
    let on_shadow = shadow
        .catalog_of(Setup::Sql(TENANT_SETUP), "tenant_0042")
        .await
        .expect("shadow catalog");
    assert_eq!(rb, generate(&m, &on_shadow, &Options::default()));
    let options = ProveOptions {
        schema: "tenant_0042".into(),
        ..Default::default()
    };
    let p = prove(
        &shadow,
        Setup::Sql(TENANT_SETUP),
        &m,
        RollbackSource::Generated(&rb),
        &options,
    )
    .await
    .expect("prover runs");
    assert!(p.tested && p.restored, "{}\n{p:#?}", rb.script);
}
