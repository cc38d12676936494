//! The forward migration and a user-supplied rollback script are untrusted input: on the
//! ephemeral shadow they run as the scratch database's owner, not as a superuser, so they cannot
//! run programs on the machine (`COPY … TO PROGRAM`) nor make themselves superuser. Real
//! PostgreSQL.

use migration_parser::{ParseOptions, parse};
use rollback::{ProveOptions, RollbackSource, Setup, Shadow, prove};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_and_rollback_scripts_are_not_superusers() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let dir = std::env::temp_dir().join(format!("dc-prove-priv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let proof_file = dir.join("pwned");
    let opts = ProveOptions {
        sample_rows: 0,
        ..Default::default()
    };
    let setup = Setup::Sql("CREATE TABLE t (id int PRIMARY KEY);");
    // The owner can still change its own tables: a plain migration is proven.
    let plain = parse(
        "up.sql",
        "ALTER TABLE t ADD COLUMN v int;",
        &ParseOptions::default(),
    )
    .expect("parses");
    let down = parse(
        "down.sql",
        "ALTER TABLE t DROP COLUMN v;",
        &ParseOptions::default(),
    )
    .expect("parses");
    let p = prove(&shadow, setup, &plain, RollbackSource::Script(&down), &opts)
        .await
        .expect("prover runs");
    assert!(p.tested && p.restored, "{p:#?}");
    // Superuser-only statements in the forward migration …
    let evil = format!(
        "COPY (SELECT 1) TO PROGRAM 'touch {}';",
        proof_file.display()
    );
    let fwd = parse("up.sql", &evil, &ParseOptions::default()).expect("parses");
    let p = prove(&shadow, setup, &fwd, RollbackSource::Script(&down), &opts)
        .await
        .expect("prover runs");
    let f = p.forward_error.expect("COPY TO PROGRAM is refused");
    assert_eq!(f.sqlstate.as_deref(), Some("42501"), "{f:?}");
    // … and in the rollback script are refused.
    let evil_down = parse(
        "down.sql",
        &format!("ALTER TABLE t DROP COLUMN v; ALTER ROLE CURRENT_USER SUPERUSER; {evil}"),
        &ParseOptions::default(),
    )
    .expect("parses");
    let p = prove(
        &shadow,
        setup,
        &plain,
        RollbackSource::Script(&evil_down),
        &opts,
    )
    .await
    .expect("prover runs");
    let f = p.rollback_error.expect("ALTER ROLE … SUPERUSER is refused");
    assert_eq!(f.sqlstate.as_deref(), Some("42501"), "{f:?}");
    assert!(!proof_file.exists(), "COPY TO PROGRAM ran on the machine");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A shard's catalog is the target's contents, untrusted too. Loading it on the shadow
/// (`Setup::Catalog`) runs as a superuser; a materialized view must not be populated then (its
/// query runs the tenant's functions as the view's owner), only once the owner is demoted — a
/// tenant function that runs `COPY … TO PROGRAM` must not reach the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_matview_is_not_populated_as_a_superuser() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let dir = std::env::temp_dir().join(format!("dc-prove-mv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let proof_file = dir.join("pwned");
    let setup = format!(
        "CREATE FUNCTION boom() RETURNS int LANGUAGE plpgsql AS $f$
         BEGIN
           EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch {}');
           RETURN 1;
         END $f$;
         CREATE MATERIALIZED VIEW mv_boom AS SELECT boom() AS one WITH NO DATA;
         CREATE MATERIALIZED VIEW mv_plain AS SELECT 1 AS one;",
        proof_file.display()
    );
    let cat = shadow
        .catalog_of(Setup::Sql(&setup), "public")
        .await
        .expect("setup loads");
    assert!(!proof_file.exists(), "the test's own setup ran boom()");
    let again = shadow.catalog_of(Setup::Catalog(&cat), "public").await;
    assert!(
        !proof_file.exists(),
        "a tenant function ran COPY TO PROGRAM as a superuser while the catalog loaded"
    );
    let again = again.expect("the catalog loads");
    assert!(again.tables.contains_key("mv_plain"), "{again:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A function name from the target is written into `COMMENT ON FUNCTION` both when a catalog is
/// loaded on the shadow (as a superuser) and in a generated rollback (which an operator runs on
/// production): a name that closes the statement must stay one quoted name, never a second
/// command (`COPY … TO PROGRAM` on the shadow, anything in the rollback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_function_name_stays_one_name_in_comments() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let proof_file = std::path::Path::new("/tmp/dcp");
    let _ = std::fs::remove_file(proof_file);
    // 63 bytes at most: a function name.
    let evil = "f() IS NULL;COPY(SELECT 1)TO PROGRAM'touch /tmp/dcp';--";
    let q = migration_parser::pg_quote::quote_ident(evil);
    let setup = format!(
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 2';
         CREATE FUNCTION {q}(a int) RETURNS int LANGUAGE sql AS 'SELECT 1';
         COMMENT ON FUNCTION {q}(int) IS 'kept';"
    );
    let cat = shadow
        .catalog_of(Setup::Sql(&setup), "public")
        .await
        .expect("setup loads");
    let again = shadow.catalog_of(Setup::Catalog(&cat), "public").await;
    assert!(
        !proof_file.exists(),
        "a function name ran COPY TO PROGRAM while the catalog loaded"
    );
    let again = again.expect("the catalog loads");
    assert_eq!(
        rollback::mismatches(&cat, &again),
        vec![],
        "the comment is kept"
    );
    // The generated rollback of dropping it re-creates it and its comment, as one statement each.
    let m = parse(
        "up.sql",
        &format!("DROP FUNCTION {q}(int);"),
        &ParseOptions::default(),
    )
    .expect("parses");
    let rb = rollback::generate(
        &m,
        &rollback::CatalogSnapshot::from_topology(&cat),
        &Default::default(),
    );
    let comment = rb
        .statements
        .iter()
        .find(|s| s.sql.starts_with("COMMENT ON FUNCTION"))
        .unwrap_or_else(|| panic!("{rb:#?}"));
    assert_eq!(
        comment.sql,
        format!("COMMENT ON FUNCTION {q}(a integer) IS 'kept'"),
        "{rb:#?}"
    );
}
