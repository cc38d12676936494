//! Helpers shared by the end-to-end tests: target checksums, leftover sessions/locks/databases,
//! deterministic validation options, password authentication on an ephemeral cluster.

#![allow(dead_code)]

use std::collections::BTreeMap;

use deployclaw::pipeline::ValidateOptions;
use deployclaw::simulator::{RehearsalMode, Throughput};
use deployclaw::topology::ephemeral::EphemeralPg;
use deployclaw::topology::{ConnectionSpec, Instance};
use sqlx::{Connection, PgConnection, Row};

/// The example migration.
pub const MIGRATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/migrations/schema_v42.sql"
);

/// Superuser connection spec of an ephemeral cluster's database `db`.
pub fn su(pg: &EphemeralPg, db: &str) -> ConnectionSpec {
    pg.connection_spec().with_database(db)
}

/// A checksum of every non-system catalog object and every tenant table's contents of database
/// `app` on `conn` (same queries as tests/validate_fleet.rs).
pub async fn fingerprint_db(conn: &ConnectionSpec) -> String {
    let opts = conn
        .with_database("app")
        .to_connect_options()
        .expect("options");
    let mut c = PgConnection::connect_with(&opts).await.expect("connect");
    let catalog: String = sqlx::query_scalar(
        "SELECT md5(string_agg(x, E'\\n' ORDER BY x)) FROM (
           SELECT format('rel %s.%s %s %s %s', n.nspname, c.relname, c.relkind, c.relfilenode, c.relnatts) AS x
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
              AND n.nspname NOT LIKE 'pg_temp%'
           UNION ALL
           SELECT format('att %s.%s %s %s %s %s', n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attisdropped)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE a.attnum > 0 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
           UNION ALL
           SELECT format('con %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) FROM pg_constraint
            WHERE connamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
           UNION ALL
           SELECT format('db %s', datname) FROM pg_database
           UNION ALL
           SELECT format('role %s', rolname) FROM pg_roles
         ) s",
    )
    .fetch_one(&mut c)
    .await
    .expect("catalog checksum");
    let tables = sqlx::query(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND (n.nspname LIKE 'tenant\\_%' OR n.nspname = 'shared')
          ORDER BY 1, 2",
    )
    .fetch_all(&mut c)
    .await
    .expect("tables");
    let mut data = Vec::new();
    for t in tables {
        let (s, r): (String, String) = (t.get(0), t.get(1));
        let q = format!(
            "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \"{s}\".\"{r}\" t"
        );
        let h: String = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
            .fetch_one(&mut c)
            .await
            .expect("data checksum");
        data.push(format!("{s}.{r}={h}"));
    }
    c.close().await.expect("close");
    format!("{catalog} {}", data.join(","))
}

/// [`fingerprint_db`] of every instance, by instance name.
pub async fn fingerprint_instances(instances: &[Instance]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in instances {
        out.insert(i.name.clone(), fingerprint_db(&i.connection).await);
    }
    out
}

/// Client backends other than the checker's own (and `keep`'s application names), relation
/// locks they hold, and databases other than the fixture's, on the instance behind `conn`
/// (superuser spec).
///
/// A backend whose client has just disconnected takes a moment to leave `pg_stat_activity`
/// (the server notices the closed socket asynchronously), so a non-empty answer is re-checked
/// for up to 5 s before it is reported: what remains after that is a real leftover.
pub async fn leftovers_on(name: &str, conn: &ConnectionSpec) -> Vec<String> {
    let mut found = leftovers_once(name, conn).await;
    for _ in 0..20 {
        if found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        found = leftovers_once(name, conn).await;
    }
    found
}

