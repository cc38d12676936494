//! Custom SQL probe rules (`[[custom_rules]] kind = "probe"`) never change the target and never
//! expose a credential, through the real `deployclaw` binary against a fixture fleet on an
//! ephemeral PostgreSQL this test starts.
//!
//! Every hostile probe is refused with exit 3 and the config file's line and column of the
//! offending place inside its `sql`: names the static check knows (replication slots, statistics
//! resets, ending sessions, advisory locks, credential catalogs, server files, large objects,
//! writes, row locks, `SELECT INTO`, XML table dumps) when the file is read, and a user-defined
//! `VOLATILE` function that shadows a harmless one on one shard only, and a view that hides
//! `pg_authid`, by the pre-flight on the shard, before any custom probe ran anywhere (the target's statement log shows no probe). The
//! target is unchanged afterwards: catalog and table contents, replication slots,
//! `pg_stat_database.stats_reset`, a session the test holds, advisory locks; no SCRAM verifier
//! in any output. An honest probe (a count of NULLs) still runs and its rule fires.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::fingerprint_db;
use sqlx::{Connection, PgConnection};
use topology::fixture::{FixtureSpec, start_fleet};

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/migrations/schema_v42.sql"
);

/// A password whose SCRAM verifier sits in `pg_authid` on the target.
const ROLE_PASSWORD: &str = "correct-horse-battery-staple";

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .env_remove("PGUSER")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGDATABASE")
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A config file with one probe rule whose `sql` value is written as `sql` (TOML, quotes
/// included).
fn config(name: &str, sql: &str) -> String {
    format!(
        "# deployclaw configuration\n\n[[custom_rules]]\nkind = \"probe\"\nname = \"{name}\"\ncode = \"ACME100\"\nseverity = \"yellow\"\nsql = {sql}\nmessage = \"{{rows}} row(s) in {{schema}}\"\n"
    )
}

/// What the target looks like, for before/after comparison.
#[derive(Debug, PartialEq)]
struct TargetState {
    contents: String,
    replication_slots: i64,
    stats_reset: Option<String>,
    advisory_locks: i64,
    large_objects: i64,
}

async fn state(c: &mut PgConnection, spec: &topology::ConnectionSpec) -> TargetState {
    let (replication_slots, stats_reset, advisory_locks, large_objects): (
        i64,
        Option<String>,
        i64,
        i64,
    ) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_replication_slots),
                (SELECT stats_reset::text FROM pg_stat_database WHERE datname = 'app'),
                (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'),
                (SELECT count(*) FROM pg_largeobject_metadata)",
    )
    .fetch_one(c)
    .await
    .unwrap();
    TargetState {
        contents: fingerprint_db(spec).await,
        replication_slots,
        stats_reset,
        advisory_locks,
        large_objects,
    }
}

fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if p.is_file() {
            out.push((
                p.display().to_string(),
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
            ));
        }
    }
    out
}

