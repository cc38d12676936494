//! Rehearsal on a shadow (ephemeral and --shadow URL) and in place.

mod common;

use common::*;
use migration_parser::LockMode;
use simulator::{
    CancelToken, LockSource, NotRunReason, ObservedLock, ProgressEvent, RehearsalMode,
    RehearsalResult, SimError, SimOptions, Simulator, StatementOutcome,
};

const SCHEMA: &str = "tenant_r";

fn setup_sql(schema: &str) -> String {
    let s = simulator::quote_ident(schema);
    format!(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.t (id int PRIMARY KEY, v int, name varchar(20));
         INSERT INTO {s}.t SELECT g, g, 'n' || g FROM generate_series(1, 2000) g;
         CREATE TABLE {s}.other (id int PRIMARY KEY);
         ANALYZE {s}.t;"
    )
}

const MIGRATION: &str = "CREATE INDEX t_v_idx ON t (v);
ALTER TABLE t ADD COLUMN extra int;
ALTER TABLE t ALTER COLUMN v TYPE bigint;
ALTER TABLE t ALTER COLUMN name TYPE varchar(50);
CREATE INDEX CONCURRENTLY t_name_idx ON t (name);
BEGIN;
ALTER TABLE t ADD COLUMN a int;
ALTER TABLE t ALTER COLUMN nope SET NOT NULL;
ALTER TABLE t ADD COLUMN b int;
COMMIT;
ALTER TABLE t ADD COLUMN c int;
";

fn has_lock(locks: &[ObservedLock], rel: &str, mode: LockMode) -> bool {
    locks.iter().any(|l| l.relation == rel && l.mode == mode)
}

fn strongest_on(locks: &[ObservedLock], rel: &str) -> Option<LockMode> {
    locks
        .iter()
        .filter(|l| l.relation == rel)
        .map(|l| l.mode)
        .max()
}

