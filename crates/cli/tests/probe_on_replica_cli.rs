//! `validate-migration --probe-on replica`, real binary, real PostgreSQL: a topology file names
//! a streaming hot standby of the target (`replica_of`); the terminal and `steps[]` say the
//! seed's "Found N tenant shards across M reader replicas", the data probes run on the replica
//! (the shard's `live.replica` in the JSON report) and still find the planted NULLs; with
//! `[probes] probe_on = "replica"` in the configuration the same, and a bad value there is an
//! input error with file, line and column (exit 3).

#[path = "../../../tests/common/replica.rs"]
mod replica;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use sqlx::Connection as _;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

const SETUP: &str = "
CREATE SCHEMA tenant_a;
CREATE TABLE tenant_a.orders (id serial PRIMARY KEY, code text);
INSERT INTO tenant_a.orders (code) SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE 'c' || g END
  FROM generate_series(1, 50) g;
";

const MIGRATION: &str =
    "SET lock_timeout = '2s';\nALTER TABLE tenant_a.orders ALTER COLUMN code SET NOT NULL;\n";

async fn primary() -> EphemeralPg {
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

fn run(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .current_dir(dir)
        .args(["validate-migration", "--no-cache", "--sql-file", "m.sql"])
        .args(["--topology", "fleet.toml", "--format", "json"])
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

/// The replica the shard's probes ran on, the rules found, and the `probe on replica` step.
fn probed_on(j: &serde_json::Value) -> (String, Vec<String>, String) {
    let shard = &j["shards"][0];
    let rules = shard["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["rule"].as_str().map(str::to_string))
        .collect();
    let step = j["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "probe on replica")
        .and_then(|s| s["details"].as_str())
        .unwrap_or_default()
        .to_string();
    let on = shard["live"]["replica"]["instance"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (on, rules, step)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_run_on_the_named_replica_from_the_flag_or_the_config() {
    let pg = primary().await;
    let standby = tokio::task::block_in_place(|| pg.start_replica(EphemeralOptions::default()))
        .expect("replica");
    replica::wait_caught_up(&pg.connection_spec(), &standby.connection_spec()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.sql"), MIGRATION).unwrap();
    std::fs::write(
        dir.path().join("fleet.toml"),
        format!(
            "[[instance]]\nname = \"main\"\nurl = \"postgres://postgres@127.0.0.1:{}/app\"\n\
             schemas = \"tenant_*\"\n\n[[instance]]\nname = \"main-ro\"\n\
             url = \"postgres://postgres@127.0.0.1:{}/app\"\nreplica_of = \"main\"\n",
            pg.port(),
            standby.port()
        ),
    )
    .unwrap();

    let o = run(dir.path(), &["--probe-on", "replica"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("deployclaw: Found 1 tenant shards across 1 reader replica from"),
        "{stderr}"
    );
    let (on, rules, step) = probed_on(&report(&o));
    assert_eq!(on, "main-ro");
    assert!(
        rules.iter().any(|r| r == "not-null-violations"),
        "{rules:?}"
    );
    assert!(!rules.iter().any(|r| r == "replica-not-used"), "{rules:?}");
    assert!(
        step.starts_with("Found 1 tenant shards across 1 reader replica: data probes of 1 shard(s) on 1 replica(s)"),
        "{step}"
    );

    // `topology discover` lists the replica with its writer and no shards.
    let o = Command::new(env!("CARGO_BIN_EXE_deployclaw"))
        .env("RUST_BACKTRACE", "0")
        .current_dir(dir.path())
        .args([
            "topology",
            "discover",
            "--format",
            "json",
            "--topology",
            "fleet.toml",
        ])
        .output()
        .expect("run deployclaw");
    let j = report(&o);
    assert_eq!(j["instances"][1]["name"], "main-ro");
    assert_eq!(j["instances"][1]["replica_of"], "main");
    assert_eq!(j["instances"][1]["shards"], 0);
    assert!(j["instances"][0].get("replica_of").is_none());

    // The same from the configuration; `--probe-on writer` overrides it.
    std::fs::write(
        dir.path().join("deployclaw.toml"),
        "[probes]\nprobe_on = \"replica\"\nmax_replica_lag = \"10s\"\n",
    )
    .unwrap();
    let (on, rules, _) = probed_on(&report(&run(dir.path(), &[])));
    assert_eq!(on, "main-ro");
    assert!(
        rules.iter().any(|r| r == "not-null-violations"),
        "{rules:?}"
    );
    let (on, rules, step) = probed_on(&report(&run(dir.path(), &["--probe-on", "writer"])));
    assert_eq!((on.as_str(), step.as_str()), ("", ""));
    assert!(
        rules.iter().any(|r| r == "not-null-violations"),
        "{rules:?}"
    );

    // A bad value is an input error at its place.
    std::fs::write(
        dir.path().join("deployclaw.toml"),
        "[probes]\nmax_replica_lag = \"soon\"\n",
    )
    .unwrap();
    let o = run(dir.path(), &[]);
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("deployclaw.toml:2:19") && stderr.contains("probes.max_replica_lag"),
        "{stderr}"
    );
}
