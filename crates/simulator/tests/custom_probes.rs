//! Custom SQL probes: rows as JSON (at most 5, truncation flagged), errors as outcomes that do
//! not disturb the other probes, one statement only; a probe that could change the shard is
//! refused (statically, or by the pre-flight on the shard) before any probe runs anywhere.

mod common;

use common::*;
use serde_json::json;
use simulator::{
    CancelToken, CustomProbe, NoProgress, ProbeKind, RehearsalMode, SimError, SimOptions, Simulator,
};

const HOSTILE: &str = "te\"nant; DROP TABLE x; --";

fn schema_sql(schema: &str) -> String {
    let s = simulator::quote_ident(schema);
    format!(
        "CREATE SCHEMA {s};
         CREATE TABLE {s}.items (id int PRIMARY KEY, price int);
         INSERT INTO {s}.items VALUES (1, 10), (2, -1), (3, -5), (4, NULL), (5, 0), (6, 7), (7, 8);"
    )
}

const MIGRATION: &str = "ALTER TABLE items ADD CONSTRAINT price_positive CHECK (price >= 0);\n";

fn probes() -> Vec<CustomProbe> {
    vec![
        CustomProbe::new(
            "negatives",
            "SELECT id, price FROM {schema}.items WHERE price < 0 ORDER BY id;",
        ),
        CustomProbe::new("broken", "SELECT nope FROM {schema}.items"),
        // Far longer than the 1 s probe timeout.
        CustomProbe::new(
            "slow",
            "SELECT count(*) AS n FROM generate_series(1, 1000000000) g",
        ),
        // Unqualified: resolves through the shard's search_path.
        CustomProbe::new(
            "all-items",
            "SELECT id FROM items ORDER BY id -- all of them",
        ),
        CustomProbe::new("nothing", "SELECT 1 AS x WHERE false"),
        // Keyword expressions the parser reports as calls but pg_proc does not hold.
        CustomProbe::new(
            "keywords",
            "SELECT coalesce(price, 0) AS p, greatest(id, 0) AS g, nullif(id, 1) AS n, \
             current_date IS NOT NULL AS d, current_user IS NOT NULL AS u, \
             array(SELECT 1) AS a FROM {schema}.items WHERE id = 4",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_probes_return_rows_and_errors_per_shard() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(&pg, "app", &schema_sql(HOSTILE)).await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a"), (0, "app", HOSTILE)]);
    let m = migration(MIGRATION);
    let sim = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        probe_timeout: std::time::Duration::from_secs(1),
        custom_probes: probes(),
        ..Default::default()
    });
    let res = sim
        .run(&m, &fleet, None, &NoProgress, &CancelToken::new())
        .await
        .expect("run");
    assert_eq!(res.shards.len(), 2);
    for ev in &res.shards {
        assert!(
            ev.unreachable.is_none() && ev.incomplete.is_none(),
            "{ev:#?}"
        );
        let c = &ev.custom_probes;
        assert_eq!(c.len(), 6, "{c:#?}");
        assert_eq!(
            c["keywords"].rows,
            vec![json!({"p": 0, "g": 4, "n": 4, "d": true, "u": true, "a": [1]})],
            "{:?}",
            c["keywords"]
        );

        let neg = &c["negatives"];
        assert_eq!(
            neg.rows,
            vec![json!({"id": 2, "price": -1}), json!({"id": 3, "price": -5})]
        );
        assert!(!neg.truncated && neg.error.is_none());

        let broken = c["broken"].error.as_ref().expect("broken probe fails");
        assert_eq!(broken.sqlstate.as_deref(), Some("42703"), "{broken:?}");
        assert!(c["broken"].rows.is_empty());

        let slow = c["slow"].error.as_ref().expect("slow probe times out");
        assert_eq!(slow.sqlstate.as_deref(), Some("57014"), "{slow:?}");

        let all = &c["all-items"];
        assert!(all.error.is_none(), "{all:?}");
        assert_eq!(
            all.rows,
            (1..=5).map(|i| json!({ "id": i })).collect::<Vec<_>>()
        );
        assert!(all.truncated);

        assert!(c["nothing"].rows.is_empty() && !c["nothing"].truncated);
        assert!(c["nothing"].error.is_none());

        // The built-in probes ran as usual.
        let check = ev
            .probes
            .iter()
            .find(|p| p.kind == ProbeKind::CheckViolations)
            .expect("check probe");
        assert_eq!((check.count, check.error.as_ref()), (2, None), "{check:#?}");
    }
    // The target is unchanged.
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenant_a.items")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert_eq!(n, 7);

    // Evidence round-trips; older evidence without the field still reads.
    let ev = &res.shards[0];
    let back: simulator::ShardEvidence =
        serde_json::from_value(serde_json::to_value(ev).expect("to json")).expect("from json");
    assert_eq!(&back, ev);
    let mut old = serde_json::to_value(ev).expect("to json");
    old.as_object_mut().expect("object").remove("custom_probes");
    let old: simulator::ShardEvidence = serde_json::from_value(old).expect("old evidence");
    assert!(old.custom_probes.is_empty());
}

