//! Connection strings and credentials, through the real binary: every form a user may paste
//! (`postgress://` typos, other schemes, a leading space, libpq `key=value` pairs, a topology
//! file's `url`) into every command that takes one, with a unique password that must appear
//! nowhere in stdout or stderr; unparsable strings exit 3 before any connection, parsable ones
//! reach the connection. And the libpq password file (`~/.pgpass`, `PGPASSFILE`) against a
//! real PostgreSQL that requires `scram-sha-256` for the role: it alone authenticates
//! discovery, the probes and the `pg_dump` clone; a group-readable file is ignored with a
//! warning. The messages a user reads are snapshotted.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::fingerprint_db;
use topology::fixture::{FixtureSpec, start_fleet};

/// The password planted in every connection string; it must never be printed.
const PW: &str = "Zq7-LeakCheck-91x";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_deployclaw"));
    c.env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .env_remove("PGUSER")
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGDATABASE")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run deployclaw")
}

fn out_err(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_secret_free(what: &str, o: &Output, secrets: &[&str]) {
    let (out, err) = out_err(o);
    for s in secrets {
        assert!(
            !out.contains(s),
            "{what}: stdout shows the password:\n{out}"
        );
        assert!(
            !err.contains(s),
            "{what}: stderr shows the password:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Every command that takes a connection string, with `target` in its place. `topology` is a
/// topology file whose `url` is `target`.
fn commands(sql: &Path, target: &str, topology: &Path) -> Vec<(&'static str, Vec<String>)> {
    let sql = sql.display().to_string();
    let topo = topology.display().to_string();
    let t = target.to_string();
    let dead = format!("postgres://u@127.0.0.1:{}/app", dead_port());
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        (
            "validate-migration --target-db",
            v(&["validate-migration", "--sql-file", &sql, "--target-db", &t]),
        ),
        (
            "topology discover --target-db",
            v(&["topology", "discover", "--target-db", &t]),
        ),
        (
            "rollback generate --target-db",
            v(&[
                "rollback",
                "generate",
                "--sql-file",
                &sql,
                "--target-db",
                &t,
            ]),
        ),
        (
            "validate-migration --shadow",
            v(&[
                "validate-migration",
                "--sql-file",
                &sql,
                "--target-db",
                &dead,
                "--shadow",
                &t,
            ]),
        ),
        (
            "topology discover --topology (url)",
            v(&["topology", "discover", "--topology", &topo]),
        ),
        (
            "validate-migration --topology (url)",
            v(&[
                "validate-migration",
                "--sql-file",
                &sql,
                "--topology",
                &topo,
            ]),
        ),
    ]
}

fn topology_file(dir: &Path, url: &str) -> PathBuf {
    let escaped = url.replace('\\', "\\\\").replace('"', "\\\"");
    write(
        dir,
        "fleet.toml",
        &format!("[[instance]]\nname = \"a\"\nurl = \"{escaped}\"\nschemas = \"tenant_*\"\n"),
    )
}

#[test]
fn unrecognised_connection_strings_exit_3_and_never_print_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let sql = write(
        dir.path(),
        "m.sql",
        "ALTER TABLE orders ADD COLUMN note text;\n",
    );
    let forms = [
        format!("postgress://user:{PW}@db.internal/app"),
        format!("mysql://u:{PW}@h/db"),
        format!("user:{PW}@db.internal/app"),
        format!("host=h pasword={PW} dbname=app"),
        format!("host=h password='{PW} dbname=app"),
        format!("host=h password=my {PW} dbname=app"),
        format!("postgres://u:{PW}@h:notaport/db"),
        format!("postgres://u:{PW}@h/db?sslmode=bogus"),
    ];
    let mut messages = String::new();
    for form in &forms {
        let topo = topology_file(dir.path(), form);
        for (what, args) in commands(&sql, form, &topo) {
            let o = run(bin().args(&args));
            let (_, err) = out_err(&o);
            let label = format!("{what} `{form}`");
            assert_eq!(o.status.code(), Some(3), "{label}: {err}");
            assert!(err.starts_with("deployclaw: "), "{label}: {err}");
            assert_secret_free(&label, &o, &[PW]);
            if what == "validate-migration --target-db" || what.ends_with("(url)") {
                messages.push_str(&err.replace(&dir.path().display().to_string(), "[TMP]"));
            }
        }
    }
    insta::assert_snapshot!("unrecognised_connection_strings", messages);
}

#[test]
fn parsable_forms_reach_the_server_and_never_print_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let sql = write(
        dir.path(),
        "m.sql",
        "ALTER TABLE orders ADD COLUMN note text;\n",
    );
    let port = dead_port();
    let forms = [
        format!("  postgres://gate:{PW}@127.0.0.1:{port}/app  "),
        format!("postgresql://gate:{PW}@127.0.0.1:{port}/app"),
        format!("host=127.0.0.1 port={port} user=gate password={PW} dbname=app"),
        format!("host = '127.0.0.1' port={port} user=gate password='{PW} x\\'y' dbname=app"),
    ];
    for form in &forms {
        let topo = topology_file(dir.path(), form);
        for (what, args) in commands(&sql, form, &topo) {
            if what == "validate-migration --shadow" {
                continue; // the fleet (unreachable here) is resolved after the shadow parses
            }
            let o = run(bin().args(&args));
            let (_, err) = out_err(&o);
            let label = format!("{what} `{form}`");
            assert_eq!(o.status.code(), Some(4), "{label}: {err}");
            assert!(err.starts_with("deployclaw: "), "{label}: {err}");
            assert!(err.contains("gate:***@127.0.0.1"), "{label}: {err}");
            assert_secret_free(&label, &o, &[PW]);
        }
    }
}

#[test]
fn input_errors_name_the_problem_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sql = write(d, "m.sql", "ALTER TABLE orders ADD COLUMN note text;\n");
    let empty = write(d, "empty.sql", "-- only a comment\n");
    let migrations = d.join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    let dead = format!("postgres://u@127.0.0.1:{}/app", dead_port());
    let bad_url = format!("postgress://u:{PW}@h/db");
    let s = |p: &Path| p.display().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "validate-migration: directory as --sql-file",
            vec![
                "validate-migration".into(),
                "--sql-file".into(),
                s(&migrations),
                "--target-db".into(),
                dead.clone(),
            ],
        ),
        (
            "rollback generate: directory as --sql-file",
            vec![
                "rollback".into(),
                "generate".into(),
                "--sql-file".into(),
                s(&migrations),
                "--target-db".into(),
                dead.clone(),
            ],
        ),
        (
            "validate-migration: directory as --rollback-file",
            vec![
                "validate-migration".into(),
                "--sql-file".into(),
                s(&sql),
                "--rollback-file".into(),
                s(&migrations),
                "--target-db".into(),
                dead.clone(),
            ],
        ),
        (
            "rollback generate: directory as --schema-file",
            vec![
                "rollback".into(),
                "generate".into(),
                "--sql-file".into(),
                s(&sql),
                "--schema-file".into(),
                s(&migrations),
            ],
        ),
        (
            "rollback generate: malformed URL",
            vec![
                "rollback".into(),
                "generate".into(),
                "--sql-file".into(),
                s(&sql),
                "--target-db".into(),
                bad_url.clone(),
            ],
        ),
        (
            "rollback generate: comments-only migration",
            vec![
                "rollback".into(),
                "generate".into(),
                "--sql-file".into(),
                s(&empty),
                "--target-db".into(),
                dead.clone(),
            ],
        ),
        (
            "topology discover: missing topology file",
            vec![
                "topology".into(),
                "discover".into(),
                "--topology".into(),
                s(&d.join("nope.toml")),
            ],
        ),
        (
            "topology discover: no target",
            vec!["topology".into(), "discover".into()],
        ),
    ];
    let mut messages = String::new();
    for (what, args) in cases {
        let o = run(bin().args(&args));
        let (_, err) = out_err(&o);
        assert_eq!(o.status.code(), Some(3), "{what}: {err}");
        assert!(err.starts_with("deployclaw: "), "{what}: {err}");
        assert_secret_free(what, &o, &[PW]);
        messages.push_str(&format!("{what}:\n{}\n", err.replace(&s(d), "[TMP]")));
    }
    insta::assert_snapshot!("input_errors_before_connecting", messages);
}

