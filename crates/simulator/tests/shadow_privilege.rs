//! The migration under test is untrusted input: on the ephemeral shadow it runs as a role that
//! owns the cloned schema but is not a superuser, so it cannot reach the machine (`COPY … TO
//! PROGRAM`, `pg_read_file`) nor give itself superuser back. Real PostgreSQL.

mod common;

use common::*;
use simulator::{CancelToken, SimOptions, Simulator, StatementOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_is_not_a_superuser_on_the_ephemeral_shadow() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_p; CREATE TABLE tenant_p.t (id int PRIMARY KEY, v int);",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_p")]);
    // A world-writable directory the `postgres` OS user could write a proof into.
    let dir = std::env::temp_dir().join(format!("dc-priv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let proof = dir.join("pwned");
    let m = migration(&format!(
        "ALTER TABLE t ADD COLUMN w int;
         COPY (SELECT 1) TO PROGRAM 'touch {}';
         ALTER ROLE CURRENT_USER SUPERUSER;
         SELECT pg_read_file('postgresql.conf');
         CREATE INDEX t_w_idx ON t (w);",
        proof.display()
    ));
    let sim = Simulator::new(SimOptions::default());
    let res = sim
        .run(&m, &fleet, None, &|_| {}, &CancelToken::new())
        .await
        .expect("run");
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.setup_error, None, "{r:#?}");
    let outcomes: Vec<&StatementOutcome> = r.statements.iter().map(|s| &s.outcome).collect();
    // The migration's own DDL on its own (cloned) tables works …
    assert_eq!(*outcomes[0], StatementOutcome::Succeeded, "{outcomes:?}");
    assert_eq!(*outcomes[4], StatementOutcome::Succeeded, "{outcomes:?}");
    // … the superuser-only statements are refused by the server.
    for i in 1..=3 {
        assert!(
            matches!(outcomes[i], StatementOutcome::Failed { sqlstate, .. } if sqlstate.as_deref() == Some("42501")),
            "statement {i}: {outcomes:?}"
        );
    }
    assert!(!proof.exists(), "COPY TO PROGRAM ran on the machine");
    let _ = std::fs::remove_dir_all(&dir);
}

/// On a `--shadow` scratch server, a database that happens to be named like an ephemeral
/// cluster's spare (`deployclaw_spare_*`) is somebody else's: a run must neither rename it into
/// its scratch database (and then drop it) nor rehearse on its contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_server_database_named_like_a_spare_is_left_alone() {
    let pg = start().await;
    let shadow = start().await;
    create_db(&pg, "app").await;
    exec(
        &pg,
        "app",
        "CREATE SCHEMA tenant_p; CREATE TABLE tenant_p.t (id int PRIMARY KEY, v int);",
    )
    .await;
    create_db(&shadow, "deployclaw_spare_1").await;
    exec(
        &shadow,
        "deployclaw_spare_1",
        "CREATE TABLE keep (id int); INSERT INTO keep VALUES (42);",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_p")]);
    let sim = Simulator::new(SimOptions {
        shadow: Some(shadow.connection_spec()),
        calibrate: false,
        ..Default::default()
    });
    let res = sim
        .run(
            &migration("ALTER TABLE t ADD COLUMN w int;"),
            &fleet,
            None,
            &simulator::NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.setup_error, None, "{r:#?}");
    let mut c = conn(&shadow, "deployclaw_spare_1").await;
    let kept: i32 = sqlx::query_scalar("SELECT id FROM keep")
        .fetch_one(&mut c)
        .await
        .expect("the spare-named database and its table are still there");
    assert_eq!(kept, 42);
}

/// The target's contents are untrusted too. The clone populates the materialized views that are
/// populated on the shard (`REFRESH`), which runs each view's query — and every function of the
/// tenant it calls — as the view's owner. That must be the demoted owner, never the clone-time
/// superuser: a tenant function that behaves on the shard (`current_database()` is its own) and
/// runs `COPY … TO PROGRAM` elsewhere must not run a program on the machine. A hostile view name
/// (quotes, `$$`, backslash, semicolon) is still refreshed, so a `REFRESH … CONCURRENTLY` in the
/// migration succeeds like on the shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_matview_is_not_refreshed_as_a_superuser_on_the_shadow() {
    let pg = start().await;
    create_db(&pg, "app").await;
    let dir = std::env::temp_dir().join(format!("dc-mv-priv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let proof = dir.join("pwned");
    exec(
        &pg,
        "app",
        &format!(
            r#"CREATE SCHEMA tenant_p;
            CREATE TABLE tenant_p.t (id int PRIMARY KEY);
            CREATE FUNCTION tenant_p.boom() RETURNS int LANGUAGE plpgsql AS $f$
            BEGIN
              IF current_database() <> 'app' THEN
                EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', 'touch {}');
              END IF;
              RETURN 1;
            END $f$;
            CREATE MATERIALIZED VIEW tenant_p.mv_boom AS SELECT tenant_p.boom() AS one;
            CREATE MATERIALIZED VIEW tenant_p."mv'; $$ \"" x$t$" AS SELECT 1 AS one;
            CREATE UNIQUE INDEX mv_hostile_one ON tenant_p."mv'; $$ \"" x$t$" (one);"#,
            proof.display()
        ),
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_p")]);
    let m = migration(r#"REFRESH MATERIALIZED VIEW CONCURRENTLY "mv'; $$ \"" x$t$";"#);
    let sim = Simulator::new(SimOptions::default());
    let res = sim
        .run(
            &m,
            &fleet,
            None,
            &simulator::NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.setup_error, None, "{r:#?}");
    assert!(
        !proof.exists(),
        "a tenant function ran COPY TO PROGRAM as a superuser during the clone"
    );
    assert_eq!(
        r.statements[0].outcome,
        StatementOutcome::Succeeded,
        "{r:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
