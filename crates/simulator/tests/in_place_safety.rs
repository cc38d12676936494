//! `--rehearse in-place` never changes the target: statements whose effects outlive the
//! rollback are classified on the shard before the transaction starts, refused with a reason,
//! and the shape is rehearsed on the shadow instead; an ordinary migration still runs in place.

mod common;

use common::*;
use simulator::in_place::{InPlaceRefusal, classify};
use simulator::{CancelToken, RehearsalMode, SimOptions, Simulator, StatementOutcome};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};

const SCHEMA: &str = "tenant_ip";

const SETUP: &str = "CREATE SCHEMA tenant_ip;
CREATE TABLE tenant_ip.items (id serial PRIMARY KEY, v int);
INSERT INTO tenant_ip.items (v) VALUES (1), (2);
CREATE TABLE tenant_ip.plain (k int PRIMARY KEY, v int NOT NULL DEFAULT 0, note text,
                              at timestamptz DEFAULT now());
INSERT INTO tenant_ip.plain (k, v, note) VALUES (1, 1, 'a'), (2, 2, NULL);
CREATE TABLE tenant_ip.audited (k int PRIMARY KEY);
CREATE FUNCTION tenant_ip.audit() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_notify('audit', 'x'); RETURN NEW; END $$;
CREATE TRIGGER audited_t BEFORE UPDATE ON tenant_ip.audited FOR EACH ROW EXECUTE FUNCTION tenant_ip.audit();
CREATE TABLE tenant_ip.parent (k int PRIMARY KEY);
CREATE TABLE tenant_ip.child (k int REFERENCES tenant_ip.parent ON DELETE CASCADE);
CREATE TRIGGER child_t BEFORE DELETE ON tenant_ip.child FOR EACH ROW EXECUTE FUNCTION tenant_ip.audit();
CREATE TABLE tenant_ip.sd_parent (k int PRIMARY KEY);
CREATE TABLE tenant_ip.sd_child (k serial, p int DEFAULT 0 REFERENCES tenant_ip.sd_parent ON DELETE SET DEFAULT);
CREATE TABLE tenant_ip.ident (id bigint GENERATED ALWAYS AS IDENTITY, v int);
CREATE VIEW tenant_ip.v_items AS SELECT id, v FROM tenant_ip.items;
CREATE FUNCTION tenant_ip.touch(int) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT $1';";

/// Everything on the server a hostile statement could change and a rollback would not undo.
#[derive(Debug, PartialEq)]
struct ServerState {
    checksum: String,
    sequence: (i64, bool),
    slots: Vec<String>,
    stats_reset: Option<String>,
    advisory_locks: i64,
    large_objects: i64,
    /// The `COPY … TO PROGRAM` marker file names the target's port (the shadow, a cluster on
    /// this machine too, may run it and write its own port).
    marker_names_target: bool,
}

async fn state(pg: &topology::ephemeral::EphemeralPg, marker: &str) -> ServerState {
    let mut c = conn(pg, "app").await;
    let sequence: (i64, bool) =
        sqlx::query_as("SELECT last_value, is_called FROM tenant_ip.items_id_seq")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let slots: Vec<String> =
        sqlx::query_scalar("SELECT slot_name::text FROM pg_replication_slots ORDER BY 1")
            .fetch_all(&mut c)
            .await
            .unwrap();
    let stats_reset: Option<String> = sqlx::query_scalar(
        "SELECT stats_reset::text FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    let advisory_locks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    let large_objects: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_largeobject_metadata")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let port: String = sqlx::query_scalar("SHOW port")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.ok();
    let marker_text = std::fs::read_to_string(marker).unwrap_or_default();
    ServerState {
        checksum: checksum(pg, "app", SCHEMA).await,
        sequence,
        slots,
        stats_reset,
        advisory_locks,
        large_objects,
        marker_names_target: marker_text.lines().any(|l| l.trim() == port),
    }
}

