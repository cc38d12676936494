//! The two phases of a proof and the faithful shadow, on a real PostgreSQL: a structural proof
//! that stands when the sample rows break the migration, extension-typed tables, populated
//! materialized views, `CREATE SCHEMA public` in a dump, mismatches by phase, and no scratch
//! database or role left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use migration_parser::{Migration, ParseOptions, TransactionMode, parse};
use rollback::{DataPhase, ProofOutcome, ProveOptions, RollbackSource, Setup, Shadow, prove};
use sqlx::{Connection, PgConnection};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

fn parse_tx(name: &str, sql: &str) -> Migration {
    let opts = ParseOptions {
        transaction_mode: TransactionMode::WrapFile,
        ..Default::default()
    };
    parse(name, sql, &opts).expect("test SQL parses")
}

async fn names(pg: &EphemeralPg, sql: &str) -> BTreeSet<String> {
    let mut c = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connects");
    let n: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_all(&mut c)
        .await
        .expect("lists");
    let _ = c.close().await;
    n.into_iter().collect()
}

async fn available(pg: &EphemeralPg, ext: &str) -> bool {
    let all = names(pg, "SELECT name::text FROM pg_available_extensions").await;
    all.contains(ext)
}

async fn proof_of(
    shadow: &Shadow,
    setup: &str,
    up: &str,
    down: &str,
    options: &ProveOptions,
) -> rollback::Proof {
    let up = parse_tx("up.sql", up);
    let down = parse_tx("down.sql", down);
    prove(
        shadow,
        Setup::Sql(setup),
        &up,
        RollbackSource::Script(&down),
        options,
    )
    .await
    .expect("the prover runs")
}

const CAST_SETUP: &str = "CREATE TABLE items (id int PRIMARY KEY, qty text NOT NULL);";
const CAST_UP: &str = "ALTER TABLE items ALTER COLUMN qty TYPE integer USING qty::integer;";
const CAST_DOWN: &str = "ALTER TABLE items ALTER COLUMN qty TYPE text;";

/// Structure proven although the rows make the forward fail; a wrong rollback is a structural
/// mismatch; the data phase proves the round trip on rows that do cast.
async fn structure_and_data(shadow: &Shadow) {
    let bad_rows = ProveOptions {
        sample_data: Some(Arc::from(
            "INSERT INTO items VALUES (1, 'twelve'), (2, '7 boxes');",
        )),
        ..ProveOptions::default()
    };
    let p = proof_of(shadow, CAST_SETUP, CAST_UP, CAST_DOWN, &bad_rows).await;
    match p.outcome() {
        ProofOutcome::Proven { data: false, note } => {
            let note = note.expect("says why the data phase did not run");
            assert!(
                note.contains("failed on the sampled real rows") && note.contains("22P02"),
                "{note}"
            );
            // Real rows: the server's message would quote the value; it is withheld.
            assert!(!note.contains("twelve"), "{note}");
        }
        other => panic!("structure proven, data not: {other:?}\n{p:#?}"),
    }
    assert!(p.tested && p.restored, "{p:#?}");
    assert!(p.duration_ms > 0);

    let good_rows = ProveOptions {
        sample_data: Some(Arc::from("INSERT INTO items VALUES (1, '12'), (2, '7');")),
        ..ProveOptions::default()
    };
    let p = proof_of(shadow, CAST_SETUP, CAST_UP, CAST_DOWN, &good_rows).await;
    assert_eq!(
        p.outcome(),
        ProofOutcome::Proven {
            data: true,
            note: None
        },
        "{p:#?}"
    );
    assert!(
        matches!(
            p.data,
            DataPhase::Ran {
                rows: 2,
                real_rows: true,
                ..
            }
        ),
        "{:?}",
        p.data
    );

    // Forgets the index and restores the column as varchar: wrong in both phases, listed once
    // each, by phase.
    let p = proof_of(
        shadow,
        CAST_SETUP,
        "CREATE INDEX items_qty_idx ON items (qty); ALTER TABLE items ADD COLUMN note text;",
        "ALTER TABLE items DROP COLUMN note; ALTER TABLE items ALTER COLUMN qty TYPE varchar(20);",
        &ProveOptions::default(),
    )
    .await;
    match p.outcome() {
        ProofOutcome::Mismatch { differences } => {
            insta::assert_yaml_snapshot!("wrong_rollback_by_phase", differences)
        }
        other => panic!("a wrong rollback is a mismatch: {other:?}"),
    }
    assert!(p.tested && !p.restored, "{p:#?}");

    // Right on empty tables, fails on the rows: a data-phase difference.
    let p = proof_of(
        shadow,
        CAST_SETUP,
        "ALTER TABLE items ADD COLUMN note text;",
        "ALTER TABLE items DROP COLUMN note; \
         ALTER TABLE items ALTER COLUMN qty TYPE integer USING qty::integer; \
         ALTER TABLE items ALTER COLUMN qty TYPE text;",
        &bad_rows,
    )
    .await;
    match p.outcome() {
        ProofOutcome::Mismatch { differences } => {
            // The failed down rolled back as a whole: the column it dropped is back too.
            assert!(
                differences[0].starts_with("data: the rollback failed on the shadow")
                    && differences[0].contains("22P02")
                    && differences.iter().all(|d| d.starts_with("data: ")),
                "{differences:?}"
            );
        }
        other => panic!("a rollback failing on rows is a mismatch: {other:?}"),
    }
    assert!(!p.tested && p.rollback_error.is_none(), "{p:#?}");
}