async fn leftovers_once(name: &str, conn: &ConnectionSpec) -> Vec<String> {
    let mut found = Vec::new();
    let opts = conn
        .with_database("postgres")
        .to_connect_options()
        .expect("options");
    let mut c = PgConnection::connect_with(&opts).await.expect("connect");
    let rows = sqlx::query(
        "SELECT coalesce(application_name, ''), coalesce(datname, ''), state FROM pg_stat_activity
          WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut c)
    .await
    .expect("activity");
    for r in rows {
        let (app, db, state): (String, String, Option<String>) = (r.get(0), r.get(1), r.get(2));
        found.push(format!("{name}: session {app} on {db} ({state:?})"));
    }
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid() AND locktype = 'relation'",
    )
    .fetch_one(&mut c)
    .await
    .expect("locks");
    if locks > 0 {
        found.push(format!("{name}: {locks} relation locks held"));
    }
    let dbs: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1', 'app') ORDER BY 1",
    )
    .fetch_all(&mut c)
    .await
    .expect("databases");
    for d in dbs {
        found.push(format!("{name}: unexpected database {d}"));
    }
    c.close().await.expect("close");
    found
}

/// [`leftovers_on`] for every cluster still running.
pub async fn leftovers(clusters: &[&EphemeralPg]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, pg) in clusters.iter().enumerate() {
        found.extend(
            leftovers_on(
                &format!("cluster {} (port {})", i + 1, pg.port()),
                &pg.connection_spec(),
            )
            .await,
        );
    }
    found
}

/// Validation options with fixed throughput (no calibration) and a 500 ms lock budget, as in
/// tests/validate_fleet.rs, so verdicts do not depend on the machine's speed.
pub fn options(sql: impl Into<std::path::PathBuf>, mode: RehearsalMode) -> ValidateOptions {
    let mut o = ValidateOptions::new(sql);
    o.sim.rehearsal = mode;
    o.sim.calibrate = false;
    o.sim.throughput = Some(Throughput {
        scan_mb_per_s: 150.0,
        rewrite_mb_per_s: 20.0,
        index_mb_per_s: 30.0,
        catalog_ms: 5.0,
        calibrated: false,
        sample_mb: 0.0,
    });
    o.lock_budget_ms = Some(500);
    o
}

/// Require password (scram-sha-256) authentication for `role` over TCP on `pg`: prepends a
/// `pg_hba.conf` line (read before the cluster's `trust` lines) and reloads the configuration.
/// The ephemeral cluster trusts everyone else on loopback.
pub async fn require_password_for(pg: &EphemeralPg, role: &str) {
    let hba = pg.data_dir().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
    let line = format!(
        "host all {role} 127.0.0.1/32 scram-sha-256\nhost all {role} ::1/128 scram-sha-256\n"
    );
    std::fs::write(&hba, format!("{line}{old}")).expect("write pg_hba.conf");
    let mut c = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    let ok: bool = sqlx::query_scalar("SELECT pg_reload_conf()")
        .fetch_one(&mut c)
        .await
        .expect("reload");
    assert!(ok);
    c.close().await.expect("close");
    // The reload is asynchronous: wait (bounded) until a password-less login of `role` is
    // refused.
    let opts = pg.connect_options("postgres").username(role);
    for _ in 0..200 {
        match PgConnection::connect_with(&opts).await {
            Ok(c) => {
                let _ = c.close().await;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            Err(_) => return,
        }
    }
    panic!("pg_hba.conf change for {role} did not take effect");
}

/// Create a login role with `password` that may read every table (`pg_read_all_data`).
pub async fn create_reader(pg: &EphemeralPg, role: &str, password: &str) {
    let mut c = PgConnection::connect_with(&pg.connect_options("postgres"))
        .await
        .expect("connect");
    let q = format!(
        "CREATE ROLE \"{role}\" LOGIN PASSWORD '{}'; GRANT pg_read_all_data TO \"{role}\"",
        password.replace('\'', "''")
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(q))
        .execute(&mut c)
        .await
        .expect("create role");
    c.close().await.expect("close");
}

/// Percent-encode a URL component.
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