fn check_common(r: &RehearsalResult) {
    let st = &r.statements;
    assert!(st.len() >= 11, "{st:#?}");
    // CREATE INDEX: SHARE on the table, observed.
    assert_eq!(st[0].outcome, StatementOutcome::Succeeded);
    assert_eq!(st[0].lock_source, LockSource::Observed);
    assert_eq!(
        strongest_on(&st[0].locks, "t"),
        Some(LockMode::Share),
        "{:#?}",
        st[0]
    );
    assert!(st[0].created.iter().any(|c| c.ends_with(".t_v_idx")));
    // ADD COLUMN: ACCESS EXCLUSIVE, no rewrite.
    assert!(
        has_lock(&st[1].locks, "t", LockMode::AccessExclusive),
        "{:#?}",
        st[1]
    );
    assert!(st[1].rewritten.is_empty(), "{:#?}", st[1]);
    // int -> bigint rewrites t (and its indexes); varchar widening does not.
    assert!(
        st[2].rewritten.iter().any(|x| x.ends_with(".t")),
        "{:#?}",
        st[2]
    );
    assert!(st[3].rewritten.is_empty(), "{:#?}", st[3]);
    // The failing statement in the block: 42703, the rest of the block not run.
    match &st[7].outcome {
        StatementOutcome::Failed { sqlstate, message } => {
            assert_eq!(sqlstate.as_deref(), Some("42703"), "{message}");
        }
        o => panic!("statement 8 should fail: {o:?}"),
    }
    assert_eq!(
        st[8].outcome,
        StatementOutcome::NotRun {
            reason: NotRunReason::TransactionAborted
        }
    );
    // After the block, autocommit statements run again.
    assert_eq!(st[10].outcome, StatementOutcome::Succeeded);
    assert!(has_lock(&st[10].locks, "t", LockMode::AccessExclusive));
    assert!(!r.ok());
    assert_eq!(r.first_failure().map(|f| f.index), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_rehearsal_on_ephemeral_cluster() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &setup_sql(SCHEMA)).await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let m = migration(MIGRATION);
    let events = std::sync::Mutex::new(Vec::new());
    let progress = |e: ProgressEvent| events.lock().unwrap().push(e);
    let sim = Simulator::new(SimOptions {
        calibration_rows: 20_000,
        ..Default::default()
    });
    let before = checksum(&pg, "app", SCHEMA).await;
    let res = sim
        .run(&m, &fleet, None, &progress, &CancelToken::new())
        .await
        .expect("run");
    assert_eq!(res.rehearsals.len(), 1);
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.setup_error, None, "{r:#?}");
    assert!(r.clone_errors.is_empty(), "{:?}", r.clone_errors);
    check_common(r);
    // CONCURRENTLY ran outside a transaction; locks from the knowledge table.
    assert_eq!(r.statements[4].outcome, StatementOutcome::Succeeded);
    assert_eq!(r.statements[4].lock_source, LockSource::KnowledgeTable);
    assert_eq!(
        strongest_on(&r.statements[4].locks, "t"),
        Some(LockMode::ShareUpdateExclusive)
    );
    // Statement 7 (ADD COLUMN a) ran in the block and holds ACCESS EXCLUSIVE.
    assert!(has_lock(
        &r.statements[6].locks,
        "t",
        LockMode::AccessExclusive
    ));
    // Estimates: the shard is tiny, but the rewrite and the index build cost something.
    let ev = &res.shards[0];
    let est = ev.estimate.as_ref().expect("estimate");
    assert!(res.throughput.calibrated, "{:?}", res.throughput);
    assert!(
        est.statements[2].basis.contains("rewrite t"),
        "{:#?}",
        est.statements[2]
    );
    assert_eq!(
        est.statements[4].estimated_lock_ms, 0.0,
        "CONCURRENTLY blocks no writes"
    );
    assert_eq!(
        est.statements[2].blocking_lock,
        Some(LockMode::AccessExclusive)
    );
    assert!(
        ev.estimated_lock_ms as f64
            <= est
                .statements
                .iter()
                .map(|s| s.estimated_lock_ms)
                .sum::<f64>()
                + 1.0
    );
    // The target is untouched; nothing is left behind.
    assert_eq!(checksum(&pg, "app", SCHEMA).await, before);
    assert!(
        leftover_sessions(&pg).await.is_empty(),
        "{:?}",
        leftover_sessions(&pg).await
    );
    assert_eq!(foreign_locks(&pg, "app").await, 0);
    // Progress and steps.
    let ev = events.lock().unwrap().clone();
    assert!(
        ev.iter()
            .any(|e| matches!(e, ProgressEvent::RehearsalFinished { ok: false, .. }))
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        ProgressEvent::ShardFinished {
            unreachable: false,
            ..
        }
    )));
    for action in [
        "plan probes",
        "introspect",
        "start shadow",
        "calibrate",
        "clone schema",
        "rehearse",
        "probe shard",
    ] {
        assert!(
            res.steps.iter().any(|s| s.action == action),
            "missing step {action}: {:#?}",
            res.steps
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_url_databases_are_dropped_and_hostile_names_work() {
    let pg = start().await;
    let shadow = start().await;
    create_db(&pg, "app").await;
    let hostile = "te\"nant; DROP TABLE x; --";
    exec(&pg, "app", &setup_sql(hostile)).await;
    exec(&pg, "app", &setup_sql(SCHEMA)).await;
    // A second shape: one more column.
    exec(
        &pg,
        "app",
        &format!(
            "ALTER TABLE {}.t ADD COLUMN drift int",
            simulator::quote_ident(SCHEMA)
        ),
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", hostile), (0, "app", SCHEMA)]);
    let m = migration(MIGRATION);
    let sim = Simulator::new(SimOptions {
        shadow: Some(shadow.connection_spec()),
        calibrate: false,
        ..Default::default()
    });
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
    assert_eq!(res.rehearsals.len(), 2, "two shapes, two rehearsals");
    for r in res.rehearsals.values() {
        assert_eq!(r.setup_error, None, "{r:#?}");
        check_common(r);
        assert!(r.target.contains("deployclaw_shadow_"));
    }
    let r = res.rehearsal_for(&fleet.shards[0].id).unwrap();
    assert_eq!(r.schema, hostile);
    assert!(
        shadow_dbs(&shadow).await.is_empty(),
        "{:?}",
        shadow_dbs(&shadow).await
    );
    assert!(leftover_sessions(&shadow).await.is_empty());
    assert!(leftover_sessions(&pg).await.is_empty());
    assert!(!res.throughput.calibrated);
}

/// Rehearse `m` in place on `fleet` with default options.
async fn in_place(
    m: &migration_parser::Migration,
    fleet: &topology::Fleet,
) -> simulator::SimulationResult {
    Simulator::new(SimOptions {
        rehearsal: RehearsalMode::InPlace,
        ..Default::default()
    })
    .run(m, fleet, None, &simulator::NoProgress, &CancelToken::new())
    .await
    .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_rehearsal_leaves_the_target_identical() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &setup_sql(SCHEMA)).await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let m = migration(&format!(
        "{MIGRATION}UPDATE t SET v = v + 1;\nDELETE FROM other;\nSET statement_timeout = 0;\n"
    ));
    let before = checksum(&pg, "app", SCHEMA).await;
    let res = in_place(&m, &fleet).await;
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.mode, RehearsalMode::InPlace);
    assert_eq!(r.setup_error, None);
    check_common(r);
    assert_eq!(
        r.statements[4].outcome,
        StatementOutcome::NotRun {
            reason: NotRunReason::NotTransactional
        },
        "CONCURRENTLY is never executed in place"
    );
    assert_eq!(
        r.statements[5].outcome,
        StatementOutcome::NotRun {
            reason: NotRunReason::TransactionControl
        }
    );
    // ALTER TYPE after ADD COLUMN in the same transaction still reports its ACCESS EXCLUSIVE.
    assert!(
        has_lock(&r.statements[2].locks, "t", LockMode::AccessExclusive),
        "{:#?}",
        r.statements[2]
    );
    assert_eq!(r.statements[11].outcome, StatementOutcome::Succeeded);
    assert_eq!(
        checksum(&pg, "app", SCHEMA).await,
        before,
        "in-place rehearsal changed the target"
    );
    // The index that would have been created does not exist.
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_class WHERE relname = 't_v_idx'")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(c);
    assert!(leftover_sessions(&pg).await.is_empty());
    assert_eq!(foreign_locks(&pg, "app").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_never_sends_a_transaction_ender_to_the_target() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &setup_sql(SCHEMA)).await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    // Every way to end the rehearsal's transaction, whether the parser classifies it or not;
    // had one of them run, the ALTERs after it would have been committed on the target.
    let m = migration(
        "ALTER TABLE t ADD COLUMN x1 int;
END;
ALTER TABLE t ADD COLUMN x2 int;
ABORT;
ALTER TABLE t ADD COLUMN x3 int;
PREPARE TRANSACTION 'deployclaw_test';
ALTER TABLE t ADD COLUMN x4 int;
COMMIT PREPARED 'deployclaw_test';
/* a comment first */ COMMIT AND CHAIN;
ALTER TABLE t ADD COLUMN x5 int;
",
    );
    let before = checksum(&pg, "app", SCHEMA).await;
    let res = in_place(&m, &fleet).await;
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.setup_error, None);
    for i in [1, 3, 5, 7, 8] {
        assert_eq!(
            r.statements[i].outcome,
            StatementOutcome::NotRun {
                reason: NotRunReason::TransactionControl
            },
            "statement {i}: {:#?}",
            r.statements[i]
        );
    }
    for i in [0, 2, 4, 6, 9] {
        assert_eq!(
            r.statements[i].outcome,
            StatementOutcome::Succeeded,
            "statement {i}: {:#?}",
            r.statements[i]
        );
    }
    assert_eq!(
        checksum(&pg, "app", SCHEMA).await,
        before,
        "in-place rehearsal changed the target"
    );
    let mut c = conn(&pg, "app").await;
    let prepared: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_prepared_xacts")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(prepared, 0, "a prepared transaction was left on the target");
    drop(c);
    assert!(leftover_sessions(&pg).await.is_empty());
    assert_eq!(foreign_locks(&pg, "app").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_instance_does_not_stop_the_others() {
    let pg = start().await;
    let dead = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &setup_sql(SCHEMA)).await;
    let fleet = fleet(&[&pg, &dead], &[(0, "app", SCHEMA), (1, "app", SCHEMA)]);
    dead.stop().expect("stop"); // its port now refuses connections
    let m = migration("ALTER TABLE t ADD COLUMN extra int;");
    let sim = Simulator::new(SimOptions {
        calibrate: false,
        ..Default::default()
    });
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
    assert!(res.shards[0].unreachable.is_none(), "{:#?}", res.shards[0]);
    assert!(res.shards[0].estimate.is_some());
    assert!(res.shards[1].unreachable.is_some(), "{:#?}", res.shards[1]);
    assert!(res.shards[1].probes.is_empty());
    assert_eq!(res.rehearsals.len(), 1);
    assert!(res.rehearsals.values().next().unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_cleanly() {
    let pg = start().await;
    let shadow = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &setup_sql(SCHEMA)).await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    // A statement that would run for a minute on the shadow.
    let m = migration(
        "ALTER TABLE t ADD COLUMN extra int;\nSELECT pg_sleep(60);\nALTER TABLE t ADD COLUMN more int;",
    );
    let sim = Simulator::new(SimOptions {
        shadow: Some(shadow.connection_spec()),
        calibrate: false,
        ..Default::default()
    });
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    let progress = move |e: ProgressEvent| {
        if matches!(e, ProgressEvent::RehearsalStarted { .. }) {
            let c3 = c2.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                c3.cancel();
            });
        }
    };
    let res = sim.run(&m, &fleet, None, &progress, &cancel).await;
    assert!(matches!(res, Err(SimError::Cancelled)), "{res:?}");
    assert!(
        shadow_dbs(&shadow).await.is_empty(),
        "{:?}",
        shadow_dbs(&shadow).await
    );
    assert!(
        leftover_sessions(&shadow).await.is_empty(),
        "{:?}",
        leftover_sessions(&shadow).await
    );
    assert!(leftover_sessions(&pg).await.is_empty());
}

