//! `validate-migration --shadow-data sample`, real binary and real PostgreSQL: an `INSERT` that
//! references an existing parent row is a false `statement-fails` RED without it and not with
//! it; no real row value reaches the report (any rendering), standard output or standard error;
//! the target is unchanged.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{fingerprint_db, leftovers_on};
use sqlx::Connection as _;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

/// A value of a row of the shard that must stay out of everything deployclaw prints or writes.
const SECRET: &str = "secret-mail-5be0d1@example.invalid";

const SETUP: &str = "
CREATE SCHEMA tenant_a;
CREATE TABLE tenant_a.customer (id serial PRIMARY KEY, email text NOT NULL, code text);
INSERT INTO tenant_a.customer (email, code)
  SELECT 'user' || g || '@example.invalid', 'code-' || g FROM generate_series(1, 60) g;
UPDATE tenant_a.customer SET email = 'secret-mail-5be0d1@example.invalid' WHERE id = 7;
CREATE TABLE tenant_a.orders (id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES tenant_a.customer, amount int);
INSERT INTO tenant_a.orders (customer_id, amount) SELECT g, g FROM generate_series(1, 60) g;
";

/// References customer 42, which exists on the shard.
const INSERT_PARENT: &str = "INSERT INTO tenant_a.orders (customer_id, amount) VALUES (42, 1);\n";

async fn target() -> EphemeralPg {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("start PostgreSQL");
    let mut c = sqlx::PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    sqlx::raw_sql("CREATE DATABASE app")
        .execute(&mut c)
        .await
        .expect("create database");
    c.close().await.ok();
    let mut c = sqlx::PgConnection::connect_with(&pg.connect_options("app"))
        .await
        .expect("connect");
    sqlx::raw_sql(SETUP).execute(&mut c).await.expect("setup");
    c.close().await.ok();
    pg
}

fn validate(pg: &EphemeralPg, sql: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .args(["validate-migration", "--no-cache", "--sql-file"])
        .arg(sql)
        .args([
            "--target-db",
            &format!("postgres://postgres@127.0.0.1:{}/app", pg.port()),
            "--tenant-schemas",
            "tenant_*",
            "--format",
            "json",
        ])
        .args(extra)
        .output()
        .expect("run deployclaw")
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "report JSON: {e}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn rules_of(j: &serde_json::Value) -> Vec<String> {
    j["shards"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str().map(str::to_string))
        .collect()
}

fn shadow_data_step(j: &serde_json::Value) -> String {
    j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "shadow data")
        .and_then(|s| s["details"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_referencing_a_parent_is_red_without_a_sample_and_not_with_one() {
    let pg = target().await;
    let before = fingerprint_db(&pg.connection_spec()).await;
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("m.sql");
    std::fs::write(&sql, INSERT_PARENT).unwrap();

    // Today's behaviour, named: the shadow's tables are empty, so the foreign key fails.
    let o = validate(&pg, &sql, &[]);
    let j = report(&o);
    assert!(
        rules_of(&j).iter().any(|r| r == "statement-fails"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(shadow_data_step(&j).starts_with("synthetic rows"), "{j:#}");

    let o = validate(&pg, &sql, &["--shadow-data", "sample"]);
    let j = report(&o);
    assert!(
        !rules_of(&j).iter().any(|r| r == "statement-fails"),
        "{:?}",
        rules_of(&j)
    );
    assert_ne!(j["shards"][0]["gate"], "RED", "{j:#}");
    assert_eq!(
        shadow_data_step(&j),
        format!(
            "real sample, 120 rows from 2 tables of shard 127.0.0.1:{}/app/tenant_a",
            pg.port()
        )
    );
    assert_eq!(fingerprint_db(&pg.connection_spec()).await, before);
    assert_eq!(
        leftovers_on("target", &pg.connection_spec()).await,
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_row_value_reaches_the_report_or_the_terminal() {
    let pg = target().await;
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("m.sql");
    // The UPDATE fails on a real value, which PostgreSQL quotes in its message.
    std::fs::write(
        &sql,
        format!(
            "{INSERT_PARENT}UPDATE tenant_a.orders SET amount = (SELECT email::int FROM tenant_a.customer WHERE id = 7);\n"
        ),
    )
    .unwrap();
    let reports = dir.path().join("reports");
    let o = validate(
        &pg,
        &sql,
        &[
            "--shadow-data",
            "sample",
            "--validate-rollback",
            "--report-dir",
            reports.to_str().unwrap(),
        ],
    );
    let j = report(&o);
    assert!(
        rules_of(&j).iter().any(|r| r == "statement-fails"),
        "the UPDATE fails on the real value: {j:#}"
    );
    for (what, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let s = String::from_utf8_lossy(bytes);
        assert!(!s.contains(SECRET), "a row value on {what}");
        assert!(!s.contains("user42@"), "a row value on {what}");
    }
    let mut files = 0;
    for entry in std::fs::read_dir(&reports).expect("report dir") {
        let p = entry.unwrap().path();
        let body = std::fs::read(&p).unwrap();
        let s = String::from_utf8_lossy(&body);
        assert!(!s.contains(SECRET), "a row value in {}", p.display());
        assert!(!s.contains("code-42"), "a row value in {}", p.display());
        files += 1;
    }
    assert!(files >= 2, "the report directory holds the renderings");
}