/// The hostile statements of the issue, each with what its refusal must say. `{pid}` is a live
/// session of the test, `{marker}` a file `COPY … TO PROGRAM` appends the server's port to.
const HOSTILE: &[(&str, &str)] = &[
    (
        "INSERT INTO items (v) VALUES (3);",
        "`tenant_ip.items`, whose column `id` defaults to `nextval('items_id_seq'::regclass)`, which calls `nextval`",
    ),
    ("SELECT setval('items_id_seq', 100);", "calls `setval`"),
    (
        "SELECT pg_create_physical_replication_slot('deployclaw_test_slot');",
        "calls `pg_create_physical_replication_slot`",
    ),
    (
        "SELECT pg_terminate_backend({pid});",
        "calls `pg_terminate_backend`",
    ),
    ("SELECT pg_advisory_lock(1);", "advisory lock"),
    ("NOTIFY ch, 'from the migration';", "notification command"),
    (
        "COPY (SELECT current_setting('port')) TO PROGRAM 'cat >> {marker}';",
        "it is a COPY",
    ),
    ("SELECT pg_stat_reset();", "calls `pg_stat_reset`"),
    (
        "DO $$ BEGIN PERFORM pg_advisory_lock(2); END $$;",
        "it is a DO block",
    ),
    ("SELECT lo_create(0);", "calls `lo_create`"),
];

fn hostile_sql(pid: i32, marker: &str) -> Vec<(String, &'static str)> {
    HOSTILE
        .iter()
        .map(|(sql, why)| {
            (
                sql.replace("{pid}", &pid.to_string())
                    .replace("{marker}", marker),
                *why,
            )
        })
        .collect()
}

async fn shard_conn(pg: &topology::ephemeral::EphemeralPg) -> PgConnection {
    conn(pg, "app").await
}

async fn refusals(c: &mut PgConnection, sql: &str) -> Vec<InPlaceRefusal> {
    classify(c, &migration(sql), SCHEMA)
        .await
        .expect("classify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_statements_never_run_on_the_target() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    let marker = format!(
        "/tmp/deployclaw_in_place_marker_{:016x}",
        rand_suffix(&pg).await
    );
    // A live application session, and a listener on the channel the migration notifies.
    let mut victim = conn(&pg, "app").await;
    let victim_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pg.connect_options("app"))
        .await
        .unwrap();
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("ch").await.unwrap();
    let hostile = hostile_sql(victim_pid, &marker);

    // Each statement alone is refused, with its reason.
    let mut c = shard_conn(&pg).await;
    for (sql, why) in &hostile {
        let r = refusals(&mut c, sql).await;
        assert_eq!(r.len(), 1, "{sql}: {r:#?}");
        assert!(
            r[0].reasons.iter().any(|x| x.contains(why)),
            "{sql}: expected a reason containing {why:?}, got {:#?}",
            r[0].reasons
        );
    }
    c.close().await.ok();

    // All of them after an ordinary statement, through the simulator: nothing runs in place.
    let mut sql = String::from("ALTER TABLE plain ADD COLUMN extra int;\n");
    for (s, _) in &hostile {
        sql.push_str(s);
        sql.push('\n');
    }
    let m = migration(&sql);
    let before = state(&pg, &marker).await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let res = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::InPlace,
        calibrate: false,
        ..Default::default()
    })
    .run(
        &m,
        &fleet,
        None,
        &simulator::NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("run");
    assert_eq!(state(&pg, &marker).await, before, "the target changed");

    // The application session is alive, and the first notification on `ch` is ours.
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut victim)
        .await
        .expect("the application session was terminated");
    assert_eq!(one, 1);
    exec(&pg, "app", "NOTIFY ch, 'sentinel'").await;
    let n = listener.recv().await.unwrap();
    assert_eq!(
        n.payload(),
        "sentinel",
        "the migration's NOTIFY was delivered"
    );
    victim.close().await.ok();
    drop(listener);
    pool.close().await;

    // Reported: the shape was rehearsed on the shadow, each hostile statement refused.
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.mode, RehearsalMode::Shadow, "{r:#?}");
    assert!(r.target.contains("deployclaw_shadow_"), "{}", r.target);
    assert_eq!(r.setup_error, None);
    assert_eq!(r.statements[0].outcome, StatementOutcome::Succeeded);
    let lines: Vec<u32> = r.in_place_refused.iter().map(|x| x.line).collect();
    assert_eq!(lines, (2..=11).collect::<Vec<u32>>(), "{r:#?}");
    let messages: Vec<String> = r
        .in_place_refused
        .iter()
        .map(|x| format!("line {}: {}", x.line, x.reasons.join("; ")))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|s| {
            s.replace(&victim_pid.to_string(), "<pid>")
                .replace(&marker, "<marker>")
        })
        .collect();
    insta::assert_debug_snapshot!(messages);
    assert!(
        res.steps
            .iter()
            .any(|s| s.action == "rehearse on the shadow (in place refused)"),
        "{:#?}",
        res.steps
    );
    assert!(leftover_sessions(&pg).await.is_empty());
    assert_eq!(foreign_locks(&pg, "app").await, 0);
    // The shadow (a cluster on this machine) may have run the COPY: its marker is ours to remove.
    let _ = std::fs::remove_file(&marker);
}

