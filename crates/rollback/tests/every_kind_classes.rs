//! The failure classes of generated rollbacks seen in real histories (issue 14), one fixture
//! each under `tests/fixtures/classes/<class>.sql` (pre-migration schema, a `-- migration` line,
//! the forward SQL): the generated rollback is snapshotted and proven on real PostgreSQL with
//! `rollback::prove` — forward, rollback, exact catalog equal to the one before (the structural
//! round trip; the sample rows are the `sample` module's business). The enum mappings are also
//! checked on rows of our own: the values come back.

use std::path::{Path, PathBuf};

use migration_parser::{Migration, ParseOptions, parse};
use rollback::{
    Options, Proof, ProveOptions, Rollback, RollbackSource, Setup, Shadow, execute_migration,
    execute_rollback, generate, prove,
};
use sqlx::{Connection, Executor, Row};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/classes");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    v.sort();
    v
}

fn render(rb: &Rollback) -> String {
    let mut s = rb.script.clone();
    s.push_str("\n==== irreversible\n");
    for i in &rb.irreversible {
        s.push_str(&format!(
            "statement {} (line {}): {}\n",
            i.statement + 1,
            i.line,
            i.reason
        ));
    }
    s.push_str("==== no-ops\n");
    for n in &rb.no_ops {
        s.push_str(&format!(
            "statement {} (line {}): {}\n",
            n.statement + 1,
            n.line,
            n.reason
        ));
    }
    s
}

/// Generate the rollback of `forward` over the catalog `setup` builds, and prove it.
async fn generate_and_prove(
    shadow: &Shadow,
    name: &str,
    setup: &str,
    forward: &Migration,
) -> (Rollback, Proof) {
    let c0 = shadow
        .catalog_of(Setup::Sql(setup), "public")
        .await
        .unwrap_or_else(|e| panic!("{name}: setup loads: {e}"));
    let rb = generate(forward, &c0, &Options::default());
    for st in &forward.statements {
        let accounted = rb.statements.iter().any(|s| s.source_statement == st.index)
            || rb.irreversible.iter().any(|i| i.statement == st.index)
            || rb.no_ops.iter().any(|n| n.statement == st.index);
        assert!(accounted, "{name}: statement {} unaccounted", st.index + 1);
    }
    let proof = prove(
        shadow,
        Setup::Sql(setup),
        forward,
        RollbackSource::Generated(&rb),
        &ProveOptions {
            sample_rows: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: prover runs: {e}"));
    (rb, proof)
}

fn assert_restored(name: &str, rb: &Rollback, proof: &Proof) {
    assert!(
        proof.forward_error.is_none(),
        "{name}: forward fails: {:?}",
        proof.forward_error
    );
    assert!(
        proof.rollback_error.is_none(),
        "{name}: rollback fails: {:?}\n{}",
        proof.rollback_error,
        rb.script
    );
    let real: Vec<String> = proof
        .mismatches
        .iter()
        .filter(|m| !m.column_order_only)
        .map(|m| m.to_string())
        .collect();
    assert!(
        proof.tested && proof.restored && real.is_empty(),
        "{name}: the generated rollback does not restore the exact catalog: {real:#?}\n{}",
        rb.script
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_class_fixture_generates_the_snapshotted_rollback_and_proves_it() {
    let files = fixtures();
    assert!(files.len() >= 5, "fixtures missing: {files:?}");
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let text = std::fs::read_to_string(&path).expect("fixture");
        let (setup, forward) = text
            .split_once("\n-- migration\n")
            .unwrap_or_else(|| panic!("{name}: no `-- migration` line"));
        let forward = parse(&format!("{name}.sql"), forward, &ParseOptions::default())
            .expect("migration parses");
        let (rb, proof) = generate_and_prove(&shadow, &name, setup, &forward).await;
        insta::assert_snapshot!(format!("class_{name}"), render(&rb));
        assert_restored(&name, &rb, &proof);
    }
}

/// The same `ADD COLUMN IF NOT EXISTS` on two shapes: where the column existed the rollback
/// leaves it alone, where it did not the rollback drops it; both proven.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_if_not_exists_is_undone_per_shape() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let forward = parse(
        "m.sql",
        "ALTER TABLE items ADD COLUMN IF NOT EXISTS sku text;\n\
         CREATE INDEX IF NOT EXISTS items_sku_idx ON items (sku);\n",
        &ParseOptions::default(),
    )
    .expect("parses");
    let with = "CREATE TABLE items (id int PRIMARY KEY, sku text); CREATE INDEX items_sku_idx ON items (sku);";
    let without = "CREATE TABLE items (id int PRIMARY KEY);";
    let (rb_with, proof) = generate_and_prove(&shadow, "with", with, &forward).await;
    assert_restored("with", &rb_with, &proof);
    assert!(
        !rb_with.script.contains("DROP COLUMN"),
        "{}",
        rb_with.script
    );
    assert_eq!(rb_with.no_ops.len(), 2, "{:?}", rb_with.no_ops);
    let (rb_without, proof) = generate_and_prove(&shadow, "without", without, &forward).await;
    assert_restored("without", &rb_without, &proof);
    assert!(
        rb_without.script.contains("DROP COLUMN sku"),
        "{}",
        rb_without.script
    );
    assert!(rb_without.no_ops.is_empty(), "{:?}", rb_without.no_ops);
}

/// The enum conversions of `enum_using.sql` on rows: after the migration and the generated
/// rollback, every value the mapping can bring back is back (`success`/`failure` through a
/// boolean and a new enum, numbers through text and through a `CASE`, text through an enum).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_conversions_bring_the_values_back() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/classes/enum_using.sql");
    let text = std::fs::read_to_string(path).expect("fixture");
    let (setup, forward) = text.split_once("\n-- migration\n").expect("sections");
    let pg = EphemeralPg::start_async(EphemeralOptions::shadow())
        .await
        .expect("ephemeral PostgreSQL starts");
    let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connects");
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup.to_string()))
        .execute(&mut conn)
        .await
        .expect("setup");
    conn.execute(
        "INSERT INTO builds VALUES (1, 'success'), (2, 'success');
         INSERT INTO jobs VALUES (1, 1, 0, 'queued'), (2, 3, 1, 'done'), (3, 2, NULL, NULL);",
    )
    .await
    .expect("rows");
    let rows = "SELECT string_agg(concat_ws('|', b.id, b.build_status, j.id, j.priority, j.kind, j.state), ';' \
                ORDER BY b.id, j.id) FROM builds b CROSS JOIN jobs j";
    let before: String = conn.fetch_one(rows).await.expect("rows").get(0);
    let m = parse("enum_using.sql", forward, &ParseOptions::default()).expect("parses");
    let c0 = Shadow::from_ephemeral(&pg)
        .catalog_of(Setup::Sql(setup), "public")
        .await
        .expect("catalog");
    let rb = generate(&m, &c0, &Options::default());
    execute_migration(&mut conn, &m)
        .await
        .expect("forward runs");
    execute_rollback(&mut conn, &rb)
        .await
        .unwrap_or_else(|e| panic!("rollback runs: {e:?}\n{}", rb.script));
    let after: String = conn.fetch_one(rows).await.expect("rows").get(0);
    assert_eq!(before, after, "{}", rb.script);
}
