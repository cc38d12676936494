//! The rest of the operation kinds: partitions, materialized views, row-level security,
//! persistence, policies, sequences, functions, domains, extensions, constraint validation,
//! `USING INDEX`, `CASCADE`, explicit transaction blocks — generated, snapshotted and proven —
//! plus the kinds that cannot run on a shadow (DROP DATABASE, DROP SCHEMA, unparsable SQL),
//! generated only.

use migration_parser::{ParseOptions, TransactionMode, parse};
use rollback::{Options, ProveOptions, RollbackSource, Setup, Shadow, generate, prove};

const SETUP: &str = r#"
CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');
CREATE TABLE events (id bigint NOT NULL, at date NOT NULL, payload jsonb) PARTITION BY RANGE (at);
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE docs (id int PRIMARY KEY, owner text, body text);
CREATE TABLE tags (id int NOT NULL, name text NOT NULL);
CREATE UNIQUE INDEX tags_id_uidx ON tags (id);
CREATE TABLE notes (id int PRIMARY KEY, doc_id int REFERENCES docs (id), body text);
ALTER TABLE notes ADD CONSTRAINT notes_body_check CHECK (body <> '') NOT VALID;
CREATE MATERIALIZED VIEW doc_counts AS SELECT owner, count(*) AS n FROM docs GROUP BY owner;
CREATE INDEX doc_counts_owner_idx ON doc_counts (owner);
CREATE SEQUENCE order_seq INCREMENT 5;
CREATE SEQUENCE ticket_no;
CREATE TABLE tickets (id bigint DEFAULT nextval('ticket_no'));
CREATE FUNCTION slugify(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower($1) $$;
COMMENT ON FUNCTION slugify(text) IS 'URL-safe name';
CREATE EXTENSION citext;
CREATE TABLE scratch (id int);
"#;

const MIGRATION: &str = r#"
ALTER TABLE notes VALIDATE CONSTRAINT notes_body_check;
ALTER TABLE tags ADD CONSTRAINT tags_pkey PRIMARY KEY USING INDEX tags_id_uidx;
ALTER TABLE docs DROP CONSTRAINT docs_pkey CASCADE;
ALTER TABLE events DETACH PARTITION events_2025;
CREATE TABLE events_2026 (id bigint NOT NULL, at date NOT NULL, payload jsonb);
ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE scratch SET UNLOGGED;
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY docs_owner ON docs USING (owner = current_user);
REFRESH MATERIALIZED VIEW doc_counts;
DROP MATERIALIZED VIEW doc_counts;
BEGIN;
LOCK TABLE docs IN SHARE MODE;
REINDEX TABLE docs;
COMMIT;
SELECT setval('order_seq', 100);
ALTER SEQUENCE order_seq INCREMENT 10;
DROP SEQUENCE order_seq;
ALTER SEQUENCE ticket_no RENAME TO ticket_number;
CREATE OR REPLACE FUNCTION slugify(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper($1) $$;
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
DROP DOMAIN email;
DROP EXTENSION citext;
GRANT SELECT ON docs TO PUBLIC;
DROP TABLE scratch;
ALTER TABLE tags RENAME TO labels;
ALTER TABLE labels ALTER COLUMN name TYPE varchar(50);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_operation_kinds_generate_and_prove() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let c0 = shadow
        .catalog_of(Setup::Sql(SETUP), "public")
        .await
        .expect("setup loads");
    let opts = ParseOptions {
        transaction_mode: TransactionMode::Autocommit,
        ..Default::default()
    };
    let m = parse("more.sql", MIGRATION, &opts).expect("parses");
    let rb = generate(&m, &c0, &Options::default());
    for s in &m.statements {
        let covered = rb.statements.iter().any(|r| r.source_statement == s.index)
            || rb.irreversible.iter().any(|i| i.statement == s.index)
            || rb.no_ops.iter().any(|n| n.statement == s.index);
        assert!(
            covered,
            "statement {} ({}) is not accounted for",
            s.index, s.sql
        );
    }
    insta::assert_snapshot!("more_script", rb.script);
    insta::assert_yaml_snapshot!("more_no_ops", rb.no_ops);
    let proof = prove(
        &shadow,
        Setup::Sql(SETUP),
        &m,
        RollbackSource::Generated(&rb),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    assert!(proof.forward_error.is_none(), "{:?}", proof.forward_error);
    insta::assert_yaml_snapshot!(
        "more_proof",
        (&proof.tested, &proof.rollback_error, &proof.mismatches)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_that_cannot_run_on_a_shadow() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let c0 = shadow
        .catalog_of(
            Setup::Sql("CREATE TABLE t (id int); CREATE SCHEMA archive;"),
            "public",
        )
        .await
        .expect("setup");
    let m = parse(
        "bad.sql",
        "DROP SCHEMA archive CASCADE;\nDROP DATABASE production;\nFROBNICATE the widgets;\n\
         DROP TABLE other_schema.t;\nALTER TABLE t ALTER COLUMN id SET DEFAULT 1;\nCREATE SCHEMA IF NOT EXISTS archive;\n",
        &ParseOptions::default(),
    )
    .expect("parses");
    let rb = generate(&m, &c0, &Options::default());
    insta::assert_yaml_snapshot!("cannot_run", (&rb.statements, &rb.irreversible, &rb.no_ops));
}

/// `DROP COLUMN ... CASCADE` also drops other tables' foreign keys on it: the rollback restores
/// them. With rows, the re-added column is empty, so validating the restored foreign key fails,
/// and the proof says so (SQLSTATE 23503) instead of claiming the rollback works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_column_cascade_restores_dependent_foreign_keys() {
    const SETUP: &str = "CREATE TABLE codes (id int PRIMARY KEY, code text UNIQUE, label text);\n\
                         CREATE TABLE uses (id int PRIMARY KEY, code text REFERENCES codes (code));";
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let m = parse(
        "cascade.sql",
        "ALTER TABLE codes DROP COLUMN code CASCADE;",
        &ParseOptions::default(),
    )
    .expect("parses");
    let c0 = shadow
        .catalog_of(Setup::Sql(SETUP), "public")
        .await
        .expect("setup");
    let rb = generate(&m, &c0, &Options::default());
    insta::assert_snapshot!("drop_column_cascade_script", rb.script);

    let empty = ProveOptions {
        sample_rows: 0,
        ..Default::default()
    };
    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &m,
        RollbackSource::Generated(&rb),
        &empty,
    )
    .await
    .expect("prover runs");
    assert!(p.tested && p.restored, "{p:#?}");

    let p = prove(
        &shadow,
        Setup::Sql(SETUP),
        &m,
        RollbackSource::Generated(&rb),
        &ProveOptions::default(),
    )
    .await
    .expect("prover runs");
    // Right on empty tables; on the sample rows the restored foreign key fails.
    assert!(!p.tested && p.rollback_error.is_none(), "{p:#?}");
    let rollback::DataPhase::Ran { rollback_error, .. } = &p.data else {
        panic!("the data phase ran: {:?}", p.data);
    };
    assert_eq!(
        rollback_error.as_ref().and_then(|f| f.sqlstate.as_deref()),
        Some("23503")
    );
    assert!(
        p.data_loss
            .iter()
            .any(|l| l.table == "codes" && l.column == "code"),
        "{:?}",
        p.data_loss
    );
}