/// A unique-enough suffix from the server (no extra dependency).
async fn rand_suffix(pg: &topology::ephemeral::EphemeralPg) -> u64 {
    let mut c = conn(pg, "app").await;
    let v: i64 = sqlx::query_scalar("SELECT (random() * 9e15)::int8")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.ok();
    v as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_judged_by_the_table_they_reach() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    let mut c = shard_conn(&pg).await;
    let refused: &[(&str, &str)] = &[
        // Conservative: a given id does not touch the sequence, but the table has one.
        (
            "INSERT INTO items (id, v) VALUES (10, 3);",
            "calls `nextval`",
        ),
        ("UPDATE items SET v = DEFAULT;", "calls `nextval`"),
        ("INSERT INTO items DEFAULT VALUES;", "calls `nextval`"),
        (
            "MERGE INTO items i USING plain p ON i.id = p.k WHEN NOT MATCHED THEN INSERT (v) VALUES (p.v);",
            "calls `nextval`",
        ),
        (
            "INSERT INTO ident (v) VALUES (1);",
            "identity column(s) `id`",
        ),
        ("UPDATE audited SET k = k;", "trigger(s) `audited_t`"),
        // ON DELETE CASCADE reaches child, whose trigger fires.
        (
            "DELETE FROM parent;",
            "`tenant_ip.child`, whose enabled trigger(s) `child_t`",
        ),
        // ON DELETE SET DEFAULT evaluates the child's defaults, its serial's among them.
        (
            "DELETE FROM sd_parent WHERE k = 1;",
            "`tenant_ip.sd_child`, whose column `k` defaults to `nextval(",
        ),
        (
            "INSERT INTO plain (k) SELECT v FROM v_items;",
            "reads view `tenant_ip.v_items`",
        ),
        (
            "UPDATE plain SET v = touch(v);",
            "calls `tenant_ip.touch`, which is VOLATILE",
        ),
        (
            "WITH d AS (DELETE FROM items RETURNING id) SELECT count(*) FROM d;",
            "calls `nextval`",
        ),
        ("ANALYZE plain;", "maintenance command"),
        (
            "CREATE EXTENSION IF NOT EXISTS pgcrypto;",
            "extension's script",
        ),
        (
            "CREATE TRIGGER t2 BEFORE UPDATE ON plain FOR EACH ROW EXECUTE FUNCTION audit();\nUPDATE plain SET v = 1;",
            "creates or enables a trigger or rule at line 1",
        ),
        ("SELECT no_such_function(1);", "does not exist on the shard"),
    ];
    for (sql, why) in refused {
        let r = refusals(&mut c, sql).await;
        assert!(
            r.iter().flat_map(|x| &x.reasons).any(|x| x.contains(why)),
            "{sql}: expected a reason containing {why:?}, got {r:#?}"
        );
    }
    let allowed = [
        "ALTER TABLE plain ADD COLUMN extra int;",
        "CREATE INDEX plain_v_idx ON plain (v);",
        "ALTER TABLE plain ALTER COLUMN v SET NOT NULL;",
        "UPDATE plain SET note = lower(coalesce(note, 'x')) WHERE k > 0;",
        "INSERT INTO plain (k, v) VALUES (3, 3);",
        "DELETE FROM plain WHERE k = 2;",
        // Neither evaluates the sequence default of `items`.
        "UPDATE items SET v = v + 1;",
        "DELETE FROM items WHERE id = 1;",
        "SET lock_timeout = '2s';\nALTER TABLE items ADD COLUMN w int DEFAULT 0;",
        "ALTER TABLE items ADD COLUMN u uuid DEFAULT gen_random_uuid();",
        // A table created by the migration vanishes with the rollback, its sequence too.
        "CREATE TABLE fresh (id serial PRIMARY KEY, v int);\nINSERT INTO fresh (v) VALUES (1);",
        "BEGIN;\nALTER TABLE plain ADD COLUMN b int;\nCOMMIT;",
        "CREATE INDEX CONCURRENTLY plain_note_idx ON plain (note);",
        // A new function is judged only where it is called; a foreign key copies nothing.
        "CREATE OR REPLACE FUNCTION fresh_fn() RETURNS int LANGUAGE sql AS 'SELECT 1';\nALTER TABLE plain ADD COLUMN extra int;",
        "CREATE TABLE fresh2 (k int REFERENCES items (id));\nINSERT INTO fresh2 VALUES (1);",
        "CREATE TABLE fresh3 (k int REFERENCES plain (k));\nDELETE FROM plain WHERE k = 2;",
        "DROP INDEX CONCURRENTLY IF EXISTS plain_v_idx;",
    ];
    for sql in allowed {
        let r = refusals(&mut c, sql).await;
        assert!(r.is_empty(), "{sql}: {r:#?}");
    }
    // An enabled event trigger makes every DDL statement unprovable.
    exec(
        &pg,
        "app",
        "CREATE FUNCTION public.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
         CREATE EVENT TRIGGER on_ddl ON ddl_command_start EXECUTE FUNCTION public.on_ddl();",
    )
    .await;
    let r = refusals(&mut c, "ALTER TABLE plain ADD COLUMN extra int;").await;
    assert!(
        r[0].reasons[0].contains("event trigger(s) `on_ddl`"),
        "{r:#?}"
    );
    assert!(refusals(&mut c, "UPDATE plain SET v = 2;").await.is_empty());
    c.close().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_migration_is_still_rehearsed_in_place() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    let m = migration(
        "SET lock_timeout = '2s';
ALTER TABLE plain ADD COLUMN extra int;
CREATE INDEX plain_v_idx ON plain (v);
ALTER TABLE plain ALTER COLUMN v SET NOT NULL;
UPDATE plain SET note = 'n' WHERE note IS NULL;
",
    );
    let before = state(&pg, "/nonexistent").await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let res = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::InPlace,
        lock_budget: Some(std::time::Duration::from_millis(500)),
        ..Default::default()
    })
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
    assert_eq!(r.mode, RehearsalMode::InPlace, "{r:#?}");
    assert!(r.in_place_refused.is_empty(), "{r:#?}");
    assert!(r.target.contains("/app"), "{}", r.target);
    for s in &r.statements {
        assert_eq!(s.outcome, StatementOutcome::Succeeded, "{s:#?}");
    }
    assert_eq!(
        state(&pg, "/nonexistent").await,
        before,
        "the target changed"
    );
    assert!(leftover_sessions(&pg).await.is_empty());
    assert_eq!(foreign_locks(&pg, "app").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_place_transaction_is_read_write_and_bounded_for_itself_only() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    // The database defaults to read-only transactions: the rehearsal's own transaction is
    // read-write, and the setting stays as it was for everybody else.
    exec(
        &pg,
        "postgres",
        "ALTER DATABASE app SET default_transaction_read_only = on",
    )
    .await;
    // Each statement records the settings it ran under into a temporary table (dropped with the
    // rollback): a SELECT into a table created by the migration.
    let m = migration(
        "CREATE TABLE seen (k text, v text);
INSERT INTO seen SELECT name, setting FROM pg_settings
 WHERE name IN ('default_transaction_read_only', 'idle_in_transaction_session_timeout',
                'lock_timeout', 'transaction_read_only');
ALTER TABLE seen ADD CONSTRAINT ro_off CHECK (k <> 'transaction_read_only' OR v = 'off');
ALTER TABLE seen ADD CONSTRAINT idle CHECK (k <> 'idle_in_transaction_session_timeout' OR v = '5500');
ALTER TABLE seen ADD CONSTRAINT lock CHECK (k <> 'lock_timeout' OR v = '500');
",
    );
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let res = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::InPlace,
        lock_budget: Some(std::time::Duration::from_millis(500)),
        ..Default::default()
    })
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
    assert_eq!(r.mode, RehearsalMode::InPlace, "{r:#?}");
    for s in &r.statements {
        assert_eq!(s.outcome, StatementOutcome::Succeeded, "{s:#?}");
    }
    let mut c = conn(&pg, "app").await;
    let ro: String = sqlx::query_scalar("SHOW default_transaction_read_only")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(ro, "on");
    let seen: Option<String> = sqlx::query_scalar("SELECT to_regclass('tenant_ip.seen')::text")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(seen, None, "the rehearsal's table survived");
    c.close().await.ok();
}