/// Password-file text for `host:port:*:user:password`, escaping `:` and `\`.
fn pgpass_line(host: &str, port: u16, user: &str, password: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    format!("{}:{port}:*:{}:{}\n", esc(host), esc(user), esc(password))
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgpass_alone_authenticates_every_connection_and_stays_secret() {
    // A password with the characters the file format escapes.
    const SECRET: &str = "Pg:pass\\word-Zq7";
    let spec = FixtureSpec {
        tenants: 2,
        rows: 20,
        ..FixtureSpec::default()
    };
    let fx = start_fleet(1, &spec).await.expect("fixture fleet");
    let pg = &fx.clusters[0];
    common::create_reader(pg, "gate_reader", SECRET).await;
    common::require_password_for(pg, "gate_reader").await;
    let before = fingerprint_db(&pg.connection_spec()).await;
    let port = pg.port();
    let secrets = [SECRET, "pass\\word", "Pg\\:pass"];

    let home = tempfile::tempdir().unwrap();
    let pgpass = write(
        home.path(),
        ".pgpass",
        &format!(
            "# deployclaw test\nother-host:1:*:*:wrong\n{}*:*:*:*:also-wrong\n",
            pgpass_line("127.0.0.1", port, "gate_reader", SECRET)
        ),
    );
    chmod(&pgpass, 0o600);
    let url = format!("postgres://gate_reader@127.0.0.1:{port}/app");
    let kv = format!("host=127.0.0.1 port={port} user=gate_reader dbname=app");

    // Without the file the role cannot log in.
    let nowhere = home.path().join("no-home");
    let o = run(bin()
        .env("HOME", &nowhere)
        .args(["topology", "discover", "--target-db", &url]));
    assert_eq!(o.status.code(), Some(4), "{:?}", out_err(&o));

    // ~/.pgpass through HOME, and PGPASSFILE, for the URL and the key=value form.
    for (how, target) in [("HOME", &url), ("PGPASSFILE", &kv)] {
        let mut c = bin();
        if how == "HOME" {
            c.env("HOME", home.path());
        } else {
            c.env("HOME", &nowhere).env("PGPASSFILE", &pgpass);
        }
        let o = run(c.args([
            "topology",
            "discover",
            "--format",
            "json",
            "--target-db",
            target,
        ]));
        let (out, err) = out_err(&o);
        assert_eq!(o.status.code(), Some(0), "{how}: {err}");
        let j: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(j["shards"], 2, "{how}: {out}");
        assert_secret_free(&format!("discover via {how}"), &o, &secrets);
    }

    // The whole gate: probes over sqlx and the shadow clone through pg_dump both authenticate
    // with the password from the file (a failed clone would leave no GREEN rehearsal).
    let dir = tempfile::tempdir().unwrap();
    let safe = write(
        dir.path(),
        "safe.sql",
        "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN note text;\n",
    );
    let rd = dir.path().join("report");
    let o = run(bin()
        .env("HOME", home.path())
        .args(["validate-migration", "--sql-file"])
        .arg(&safe)
        .args([
            "--target-db",
            &url,
            "--tenant-schemas",
            "tenant_*",
            "--lock-budget-ms",
            "5000",
        ])
        .args(["--validate-rollback", "--format", "json", "--report-dir"])
        .arg(&rd));
    let (out, err) = out_err(&o);
    assert_eq!(o.status.code(), Some(0), "validate with ~/.pgpass: {err}");
    let j: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let rehearsals = j["rehearsals"].as_array().expect("rehearsals");
    assert!(!rehearsals.is_empty(), "{out}");
    for r in rehearsals {
        let statements = r["statements"].as_array().expect("statements");
        assert_eq!(statements.len(), 2, "{r}");
        assert!(statements.iter().all(|s| s["error"].is_null()), "{r}");
    }
    assert_secret_free("validate via ~/.pgpass", &o, &secrets);
    for e in std::fs::read_dir(&rd).unwrap() {
        let p = e.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
        for s in secrets {
            assert!(!text.contains(s), "{} holds the password", p.display());
        }
    }

    // An empty migration is an input error, not a GREEN gate.
    let comments = write(dir.path(), "comments.sql", "-- nothing yet\n/* later */\n");
    let o = run(bin()
        .env("HOME", home.path())
        .args(["validate-migration", "--sql-file"])
        .arg(&comments)
        .args(["--target-db", &url]));
    let (_, err) = out_err(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("comments.sql: contains no SQL statements"),
        "{err}"
    );

    // A group-readable file is ignored, with a warning that names it but not its content.
    chmod(&pgpass, 0o640);
    let o = run(bin()
        .env("HOME", home.path())
        .args(["topology", "discover", "--target-db", &url]));
    let (_, err) = out_err(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert!(
        err.contains("deployclaw: warning: password file") && err.contains("group or world access"),
        "{err}"
    );
    assert_secret_free("discover with a group-readable ~/.pgpass", &o, &secrets);

    assert_eq!(
        fingerprint_db(&pg.connection_spec()).await,
        before,
        "the target changed"
    );
}