#[tokio::test]
async fn duplicate_custom_probe_names_are_invalid_options() {
    let fleet = topology::Fleet::default();
    let sim = Simulator::new(SimOptions {
        custom_probes: vec![
            CustomProbe::new("p", "SELECT 1"),
            CustomProbe::new("p", "SELECT 2"),
        ],
        ..Default::default()
    });
    let r = sim
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await;
    assert!(matches!(r, Err(SimError::InvalidOptions { .. })), "{r:?}");
}

/// Probes that could change the shard (or break out of the wrapping query) are refused before
/// anything connects: `Err(UnsafeCustomProbe)` with the place in the template.
#[tokio::test]
async fn hostile_probes_are_refused_statically() {
    let fleet = topology::Fleet::default();
    for (probe, needle, at) in [
        (
            CustomProbe::new(
                "hijack",
                "SELECT set_config('search_path', 'pg_catalog', true) AS sp",
            ),
            "set_config",
            (1, 8),
        ),
        (
            CustomProbe::new(
                "injection",
                "SELECT 1) AS q; DELETE FROM {schema}.items; SELECT (1",
            ),
            "does not parse",
            (1, 9),
        ),
        (
            CustomProbe::new("sleepy", "SELECT 1\n  WHERE pg_sleep(30) IS NULL"),
            "pg_sleep",
            (2, 9),
        ),
    ] {
        let sim = Simulator::new(SimOptions {
            custom_probes: vec![CustomProbe::new("fine", "SELECT 1"), probe.clone()],
            ..Default::default()
        });
        let r = sim
            .run(
                &migration(MIGRATION),
                &fleet,
                None,
                &NoProgress,
                &CancelToken::new(),
            )
            .await;
        match r {
            Err(SimError::UnsafeCustomProbe {
                probe: name,
                shard: None,
                line,
                column,
                reason,
            }) => {
                assert_eq!(name, probe.name);
                assert!(reason.contains(needle), "{}: {reason}", probe.name);
                assert_eq!((line, column), at, "{}: {reason}", probe.name);
            }
            other => panic!("{}: {other:?}", probe.name),
        }
    }
}

/// A function name that resolves, on one shard only, to a user-defined VOLATILE function that
/// writes stops the whole run in the pre-flight: no custom probe ran on any shard (not even the
/// shard where the name is harmless), and the refusal names the shard and the place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volatile_function_on_one_shard_stops_every_probe() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(&pg, "app", &schema_sql("tenant_b")).await;
    exec(
        &pg,
        "app",
        "CREATE TABLE public.calls (n int);
         CREATE FUNCTION public.tally() RETURNS int LANGUAGE sql STABLE AS 'SELECT 0';
         CREATE FUNCTION tenant_b.tally() RETURNS int LANGUAGE plpgsql VOLATILE AS
           $$BEGIN INSERT INTO public.calls VALUES (1); RETURN 1; END$$;
         ALTER DATABASE app SET log_statement = 'all';",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a"), (0, "app", "tenant_b")]);
    let probe = |sql: &str| {
        Simulator::new(SimOptions {
            rehearsal: RehearsalMode::Skip,
            custom_probes: vec![
                CustomProbe::new("negatives", "SELECT id FROM {schema}.items WHERE price < 0"),
                CustomProbe::new("tally", sql),
            ],
            ..Default::default()
        })
    };
    let r = probe("SELECT id\n  FROM {schema}.items WHERE tally() = 0")
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await;
    match r {
        Err(SimError::UnsafeCustomProbe {
            probe,
            shard: Some(shard),
            line,
            column,
            reason,
        }) => {
            assert_eq!(probe, "tally");
            assert!(shard.ends_with("tenant_b"), "{shard}");
            assert!(
                reason.contains("tenant_b.tally") && reason.contains("VOLATILE"),
                "{reason}"
            );
            assert_eq!((line, column), (2, 29));
        }
        other => panic!("{other:?}"),
    }
    // A qualified call of a function that does not exist is not proven either.
    let r = probe("SELECT {schema}.nope()")
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await;
    assert!(
        matches!(&r, Err(SimError::UnsafeCustomProbe { reason, .. }) if reason.contains("does not exist")),
        "{r:?}"
    );
    let log = std::fs::read_to_string(pg.log_path()).expect("server log");
    assert!(
        !log.contains("to_jsonb(q)"),
        "a custom probe ran before the refusal"
    );
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM public.calls")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert_eq!(n, 0);

    // The harmless STABLE one alone runs on both shards (and is logged: the log check above
    // would have seen a probe).
    let res = probe("SELECT id FROM {schema}.items WHERE public.tally() = 0 AND price IS NULL")
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await
        .expect("run");
    for ev in &res.shards {
        assert_eq!(
            ev.custom_probes["tally"].rows,
            vec![json!({"id": 4})],
            "{ev:#?}"
        );
    }
    let log = std::fs::read_to_string(pg.log_path()).expect("server log");
    assert!(log.contains("to_jsonb(q)"));
}