/// A table typed by an extension the dump does not create (a schema-filtered `pg_dump`
/// leaves extensions out): created from [`ProveOptions::extensions`] when the server has it,
/// named when it does not.
async fn extensions(pg: &EphemeralPg, shadow: &Shadow) {
    let mut exts = BTreeMap::new();
    let ext = if available(pg, "citext").await {
        "citext"
    } else {
        "hstore"
    };
    if available(pg, ext).await {
        exts.insert(ext.to_string(), "public".to_string());
        let setup = format!("CREATE TABLE users (id int PRIMARY KEY, email public.{ext});");
        let options = ProveOptions {
            extensions: exts.clone(),
            ..ProveOptions::default()
        };
        let p = proof_of(
            shadow,
            &setup,
            "ALTER TABLE users ADD COLUMN bio text;",
            "ALTER TABLE users DROP COLUMN bio;",
            &options,
        )
        .await;
        assert_eq!(
            p.outcome(),
            ProofOutcome::Proven {
                data: true,
                note: None
            },
            "{ext}-typed table: {p:#?}"
        );
        assert!(p.missing_extensions.is_empty());
    }
    let options = ProveOptions {
        extensions: [("deployclaw_no_such_ext".to_string(), "public".to_string())].into(),
        ..ProveOptions::default()
    };
    let p = proof_of(
        shadow,
        "CREATE TABLE paths (id int PRIMARY KEY, path public.deployclaw_no_such_type);",
        "ALTER TABLE paths ADD COLUMN depth int;",
        "ALTER TABLE paths DROP COLUMN depth;",
        &options,
    )
    .await;
    assert_eq!(p.missing_extensions, ["deployclaw_no_such_ext"]);
    match p.outcome() {
        ProofOutcome::NotProven { reason } => assert!(
            reason.starts_with(
                "extension deployclaw_no_such_ext is not installed on the shadow server"
            ),
            "{reason}"
        ),
        other => panic!("a missing extension is not proven: {other:?}"),
    }
    assert!(!p.tested);
}

/// As `pg_dump --schema-only --schema=public` writes it: `CREATE SCHEMA public`, a
/// materialized view `WITH NO DATA` with the unique index `CONCURRENTLY` needs.
const DUMP_SETUP: &str = "
CREATE SCHEMA public;
COMMENT ON SCHEMA public IS 'standard public schema';
CREATE TABLE public.posts (id int PRIMARY KEY, score int NOT NULL DEFAULT 0);
CREATE MATERIALIZED VIEW public.post_scores AS SELECT id, score FROM public.posts WITH NO DATA;
CREATE UNIQUE INDEX post_scores_id ON public.post_scores (id);
";

/// The dump loads (its `CREATE SCHEMA public` keeps the database's own `public`) and the view is
/// populated, so a migration refreshing it `CONCURRENTLY` is proven in both phases.
async fn dump_with_matview(shadow: &Shadow) {
    let p = proof_of(
        shadow,
        DUMP_SETUP,
        "ALTER TABLE posts ADD COLUMN hot boolean; \
         REFRESH MATERIALIZED VIEW CONCURRENTLY post_scores;",
        "ALTER TABLE posts DROP COLUMN hot; REFRESH MATERIALIZED VIEW CONCURRENTLY post_scores;",
        &ProveOptions::default(),
    )
    .await;
    assert_eq!(
        p.outcome(),
        ProofOutcome::Proven {
            data: true,
            note: None
        },
        "{p:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phases_on_a_faithful_shadow_leave_nothing_behind() {
    let pg = EphemeralPg::start_async(EphemeralOptions::shadow())
        .await
        .expect("ephemeral PostgreSQL starts");
    let dbs = "SELECT datname::text FROM pg_database";
    let roles = "SELECT rolname::text FROM pg_roles";
    let (dbs_before, roles_before) = (names(&pg, dbs).await, names(&pg, roles).await);
    let shadow = Shadow::from_ephemeral(&pg);
    structure_and_data(&shadow).await;
    extensions(&pg, &shadow).await;
    dump_with_matview(&shadow).await;
    let dbs_after = names(&pg, dbs).await;
    assert!(
        dbs_after.is_subset(&dbs_before),
        "scratch databases left: {:?}",
        dbs_after.difference(&dbs_before).collect::<Vec<_>>()
    );
    assert_eq!(names(&pg, roles).await, roles_before, "owner roles left");
}
