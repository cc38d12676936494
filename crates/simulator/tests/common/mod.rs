//! Shared test harness: ephemeral clusters, fleets, migrations.
#![allow(dead_code)]

use std::collections::BTreeMap;

use migration_parser::{Migration, ParseOptions, TransactionMode, parse};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::{Fleet, Instance, Shard, ShardLocation};

pub async fn start() -> EphemeralPg {
    EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .expect("start ephemeral PostgreSQL")
}

pub async fn conn(pg: &EphemeralPg, db: &str) -> PgConnection {
    PgConnection::connect_with(&pg.connect_options(db))
        .await
        .expect("connect")
}

pub async fn exec(pg: &EphemeralPg, db: &str, sql: &str) {
    let mut c = conn(pg, db).await;
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut c)
        .await
        .expect("setup SQL");
    c.close().await.ok();
}

pub async fn create_db(pg: &EphemeralPg, db: &str) {
    exec(
        pg,
        "postgres",
        &format!("CREATE DATABASE {}", simulator::quote_ident(db)),
    )
    .await;
}

pub fn migration(sql: &str) -> Migration {
    parse("test.sql", sql, &ParseOptions::default()).expect("parse")
}

pub fn migration_wrapped(sql: &str) -> Migration {
    parse(
        "test.sql",
        sql,
        &ParseOptions {
            transaction_mode: TransactionMode::WrapFile,
            ..Default::default()
        },
    )
    .expect("parse")
}

/// A fleet with one instance per cluster and the given (instance index, database, schema) shards.
pub fn fleet(pgs: &[&EphemeralPg], shards: &[(usize, &str, &str)]) -> Fleet {
    let instances = pgs
        .iter()
        .enumerate()
        .map(|(i, pg)| Instance {
            name: format!("pg-{}", i + 1),
            connection: pg.connection_spec(),
            labels: BTreeMap::new(),
            replica_of: None,
        })
        .collect();
    let shards = shards
        .iter()
        .map(|(i, db, schema)| Shard {
            id: format!("pg-{}/{db}/{schema}", i + 1),
            instance: format!("pg-{}", i + 1),
            location: ShardLocation::Schema {
                database: db.to_string(),
                schema: schema.to_string(),
            },
        })
        .collect();
    Fleet { instances, shards }
}

/// Sessions other than our own checker on the cluster, opened by the simulator. A session the
/// simulator closed may still be listed for a moment while its backend exits (longer on a loaded
/// machine), so this waits, bounded, for the list to empty: a session that is really left open
/// stays in it.
pub async fn leftover_sessions(pg: &EphemeralPg) -> Vec<String> {
    let mut left = sessions(pg).await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = sessions(pg).await;
    }
    left
}

async fn sessions(pg: &EphemeralPg) -> Vec<String> {
    let mut c = conn(pg, "postgres").await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT coalesce(datname, ''), coalesce(application_name, ''), coalesce(state, '')
           FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .fetch_all(&mut c)
    .await
    .expect("pg_stat_activity");
    c.close().await.ok();
    rows.into_iter()
        .map(|(d, a, s)| format!("{d}/{a}/{s}"))
        .collect()
}

/// Relation locks held by any session other than ours.
pub async fn foreign_locks(pg: &EphemeralPg, db: &str) -> i64 {
    let mut c = conn(pg, db).await;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE pid <> pg_backend_pid() AND locktype = 'relation'",
    )
    .fetch_one(&mut c)
    .await
    .expect("pg_locks");
    c.close().await.ok();
    n
}

/// Databases whose name starts with deployclaw_shadow_.
pub async fn shadow_dbs(pg: &EphemeralPg) -> Vec<String> {
    let mut c = conn(pg, "postgres").await;
    let v: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'deployclaw\\_shadow\\_%'",
    )
    .fetch_all(&mut c)
    .await
    .expect("pg_database");
    c.close().await.ok();
    v
}

/// Checksum of a schema's catalog and table contents.
pub async fn checksum(pg: &EphemeralPg, db: &str, schema: &str) -> String {
    let mut c = conn(pg, db).await;
    let cat: String = sqlx::query_scalar(
        "SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM (
           SELECT format('%s %s %s', c.relname, c.relkind, c.relfilenode) x FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
           UNION ALL SELECT format('%s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attisdropped)
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND a.attnum > 0
           UNION ALL SELECT format('%s %s', co.conname, pg_get_constraintdef(co.oid)) FROM pg_constraint co
             JOIN pg_namespace n ON n.oid = co.connamespace WHERE n.nspname = $1) s",
    )
    .bind(schema)
    .fetch_one(&mut c)
    .await
    .expect("catalog checksum");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut c)
    .await
    .expect("tables");
    let mut data = String::new();
    for t in tables {
        let q = format!(
            "SELECT coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM {} x",
            simulator::quote_qualified(schema, &t)
        );
        let h: String = sqlx::query_scalar(AssertSqlSafe(q))
            .fetch_one(&mut c)
            .await
            .expect("data checksum");
        data.push_str(&format!("{t}:{h};"));
    }
    c.close().await.ok();
    format!("{cat}|{data}")
}