/// Code the migration itself defines is not in the shard's catalog when the statements are
/// classified: a function it creates, replaces or renames, an operator or cast over such a
/// function, and defaults or triggers a new table copies from an existing one must not let a
/// later statement reach a sequence (or anything else a rollback does not undo).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_the_migration_defines_is_not_trusted() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    exec(
        &pg,
        "app",
        "CREATE FUNCTION tenant_ip.stable_f(int) RETURNS int LANGUAGE sql STABLE AS 'SELECT $1';
         CREATE VIEW tenant_ip.v_touch AS SELECT tenant_ip.touch(1) AS t;
         CREATE EXTENSION file_fdw;
         CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
         CREATE TABLE tenant_ip.logs (x text) PARTITION BY LIST (x);
         CREATE FOREIGN TABLE tenant_ip.logs_f PARTITION OF tenant_ip.logs FOR VALUES IN ('a')
           SERVER files OPTIONS (program 'true');
         CREATE TABLE tenant_ip.parted (k int, v int) PARTITION BY RANGE (k);
         CREATE TRIGGER parted_t BEFORE INSERT ON tenant_ip.parted FOR EACH ROW EXECUTE FUNCTION tenant_ip.audit();",
    )
    .await;
    let evil = "LANGUAGE plpgsql AS $$ BEGIN PERFORM setval('tenant_ip.items_id_seq', 1000); RETURN 1; END $$";
    let attacks: Vec<(String, &str)> = vec![
        // An overload in the shard schema wins over pg_catalog's for its argument type.
        (
            format!("CREATE FUNCTION lower(int) RETURNS int {evil};\nSELECT lower(1);"),
            "line 1",
        ),
        // A STABLE function of the shard replaced by one that is STABLE only by its word.
        (
            format!(
                "CREATE OR REPLACE FUNCTION stable_f(int) RETURNS int STABLE {evil};\nSELECT stable_f(1);"
            ),
            "line 1",
        ),
        // A VOLATILE function renamed to an overload of a harmless name.
        (
            "ALTER FUNCTION touch(int) RENAME TO lower;\nSELECT lower(1);".to_string(),
            "line 1",
        ),
        // An operator calls its function without naming it.
        (
            format!(
                "CREATE FUNCTION evil(int, int) RETURNS int {evil};\nCREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = evil);\nSELECT 1 ### 2;"
            ),
            "line 2",
        ),
        // A cast too.
        (
            "CREATE TYPE mood AS ENUM ('a');\nCREATE FUNCTION evil(int) RETURNS mood LANGUAGE plpgsql AS $$ BEGIN PERFORM setval('tenant_ip.items_id_seq', 1000); RETURN 'a'; END $$;\nCREATE CAST (int AS mood) WITH FUNCTION evil(int);\nSELECT 1::mood;"
                .to_string(),
            "line 3",
        ),
        // A new table copying the serial default of `items`.
        (
            "CREATE TABLE copy (LIKE items INCLUDING DEFAULTS);\nINSERT INTO copy (v) VALUES (1);"
                .to_string(),
            "nextval",
        ),
        // A child inherits the defaults.
        (
            "CREATE TABLE kid () INHERITS (items);\nINSERT INTO kid (v) VALUES (1);".to_string(),
            "nextval",
        ),
        // A foreign key the migration adds makes a delete reach the referencing table: its
        // ON DELETE SET DEFAULT evaluates the serial default of `items`.
        (
            "ALTER TABLE items ADD CONSTRAINT x FOREIGN KEY (id) REFERENCES plain (k) ON DELETE SET DEFAULT NOT VALID;\nDELETE FROM plain WHERE k = 1;"
                .to_string(),
            "line 1",
        ),
        (
            "ALTER TABLE child ADD FOREIGN KEY (k) REFERENCES plain (k) ON DELETE CASCADE NOT VALID;\nTRUNCATE plain CASCADE;"
                .to_string(),
            "line 1",
        ),
        // A view the migration creates over a view of the shard runs that view's functions.
        (
            "CREATE VIEW w AS SELECT * FROM v_touch;\nSELECT * FROM w;".to_string(),
            "line 1",
        ),
        // After a swap of names, `plain` is the table with the serial.
        (
            "ALTER TABLE plain RENAME TO plain_old;\nALTER TABLE items RENAME TO plain;\nINSERT INTO plain (v) VALUES (1);"
                .to_string(),
            "line 2",
        ),
        (
            "CREATE SCHEMA moved;\nALTER TABLE plain SET SCHEMA moved;\nALTER TABLE items SET SCHEMA public;\nALTER TABLE public.items RENAME TO plain;\nINSERT INTO plain (v) VALUES (1);"
                .to_string(),
            "line 4",
        ),
        // A foreign table the migration creates runs a program when read (file_fdw).
        (
            "CREATE FOREIGN TABLE f (x text) SERVER files OPTIONS (program 'true');\nSELECT * FROM f;"
                .to_string(),
            "line 1",
        ),
        // A foreign partition of the shard is read with its parent.
        ("SELECT count(*) FROM logs;".to_string(), "`tenant_ip.logs_f`"),
        (
            "CREATE TABLE p2 (k int, v int);\nALTER TABLE parted ATTACH PARTITION p2 FOR VALUES FROM (0) TO (10);\nSELECT * FROM parted;"
                .to_string(),
            "line 2",
        ),
        // A partition inherits the parent's row triggers.
        (
            "CREATE TABLE part1 PARTITION OF parted FOR VALUES FROM (0) TO (10);\nINSERT INTO part1 VALUES (1, 1);"
                .to_string(),
            "parted_t",
        ),
    ];
    let mut c = shard_conn(&pg).await;
    let mut failures = Vec::new();
    for (sql, why) in &attacks {
        let r = refusals(&mut c, sql).await;
        let last = sql.lines().count() as u32;
        let hit = r
            .iter()
            .any(|x| x.line == last && x.reasons.iter().any(|s| s.contains(why)));
        if !hit {
            failures.push(format!(
                "{sql}\n  expected line {last} refused with {why:?}, got {r:#?}"
            ));
        }
    }
    c.close().await.ok();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Through the simulator: the sequence the shadowing overload would reset is untouched.
    let before = state(&pg, "/nonexistent").await;
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let res = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::InPlace,
        calibrate: false,
        ..Default::default()
    })
    .run(
        &migration(&attacks[0].0),
        &fleet,
        None,
        &simulator::NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("run");
    assert_eq!(
        state(&pg, "/nonexistent").await,
        before,
        "the target changed"
    );
    let r = res.rehearsals.values().next().unwrap();
    assert_eq!(r.mode, RehearsalMode::Shadow, "{r:#?}");
}