fn assert_no_verifier(what: &str, haystacks: &[(String, String)]) {
    for (name, h) in haystacks {
        assert!(
            !h.contains("SCRAM-SHA-256$") && !h.contains(ROLE_PASSWORD),
            "{what}: `{name}` contains a password verifier"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_probes_are_refused_and_the_target_is_unchanged() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 2,
            rows: 40,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let pg = &fx.clusters[0];
    let spec = pg.connection_spec();
    let url = format!("postgres://postgres@127.0.0.1:{}/app", pg.port());
    let mut admin = PgConnection::connect_with(&pg.connect_options("app"))
        .await
        .unwrap();
    for sql in [
        // A SCRAM verifier to steal, statistics to reset (stats_reset is set once), NULLs for
        // the honest probe on tenant 1 only, and every statement of the target in its log.
        format!("CREATE ROLE app_secret LOGIN PASSWORD '{ROLE_PASSWORD}'"),
        "SELECT pg_stat_reset()".into(),
        "UPDATE tenant_0001.payments SET paid_at = NULL WHERE id <= 3".into(),
        "ALTER DATABASE app SET log_statement = 'all'".into(),
        // `bump()` is a harmless STABLE function in `public`, shadowed on tenant 2 only by a
        // VOLATILE one that writes.
        "CREATE TABLE public.audit (id serial PRIMARY KEY, at timestamptz DEFAULT now())".into(),
        // A view that hides the verifiers behind an innocent name.
        "CREATE VIEW public.team AS SELECT rolname AS member, rolpassword AS badge FROM pg_authid"
            .into(),
        "CREATE FUNCTION public.bump() RETURNS int LANGUAGE sql STABLE AS 'SELECT 0'".into(),
        "CREATE FUNCTION tenant_0002.bump() RETURNS int LANGUAGE plpgsql VOLATILE AS \
         $$BEGIN INSERT INTO public.audit DEFAULT VALUES; RETURN 1; END$$"
            .into(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    // A session the application holds: a hostile probe would end it.
    let mut app = PgConnection::connect_with(&pg.connect_options("app"))
        .await
        .unwrap();
    let app_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut app)
        .await
        .unwrap();
    let before = state(&mut admin, &spec).await;
    assert!(before.stats_reset.is_some());

    let dir = tempfile::tempdir().unwrap();
    let sql_file = dir.path().join("schema_v42.sql");
    std::fs::copy(EXAMPLE, &sql_file).unwrap();
    let validate = |cfg: &str, report: &str| {
        let mut c = bin(dir.path());
        c.args(["validate-migration", "--sql-file", "schema_v42.sql"])
            .args(["--target-db", &url, "--tenant-schemas", "tenant_*"])
            .args(["--lock-budget-ms", "5000", "--format", "json"])
            .args(["--config", cfg, "--report-dir", report]);
        c.output().expect("run deployclaw")
    };

    let hostile: Vec<(&str, String)> = vec![
        (
            "replication-slot",
            r#""SELECT pg_create_physical_replication_slot('deployclaw_evil')""#.into(),
        ),
        ("stats-reset", r#""SELECT 1 WHERE pg_stat_reset() IS NULL""#.into()),
        (
            "terminate-backend",
            format!("\"SELECT pg_terminate_backend({app_pid})\""),
        ),
        (
            "advisory-lock",
            "'''\nSELECT id\n  FROM {schema}.payments\n WHERE pg_advisory_lock(42) IS NOT NULL'''"
                .into(),
        ),
        (
            "read-authid",
            r#""SELECT rolname, rolpassword FROM pg_authid""#.into(),
        ),
        (
            "read-shadow",
            r#""SELECT usename, passwd FROM pg_catalog.pg_shadow""#.into(),
        ),
        (
            "xml-dump-authid",
            r#""SELECT table_to_xml('pg_authid', true, false, '')""#.into(),
        ),
        (
            "read-file",
            r#""SELECT pg_read_file('postgresql.auto.conf')""#.into(),
        ),
        ("large-object", r#""SELECT lo_get(16385)""#.into()),
        (
            "data-modifying-cte",
            r#""WITH gone AS (DELETE FROM {schema}.payments RETURNING id) SELECT count(*) FROM gone""#
                .into(),
        ),
        (
            "for-update",
            r#""SELECT id FROM {schema}.payments FOR UPDATE""#.into(),
        ),
        (
            "select-into",
            r#""SELECT * INTO {schema}.stolen FROM {schema}.payments""#.into(),
        ),
        (
            "view-over-authid",
            r#""SELECT count(*) AS n, min(badge) FROM {schema}.payments, team""#.into(),
        ),
        (
            "volatile-function",
            "\"\"\"\nSELECT count(*) AS n\n  FROM {schema}.payments\n WHERE bump() > 0\"\"\"".into(),
        ),
    ];
    let mut transcript = Vec::new();
    for (name, sql) in &hostile {
        let cfg = format!("{name}.toml");
        std::fs::write(dir.path().join(&cfg), config(name, sql)).unwrap();
        let report = format!("report-{name}");
        let o = validate(&cfg, &report);
        let (stdout, stderr) = text(&o);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{name}: exit 3; stderr:\n{stderr}"
        );
        let error = stderr
            .lines()
            .find(|l| l.starts_with(&format!("deployclaw: {cfg}:")))
            .unwrap_or_else(|| {
                panic!("{name}: the error names the config file and position:\n{stderr}")
            })
            .to_string();
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let mut outputs = files_under(&dir.path().join(&report));
        outputs.push(("stdout".into(), stdout));
        outputs.push(("stderr".into(), stderr.clone()));
        assert_no_verifier(name, &outputs);
        transcript.push(format!("## {name}\n{error}"));
    }
    // The same refusal through `lint --config`.
    let o = bin(dir.path())
        .args(["lint", "--config", "read-authid.toml", "schema_v42.sql"])
        .output()
        .unwrap();
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(3), "lint: {stderr}");
    transcript.push(format!("## lint read-authid\n{}", stderr.trim_end()));
    insta::assert_snapshot!(
        transcript
            .join("\n\n")
            .replace(&app_pid.to_string(), "[pid]")
            .replace(&format!("127.0.0.1:{}", pg.port()), "[host]")
    );

    // No custom probe ran anywhere: the target logged every statement, and none is a probe.
    let log = std::fs::read_to_string(pg.log_path()).unwrap();
    assert!(
        !log.contains("to_jsonb(q)"),
        "a custom probe ran on the target before the refusal"
    );

    // The target is exactly as before; the application's session is alive.
    let after = state(&mut admin, &spec).await;
    assert_eq!(after, before, "a hostile probe changed the target");
    let still: i32 = sqlx::query_scalar("SELECT 7")
        .fetch_one(&mut app)
        .await
        .expect("the application's session survived");
    assert_eq!(still, 7);
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM public.audit")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(audit, 0);

    // An honest probe still runs on every shard, and its rule fires where the NULLs are.
    let honest = config(
        "unpaid-payments",
        r#""SELECT count(*) AS nulls FROM {schema}.payments WHERE paid_at IS NULL HAVING count(*) > 0""#,
    );
    std::fs::write(dir.path().join("honest.toml"), honest).unwrap();
    let o = validate("honest.toml", "report-honest");
    let (stdout, stderr) = text(&o);
    assert!(
        matches!(o.status.code(), Some(0..=2)),
        "honest probe: gate verdict; stderr:\n{stderr}"
    );
    let j: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let fired: Vec<(String, serde_json::Value)> = j["shards"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["findings"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["rule"] == "unpaid-payments")
                .map(|f| {
                    (
                        s["shard"].as_str().unwrap().to_string(),
                        f["evidence"].clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(fired.len(), 1, "fires on tenant 1 only: {fired:?}");
    assert!(fired[0].0.ends_with("tenant_0001"), "{fired:?}");
    assert_eq!(fired[0].1["rows"][0]["nulls"], 3, "{fired:?}");
    let log = std::fs::read_to_string(pg.log_path()).unwrap();
    assert!(
        log.contains("to_jsonb(q)"),
        "the honest probe ran (and is logged)"
    );
    let mut outputs = files_under(&dir.path().join("report-honest"));
    assert!(!outputs.is_empty());
    outputs.push(("stdout".into(), stdout));
    outputs.push(("stderr".into(), stderr));
    assert_no_verifier("honest run", &outputs);
    assert_eq!(state(&mut admin, &spec).await, before);
    drop(app);
}
