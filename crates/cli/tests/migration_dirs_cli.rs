//! Migrations directories as input (issue 18): `deployclaw rollback prove DIR` replays a whole
//! history on a throw-away PostgreSQL and judges every down script; `validate-migration
//! --sql-file DIR` gates the newest migration (or `--migration NAME`) of any known layout and
//! proves its down script as the rollback. Real binary, real PostgreSQL; the target is
//! checksummed before and after.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::fingerprint_db;
use topology::fixture::{FixtureSpec, start_fleet};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let o: Output = c.output().expect("run deployclaw");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// A Diesel history: a table with a correct down, a column whose down forgets the index the
/// up made, and an index whose down script is empty.
fn diesel_history(dir: &Path) {
    write(
        dir,
        "2024-01-01-000000_create_notes/up.sql",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL);\n",
    );
    write(
        dir,
        "2024-01-01-000000_create_notes/down.sql",
        "DROP TABLE notes;\n",
    );
    write(
        dir,
        "2024-02-01-000000_add_author/up.sql",
        "ALTER TABLE notes ADD COLUMN author text;\nCREATE INDEX notes_author_idx ON notes (author);\n",
    );
    write(
        dir,
        "2024-02-01-000000_add_author/down.sql",
        "-- forgets the index, and the column stays\nDROP INDEX notes_author_idx;\n",
    );
    write(
        dir,
        "2024-03-01-000000_body_index/up.sql",
        "CREATE INDEX notes_body_idx ON notes (body);\n",
    );
    write(
        dir,
        "2024-03-01-000000_body_index/down.sql",
        "-- This file should undo anything in `up.sql`\n",
    );
}

#[test]
fn rollback_prove_judges_every_down_script_of_a_history() {
    let dir = tempfile::tempdir().unwrap();
    diesel_history(dir.path());

    let (code, out, err) = run(bin().args(["rollback", "prove"]).arg(dir.path()));
    assert_eq!(code, Some(2), "a refuted down script is RED\n{out}\n{err}");
    assert!(
        err.contains("3 migration(s)") && err.contains("Diesel"),
        "{err}"
    );
    insta::assert_snapshot!("rollback_prove_diesel_history", out);

    // Judged from the last migration on: its down script is empty, the generated rollback
    // restores the catalog.
    let (code, out, err) = run(bin()
        .args([
            "rollback",
            "prove",
            "--since",
            "2024-03-01-000000_body_index",
        ])
        .arg(dir.path()));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("down: none      generated: proven"), "{out}");
    assert!(
        !out.contains("add_author"),
        "earlier migrations are replayed, not judged: {out}"
    );

    let (code, out, _) = run(bin()
        .args(["rollback", "prove", "--format", "json"])
        .arg(dir.path()));
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON on stdout");
    assert_eq!(v["gate"], "red");
    assert_eq!(v["layout"], "Diesel");
    let downs: Vec<&str> = v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["down"].as_str().unwrap())
        .collect();
    assert_eq!(downs, ["proven", "refuted", "none"]);
    let details = v["migrations"][1]["details"].to_string();
    assert!(
        details.contains("author"),
        "names what the down script left: {details}"
    );
}

#[test]
fn rollback_prove_refuses_bad_input_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", "not a migration\n");
    let (code, _, err) = run(bin().args(["rollback", "prove"]).arg(dir.path()));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");

    let dir = tempfile::tempdir().unwrap();
    diesel_history(dir.path());
    let (code, _, err) = run(bin()
        .args(["rollback", "prove", "--since", "nope"])
        .arg(dir.path()));
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("--since nope") && err.contains("body_index"),
        "{err}"
    );

    let (code, _, err) = run(bin()
        .args(["rollback", "prove", "--setup-sql", "/nonexistent/setup.sql"])
        .arg(dir.path()));
    assert_eq!(code, Some(3), "{err}");
}

/// A Flyway directory: V1 adds a column with a correct undo script, V2 adds another whose
/// undo script does nothing.
fn flyway_dir(dir: &Path) {
    write(
        dir,
        "V1__add_note.sql",
        "ALTER TABLE users ADD COLUMN note text;\n",
    );
    write(
        dir,
        "U1__add_note.sql",
        "ALTER TABLE users DROP COLUMN note;\n",
    );
    write(
        dir,
        "V2__add_nickname.sql",
        "ALTER TABLE users ADD COLUMN nickname text;\n",
    );
    write(dir, "U2__add_nickname.sql", "SELECT 1;\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_migration_takes_a_directory_and_proves_its_down_script() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 2,
            rows: 20,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let pg = &fx.clusters[0];
    let spec = pg.connection_spec();
    let before = fingerprint_db(&spec).await;
    let url = format!("postgres://postgres@127.0.0.1:{}/app", pg.port());
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("db/migration");
    flyway_dir(&migrations);
    let validate = |extra: &[&str], report: &str| {
        let mut c = bin();
        c.args(["validate-migration", "--sql-file"])
            .arg(&migrations)
            .args(["--target-db", &url, "--tenant-schemas", "tenant_*"])
            .args(["--lock-budget-ms", "5000", "--report-dir"])
            .arg(dir.path().join(report))
            .args(extra);
        run(&mut c)
    };
    let report = |name: &str| -> serde_json::Value {
        let p = dir.path().join(name).join("report.json");
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
    };

    // The newest migration, V2: its undo script leaves the column → rollback-mismatch, RED.
    let (code, out, err) = validate(&[], "r2");
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(
        err.contains("migration 2 of 2") && err.contains("U2__add_nickname.sql"),
        "says what it picked: {err}"
    );
    let r = report("r2");
    assert!(
        r["migration"]["file"]
            .as_str()
            .unwrap()
            .ends_with("V2__add_nickname.sql"),
        "{}",
        r["migration"]
    );
    assert_eq!(r["rollback"]["source"], "user");
    let codes: Vec<String> = r["shards"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(codes.iter().any(|c| c == "rollback-mismatch"), "{codes:?}");

    // --migration 1: V1 with its correct undo script → proven.
    let (code, out, err) = validate(&["--migration", "1"], "r1");
    assert!(code == Some(0) || code == Some(1), "{out}\n{err}");
    let r = report("r1");
    assert_eq!(r["rollback"]["source"], "user");
    assert_eq!(
        r["safety_gates"]["rollback_tested"], true,
        "{}",
        r["rollback"]
    );
    assert!(
        r["rollback"]["script"]
            .as_str()
            .unwrap()
            .contains("DROP COLUMN note")
    );

    // Unknown name, and --migration without a directory: exit 3 before any connection.
    let (code, _, err) = validate(&["--migration", "V9"], "r9");
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("newest: V2__add_nickname"), "{err}");

    assert_eq!(fingerprint_db(&spec).await, before, "the target changed");
}