/// A call hidden from the parser by lexing the migration's text differently than the server:
/// with `standard_conforming_strings` off, the server reads `\'` inside a string as a quote, so
/// `setval` below is code to the server and a string to the parser. Neither the migration (a
/// `SET`) nor the database's default may switch it off for the in-place rehearsal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_hidden_by_string_escapes_does_not_run_in_place() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    let hidden = "SELECT 'x\\', ' AS a, setval(c.oid, 1000) AS b, ' AS z -- '
  FROM pg_class c WHERE c.relkind = 'S';
";
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    for (sql, database_default) in [
        (
            format!("SET standard_conforming_strings = off;\n{hidden}"),
            false,
        ),
        (format!("SET NAMES 'SJIS';\n{hidden}"), false),
        (format!("RESET ALL;\n{hidden}"), true),
        (hidden.to_string(), true),
    ] {
        if database_default {
            exec(
                &pg,
                "postgres",
                "ALTER DATABASE app SET standard_conforming_strings = off",
            )
            .await;
        }
        let before = state(&pg, "/nonexistent").await;
        let res = Simulator::new(SimOptions {
            rehearsal: RehearsalMode::InPlace,
            calibrate: false,
            ..Default::default()
        })
        .run(
            &migration(&sql),
            &fleet,
            None,
            &simulator::NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
        let r = res.rehearsals.values().next().unwrap();
        assert_eq!(
            state(&pg, "/nonexistent").await,
            before,
            "the target changed: {sql}\n{r:#?}"
        );
        if sql != hidden {
            assert_eq!(r.mode, RehearsalMode::Shadow, "{sql}");
            assert!(
                r.in_place_refused[0].reasons[0].contains("how the server reads later statements"),
                "{r:#?}"
            );
        }
    }
}