/// Whether `timestamp` → `timestamptz` rewrites depends on the session's TimeZone (PG 12+: not
/// under UTC): the shadow runs under the shard's own, whatever the shadow cluster's is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shards_timezone_decides_a_timestamptz_rewrite() {
    let pg = start().await;
    // Etc/GMT-1: the stand-in a rehearsal runs under when the shard's zone cannot be read
    // (`dump::UNKNOWN_TIMEZONE_STAND_IN`): it must be one under which the table is rewritten.
    for (db, tz) in [
        ("app_utc", "UTC"),
        ("app_ny", "America/New_York"),
        ("app_stand_in", "Etc/GMT-1"),
    ] {
        create_db(&pg, db).await;
        exec(
            &pg,
            "postgres",
            &format!("ALTER DATABASE {db} SET TimeZone = '{tz}'"),
        )
        .await;
        exec(
            &pg,
            db,
            &format!(
                "CREATE SCHEMA {SCHEMA}; CREATE TABLE {SCHEMA}.t (id int PRIMARY KEY, at timestamp);
                 INSERT INTO {SCHEMA}.t SELECT g, now() FROM generate_series(1, 100) g;"
            ),
        )
        .await;
    }
    let m = migration("ALTER TABLE t ALTER COLUMN at TYPE timestamptz;");
    for mode in [RehearsalMode::Shadow, RehearsalMode::InPlace] {
        let sim = Simulator::new(SimOptions {
            calibrate: false,
            rehearsal: mode,
            ..Default::default()
        });
        let mut rewritten = Vec::new();
        for db in ["app_utc", "app_ny", "app_stand_in"] {
            let fleet = fleet(&[&pg], &[(0, db, SCHEMA)]);
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
            let r = res.rehearsals.values().next().expect("a rehearsal");
            assert_eq!(
                r.statements[0].outcome,
                StatementOutcome::Succeeded,
                "{r:#?}"
            );
            assert_eq!(r.mode, mode, "{r:#?}");
            rewritten.push(!r.statements[0].rewritten.is_empty());
        }
        assert_eq!(
            rewritten,
            [false, true, true],
            "{mode:?}: UTC: catalog-only; America/New_York and the stand-in: the table is rewritten"
        );
    }
}