/// Views hide what they call: a view (or a view of a view) whose definition calls a refused
/// function, uses an operator whose function is VOLATILE, or reads `pg_authid`, is refused like
/// the call itself, at the place the probe names the view; a harmless view and system views
/// (judged by name, not opened) run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_opened_up() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(
        &pg,
        "app",
        "CREATE VIEW tenant_a.cheap AS SELECT id FROM tenant_a.items WHERE price < 0;
         CREATE VIEW tenant_a.locking AS
           SELECT id FROM tenant_a.items WHERE pg_try_advisory_lock(id) OR true;
         CREATE VIEW tenant_a.nested AS SELECT * FROM tenant_a.locking;
         CREATE VIEW public.roles_v AS SELECT rolname, rolpassword FROM pg_catalog.pg_authid;
         CREATE TABLE public.calls (n int);
         CREATE FUNCTION public.noisy_eq(int, int) RETURNS bool LANGUAGE plpgsql VOLATILE AS
           $$BEGIN INSERT INTO public.calls VALUES ($1); RETURN $1 = $2; END$$;
         CREATE OPERATOR public.=== (FUNCTION = public.noisy_eq, LEFTARG = int, RIGHTARG = int);
         CREATE VIEW tenant_a.op AS SELECT id FROM tenant_a.items WHERE id OPERATOR(public.===) 1;",
    )
    .await;
    let fleet = &fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let run = |sql: &str| {
        let sim = Simulator::new(SimOptions {
            rehearsal: RehearsalMode::Skip,
            custom_probes: vec![CustomProbe::new("p", sql)],
            ..Default::default()
        });
        async move {
            sim.run(
                &migration(MIGRATION),
                fleet,
                None,
                &NoProgress,
                &CancelToken::new(),
            )
            .await
        }
    };
    for (sql, needle, at) in [
        (
            "SELECT id FROM {schema}.locking",
            "pg_try_advisory_lock",
            (1, 16),
        ),
        ("SELECT 1 AS x\nFROM nested", "pg_try_advisory_lock", (2, 6)),
        ("SELECT count(*) FROM roles_v", "pg_authid", (1, 22)),
        ("SELECT id FROM {schema}.op", "noisy_eq", (1, 16)),
    ] {
        match run(sql).await {
            Err(SimError::UnsafeCustomProbe {
                line,
                column,
                reason,
                ..
            }) => {
                assert!(reason.contains(needle), "{sql}: {reason}");
                assert!(reason.starts_with("reads the view"), "{sql}: {reason}");
                assert_eq!((line, column), at, "{sql}: {reason}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
    // System views are judged by name, not opened (pg_roles reads pg_authid but masks it).
    let res = run(
        "SELECT count(*) AS n FROM pg_roles r, information_schema.tables t \
         WHERE r.rolname = 'postgres' AND t.table_schema = 'tenant_a' AND t.table_name = 'items'",
    )
    .await
    .expect("system views");
    assert_eq!(res.shards[0].custom_probes["p"].rows, vec![json!({"n": 1})]);
    let res = run("SELECT id FROM {schema}.cheap ORDER BY id")
        .await
        .expect("harmless view");
    assert_eq!(
        res.shards[0].custom_probes["p"].rows,
        vec![json!({"id": 2}), json!({"id": 3})]
    );
    let mut c = conn(&pg, "app").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM public.calls")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert_eq!(n, 0);
}

/// The server reads a probe's strings as the check read them (standard strings), even where the
/// database defaults to `standard_conforming_strings = off`: there `'a\', f(), '\'` would be
/// one string to the check and a call to the server, or the reverse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_are_read_as_the_check_read_them() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(
        &pg,
        "app",
        "ALTER DATABASE app SET standard_conforming_strings = off",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    let res = Simulator::new(SimOptions {
        rehearsal: RehearsalMode::Skip,
        custom_probes: vec![CustomProbe::new("p", r"SELECT 'a\' AS s, 'b' AS t")],
        ..Default::default()
    })
    .run(
        &migration(MIGRATION),
        &fleet,
        None,
        &NoProgress,
        &CancelToken::new(),
    )
    .await
    .expect("run");
    let p = &res.shards[0].custom_probes["p"];
    assert_eq!(p.rows, vec![json!({"s": "a\\", "t": "b"})], "{p:?}");
}

/// Functions of common extensions run SQL handed to them as a string (`crosstab`,
/// `connectby` of `tablefunc`, declared STABLE), and settings can hold application secrets
/// (`ALTER DATABASE ... SET app.jwt_secret`): a probe may use neither to read credentials or
/// call what the check cannot see; nor read a foreign table (file_fdw runs a program). Refused before any probe runs; nothing secret in the result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_in_strings_and_settings_are_not_read() {
    let pg = start().await;
    create_db(&pg, "app").await;
    exec(&pg, "app", &schema_sql("tenant_a")).await;
    exec(
        &pg,
        "app",
        "CREATE EXTENSION tablefunc;
         CREATE EXTENSION postgres_fdw;
         CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw;
         CREATE USER MAPPING FOR postgres SERVER remote OPTIONS (user 'x', password 'hunter2-mapping');
         CREATE EXTENSION file_fdw;
         CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
         CREATE FOREIGN TABLE tenant_a.program_f (x text) SERVER files OPTIONS (program 'echo ran');
         CREATE TABLE tenant_a.logs (x text) PARTITION BY LIST (x);
         CREATE FOREIGN TABLE tenant_a.logs_f PARTITION OF tenant_a.logs FOR VALUES IN ('ran')
           SERVER files OPTIONS (program 'echo ran');
         CREATE VIEW tenant_a.v_logs AS SELECT * FROM tenant_a.logs;
         CREATE ROLE victim LOGIN PASSWORD 'hunter2-secret';
         ALTER DATABASE app SET app.jwt_secret = 'jwt-hunter2-secret';",
    )
    .await;
    let fleet = fleet(&[&pg], &[(0, "app", "tenant_a")]);
    for sql in [
        "SELECT * FROM crosstab('SELECT rolname::text, 1::text, rolpassword::text FROM pg_authid ORDER BY 1') AS ct(r text, p text)",
        "SELECT * FROM connectby('pg_authid', 'rolpassword', 'rolname', 'victim', 0) AS t(a text, b text, l int)",
        "SELECT current_setting('app.jwt_secret') AS s",
        "SELECT setting FROM pg_settings WHERE name = 'app.jwt_secret'",
        "SELECT setconfig::text FROM pg_db_role_setting",
        // information_schema shows user mappings' options, passwords included.
        "SELECT option_value FROM information_schema.user_mapping_options",
        "SELECT umoptions::text FROM information_schema._pg_user_mappings",
        // file_fdw runs a program when a foreign table is read: directly, as a partition, in a view.
        "SELECT * FROM {schema}.program_f",
        "SELECT * FROM logs",
        "SELECT * FROM {schema}.v_logs",
        // The catalog's name in a Unicode escape.
        "SELECT rolpassword FROM U&\"pg\\005fauthid\"",
        "SELECT rolpassword FROM pg_catalog.U&\"pg\\005fauthid\"",
    ] {
        let r = Simulator::new(SimOptions {
            rehearsal: RehearsalMode::Skip,
            custom_probes: vec![CustomProbe::new("leak", sql)],
            ..Default::default()
        })
        .run(
            &migration(MIGRATION),
            &fleet,
            None,
            &NoProgress,
            &CancelToken::new(),
        )
        .await;
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("SCRAM-SHA-256"),
            "{sql}: a secret reached the result"
        );
        assert!(
            matches!(&r, Err(SimError::UnsafeCustomProbe { .. })),
            "{sql}: {r:?}"
        );
    }
}