/// `TRUNCATE … RESTART IDENTITY` restarts the sequences transactionally: it runs in place and
/// leaves the target's sequences (a `serial`'s and an identity's) as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_restarts_run_in_place_and_are_rolled_back() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", SETUP).await;
    exec(
        &pg,
        "app",
        "INSERT INTO tenant_ip.ident (v) VALUES (1), (2)",
    )
    .await;
    let ident = |pg| async move {
        let mut c = conn(pg, "app").await;
        let v: (i64, bool) =
            sqlx::query_as("SELECT last_value, is_called FROM tenant_ip.ident_id_seq")
                .fetch_one(&mut c)
                .await
                .unwrap();
        c.close().await.ok();
        v
    };
    let before = (state(&pg, "/nonexistent").await, ident(&pg).await);
    let m = migration("TRUNCATE items, ident RESTART IDENTITY;\n");
    let fleet = fleet(&[&pg], &[(0, "app", SCHEMA)]);
    let res = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::InPlace,
        calibrate: false,
        ..Default::default()
    })
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
    assert_eq!(r.mode, RehearsalMode::InPlace, "{r:#?}");
    for s in &r.statements {
        assert_eq!(s.outcome, StatementOutcome::Succeeded, "{s:#?}");
    }
    assert_eq!(
        (state(&pg, "/nonexistent").await, ident(&pg).await),
        before,
        "the target changed"
    );
}
