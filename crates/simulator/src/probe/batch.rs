//! The catalog half of the probes, read once for many shards of a database: the existence
//! checks, the table sizes, the primary keys and the orphan probes' operators of up to a hundred
//! shards of a schema-per-tenant database in four queries (one transaction) instead of four per
//! shard.
//!
//! Each of the three queries already takes arrays and answers one row per element, so a
//! database's batch is every shard's arguments in a row; the row's position says whose answer
//! it is. The shards' own transactions then only run the data probes. A batch that fails (a
//! timeout, a cancel) answers nothing: every shard then reads its catalog itself, as it would
//! without a batch, and a failure there is that shard's evidence.
//!
//! The batch reads the catalog in its own snapshot, a moment before the shard's data probes
//! read theirs: DDL committed in between shows in the data probes (an error of the probe that
//! hits it), as DDL committed after the probes shows only at the deploy.

use std::collections::HashMap;
use std::time::Instant;

use sqlx::PgConnection;

use super::kinds::{fk_orphans, missing_object, table_size};
use super::model::{ProbeLimits, ProbePlan, ShardCatalog};
use super::run::{pk_tables, tx_setup};
use super::sql::fetch_pks;
use crate::probe_tx::exec;

/// Read the catalog answers of `plan` for every schema of `schemas` (the shards of one
/// database) on `conn`, in one read-only transaction that is always ended. `Err` when any of
/// the queries failed: the shards then read their catalog themselves.
pub(crate) async fn read_catalog(
    conn: &mut PgConnection,
    plan: &ProbePlan,
    schemas: &[String],
    limits: ProbeLimits,
) -> Result<HashMap<String, ShardCatalog>, sqlx::Error> {
    let setup = exec(conn, &tx_setup(limits)).await;
    let read = match setup {
        Ok(()) => read_in_tx(conn, plan, schemas).await,
        Err(e) => Err(e),
    };
    // Always end the transaction (also when the setup failed part way), once more after a
    // stray cancel, as a shard's own probes do.
    let end = match exec(conn, "ROLLBACK").await {
        Err(e) if !crate::conn::is_connection_error(&e) => exec(conn, "ROLLBACK").await,
        other => other,
    };
    let read = read?;
    end?;
    Ok(read)
}

async fn read_in_tx(
    conn: &mut PgConnection,
    plan: &ProbePlan,
    schemas: &[String],
) -> Result<HashMap<String, ShardCatalog>, sqlx::Error> {
    let started = Instant::now();
    let mut out: Vec<ShardCatalog> = vec![ShardCatalog::default(); schemas.len()];
    let n = plan.refs.len();
    if n > 0 {
        let mut args: missing_object::RefArgs = Default::default();
        for s in schemas {
            missing_object::push_ref_args(plan, s, &mut args);
        }
        for (i, exists) in missing_object::fetch_refs(conn, &args).await? {
            if let Some(c) = i.checked_div(n).and_then(|k| out.get_mut(k)) {
                c.refs.push((i % n, exists));
            }
        }
    }
    let m = plan.tables.len();
    if m > 0 {
        let mut args: [Vec<String>; 2] = Default::default();
        for s in schemas {
            table_size::push_size_args(plan, s, &mut args);
        }
        for (i, stats) in table_size::fetch_sizes(conn, &args).await? {
            if let Some(c) = i.checked_div(m).and_then(|k| out.get_mut(k)) {
                c.sizes.push(stats);
            }
        }
    }
    let wanted: Vec<_> = schemas.iter().map(|s| pk_tables(plan, s)).collect();
    let (ss, ts): (Vec<String>, Vec<String>) = wanted.iter().flatten().cloned().unzip();
    if !ss.is_empty() {
        let pks: HashMap<(String, String), Vec<String>> =
            fetch_pks(conn, &ss, &ts).await?.into_iter().collect();
        for (c, tables) in out.iter_mut().zip(&wanted) {
            c.pks = tables
                .iter()
                .filter_map(|t| Some((t.clone(), pks.get(t)?.clone())))
                .collect();
        }
    }
    // The orphan probes' operators, one query for every shard's.
    let read: Vec<_> = out.iter().map(|c| (c.sizes.as_slice(), &c.pks)).collect();
    let joins = fk_orphans::prepare_batch(conn, plan, schemas, &read).await?;
    for (c, j) in out.iter_mut().zip(joins) {
        c.fk_joins = j;
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    Ok(schemas
        .iter()
        .cloned()
        .zip(out.into_iter().map(|c| ShardCatalog { duration_ms, ..c }))
        .collect())
}
