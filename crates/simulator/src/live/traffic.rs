//! Traffic on the relations the migration locks: `pg_stat_user_tables` sampled twice a window
//! apart, as rates; and what those rates would queue behind each statement's blocking lock.
//!
//! ## How it reads
//!
//! Per database, ONE query covers the relations every shard of it would have locked (the
//! parser's lock knowledge: modes that block writes, unqualified names in the shard's schema),
//! with their partitions and inheritance children summed in: `n_tup_ins + n_tup_upd +
//! n_tup_del` (row writes) and `seq_scan + idx_scan` (reads), and the server's
//! `clock_timestamp()`. It runs once when the run starts and once [`LiveOptions::traffic_window`]
//! later, each in its own `READ ONLY` transaction with a statement timeout; the rate is the
//! difference over the server's own elapsed time. The window runs beside the probes and the
//! rehearsal, so it costs wall time only when the rest of the run is shorter.
//!
//! ## What the counters are
//!
//! A backend publishes its table counters when a transaction ends, but (PostgreSQL 15) at most
//! once per second (`PGSTAT_MIN_INTERVAL`), and an idle backend after up to 10 s; inside one
//! transaction a reader sees a cached snapshot (`stats_fetch_consistency`), which is why each
//! sample is its own transaction. A window of a few seconds therefore sees each busy backend's
//! traffic with up to one second of it early or late: the rates are an order of magnitude, like
//! the lock time they are multiplied with. The gate's own probes scan the tables they check:
//! the read count of a table is taken less one scan per planned data probe reading it (so a
//! table nobody else reads shows none; a busy table's rate is at most that many scans low).
//! The gate never writes, so the write rate is the application's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use evidence::{LiveEvidence, LiveStatus, LockEstimate, QueuedEstimate, TableTraffic};
use migration_parser::{Migration, QualifiedName, lock_facts};

use super::{LiveDatabase, LiveOptions, PerShard, RestDone};
use crate::control::CancelToken;
use crate::probe::model::Check;

/// Statement timeout of one sample (a catalog-sized read).
const SAMPLE_TIMEOUT: &str = "5s";

/// The counters of every wanted relation, children summed, and the server's clock. They are
/// read with the functions `pg_stat_user_tables` is made of (`n_tup_ins + n_tup_upd +
/// n_tup_del`; `seq_scan` + the scans of the relation's indexes, which is `idx_scan`), for the
/// wanted relations only: the view computes every column of every table in the database, which
/// on a database of a thousand tenant schemas is tens of thousands of relations per sample.
const SAMPLE_SQL: &str = "
WITH RECURSIVE wanted AS (
    SELECT r.schema_name, r.rel_name, c.oid AS relid
      FROM unnest($1::text[], $2::text[]) AS r(schema_name, rel_name)
      JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema_name
      JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r.rel_name
  UNION
    SELECT w.schema_name, w.rel_name, i.inhrelid
      FROM wanted w JOIN pg_catalog.pg_inherits i ON i.inhparent = w.relid
)
SELECT w.schema_name, w.rel_name,
       coalesce(sum(pg_catalog.pg_stat_get_tuples_inserted(w.relid)
                    + pg_catalog.pg_stat_get_tuples_updated(w.relid)
                    + pg_catalog.pg_stat_get_tuples_deleted(w.relid)), 0)::float8 AS writes,
       coalesce(sum(pg_catalog.pg_stat_get_numscans(w.relid)
                    + coalesce((SELECT sum(pg_catalog.pg_stat_get_numscans(i.indexrelid))
                                  FROM pg_catalog.pg_index i
                                 WHERE i.indrelid = w.relid), 0)), 0)::float8 AS reads,
       extract(epoch FROM clock_timestamp())::float8 AS at
  FROM wanted w
 GROUP BY w.schema_name, w.rel_name";

/// One sample: counters per (schema, relation) and when (server seconds since the epoch).
struct Sample {
    counters: HashMap<(String, String), (f64, f64)>,
    at: f64,
}

/// The traffic of every shard of `db`: one set-based sample at the start and one
/// `options.traffic_window` later, or when the probes and rehearsals are done (`rest_done`) if
/// that is later — or right then, when `rest_done` says the full window is not needed here
/// ([`LiveOptions::lock_budget`]). A window of zero, or a sample that fails, is said per shard
/// ([`LiveStatus::Unavailable`]); a cancelled run returns nothing.
pub(crate) async fn read(
    migration: &Migration,
    db: &LiveDatabase<'_>,
    options: &LiveOptions,
    cancel: &CancelToken,
    rest_done: &RestDone,
) -> PerShard<TableTraffic> {
    let mut out = PerShard::new();
    let unavailable = |reason: String| LiveStatus::Unavailable { reason };
    if options.traffic_window.is_zero() {
        let reason = "the traffic window is 0 (`--traffic-window-ms 0` or `[live] traffic_window_ms = 0`): \
                      no rate was sampled";
        for s in &db.shards {
            out.insert(s.id.clone(), (unavailable(reason.into()), Vec::new()));
        }
        return out;
    }
    let per_shard = locked_relations(migration, db);
    let wanted: BTreeSet<&(String, String)> = per_shard.values().flatten().collect();
    if wanted.is_empty() {
        for s in &db.shards {
            out.insert(s.id.clone(), (LiveStatus::Read, Vec::new()));
        }
        return out;
    }
    let schemas: Vec<&str> = wanted.iter().map(|(s, _)| s.as_str()).collect();
    let names: Vec<&str> = wanted.iter().map(|(_, n)| n.as_str()).collect();
    let sampled = async {
        let first = sample(db, &schemas, &names).await?;
        let full = tokio::time::Instant::now() + options.traffic_window;
        // A longer window costs nothing while the probes and rehearsals still run; a shorter
        // one is taken where no rate can change what the gate says.
        rest_done.wait().await;
        if rest_done.needs_full_window(db) {
            tokio::time::sleep_until(full).await;
        }
        let second = sample(db, &schemas, &names).await?;
        Ok::<_, sqlx::Error>((first, second))
    };
    let result = tokio::select! {
        r = sampled => r,
        _ = cancel.cancelled() => return out,
    };
    let (first, second) = match result {
        Ok(pair) => pair,
        Err(e) => {
            let reason = format!("pg_stat_user_tables could not be sampled: {e}");
            for s in &db.shards {
                out.insert(s.id.clone(), (unavailable(reason.clone()), Vec::new()));
            }
            return out;
        }
    };
    let own = own_probe_scans(migration);
    let seconds = (second.at - first.at).max(1e-3);
    let window_ms = (seconds * 1000.0).round() as u64;
    let source = format!("pg_stat_user_tables over {window_ms} ms");
    for s in &db.shards {
        let found = per_shard
            .get(s.id.as_str())
            .into_iter()
            .flatten()
            .filter_map(|key| {
                let (w0, r0) = first.counters.get(key)?;
                let (w1, r1) = second.counters.get(key)?;
                let ours = own_scans(&own, s.location.schema(), key);
                Some(TableTraffic {
                    relation: format!("{}.{}", key.0, key.1),
                    source: source.clone(),
                    window_ms,
                    // A counter reset between the samples reads as no traffic, never negative.
                    writes_per_s: (w1 - w0).max(0.0) / seconds,
                    // Less the scans the gate's own probes may have made in the window.
                    reads_per_s: (r1 - r0 - ours).max(0.0) / seconds,
                })
            })
            .collect();
        out.insert(s.id.clone(), (LiveStatus::Read, found));
    }
    out
}

/// Per shard id, the relations (schema, name) the migration locks in a mode that blocks
/// writes — the locks the lock-time estimate counts — unqualified names in the shard's schema.
fn locked_relations<'a>(
    migration: &Migration,
    db: &LiveDatabase<'a>,
) -> BTreeMap<&'a str, BTreeSet<(String, String)>> {
    let facts: Vec<_> = migration
        .statements
        .iter()
        .flat_map(|st| &st.operations)
        .flat_map(|op| lock_facts(op, migration.options.pg_version))
        .filter(|f| f.mode.blocks_writes())
        .collect();
    db.shards
        .iter()
        .map(|s| {
            let schema = s.location.schema();
            let rels = facts
                .iter()
                .map(|f| {
                    let sch = f.relation.schema.as_deref().unwrap_or(schema);
                    (sch.to_string(), f.relation.name.clone())
                })
                .collect();
            (s.id.as_str(), rels)
        })
        .collect()
}

/// Per table as named in the migration (unqualified: the shard's schema), how many scans the
/// gate's own data probes make at most: one per planned probe reading it (an orphan probe also
/// reads the referenced table).
fn own_probe_scans(migration: &Migration) -> HashMap<QualifiedName, f64> {
    let plan = crate::probe::plan(migration);
    let mut out: HashMap<QualifiedName, f64> = HashMap::new();
    for p in plan.probes.iter().filter(|p| p.skipped.is_none()) {
        *out.entry(p.table.clone()).or_default() += 1.0;
        if let Check::Orphans { ref_table, .. } = &p.check {
            *out.entry(ref_table.clone()).or_default() += 1.0;
        }
    }
    out
}

/// The gate's own scans of `key` ((schema, name)) on a shard whose schema is `schema`.
fn own_scans(own: &HashMap<QualifiedName, f64>, schema: &str, key: &(String, String)) -> f64 {
    own.iter()
        .filter(|(q, _)| q.name == key.1 && q.schema.as_deref().unwrap_or(schema) == key.0.as_str())
        .map(|(_, n)| n)
        .sum()
}

/// One sample of `pg_stat_user_tables` in its own `READ ONLY` transaction (a fresh statistics
/// snapshot).
async fn sample(
    db: &LiveDatabase<'_>,
    schemas: &[&str],
    names: &[&str],
) -> Result<Sample, sqlx::Error> {
    let mut conn = db.connection().await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SET LOCAL statement_timeout = '{SAMPLE_TIMEOUT}'"
    )))
    .execute(&mut *tx)
    .await?;
    let rows: Vec<(String, String, f64, f64, f64)> = sqlx::query_as(SAMPLE_SQL)
        .bind(schemas)
        .bind(names)
        .fetch_all(&mut *tx)
        .await?;
    let at: f64 = match rows.first() {
        Some(r) => r.4,
        None => {
            sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
                .fetch_one(&mut *tx)
                .await?
        }
    };
    tx.rollback().await?;
    Ok(Sample {
        counters: rows
            .into_iter()
            .map(|(s, n, w, r, _)| ((s, n), (w, r)))
            .collect(),
        at,
    })
}

/// What the sampled traffic would queue behind each statement of `estimate` that holds a
/// blocking lock: per kind the lock blocks, the summed rate of its blocked relations times its
/// estimated lock time. Empty unless the traffic was read ([`LiveStatus::Read`]).
pub(crate) fn queue_estimates(estimate: &LockEstimate, live: &LiveEvidence) -> Vec<QueuedEstimate> {
    if live.traffic != LiveStatus::Read {
        return Vec::new();
    }
    let rates: HashMap<&str, &TableTraffic> = live
        .table_traffic
        .iter()
        .map(|t| (t.relation.as_str(), t))
        .collect();
    estimate
        .statements
        .iter()
        .filter(|st| st.estimated_lock_ms > 0.0)
        .filter_map(|st| {
            let mode = st.blocking_lock?;
            let (with, without): (Vec<&String>, Vec<&String>) = st
                .blocked_relations
                .iter()
                .partition(|r| rates.contains_key(r.as_str()));
            let seconds = st.estimated_lock_ms / 1000.0;
            let sum = |f: fn(&TableTraffic) -> f64| -> f64 {
                with.iter().map(|r| f(rates[r.as_str()])).sum::<f64>() * seconds
            };
            Some(QueuedEstimate {
                statement: st.index,
                lock_ms: st.estimated_lock_ms,
                writes: mode.blocks_writes().then(|| sum(|t| t.writes_per_s)),
                reads: mode.blocks_reads().then(|| sum(|t| t.reads_per_s)),
                relations: with.into_iter().cloned().collect(),
                without_rate: without.into_iter().cloned().collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence::StatementEstimate;
    use migration_parser::LockMode;

    fn statement(index: usize, lock: LockMode, ms: f64, rels: &[&str]) -> StatementEstimate {
        StatementEstimate {
            index,
            estimated_ms: ms,
            blocking_lock: Some(lock),
            blocked_relations: rels.iter().map(|r| r.to_string()).collect(),
            blocks: Some(lock.blocks().into()),
            estimated_lock_ms: ms,
            basis: String::new(),
        }
    }

    fn traffic(rel: &str, writes: f64, reads: f64) -> TableTraffic {
        TableTraffic {
            relation: rel.into(),
            source: "pg_stat_user_tables over 2000 ms".into(),
            window_ms: 2000,
            writes_per_s: writes,
            reads_per_s: reads,
        }
    }

    #[test]
    fn only_the_kinds_the_lock_blocks_queue() {
        let estimate = LockEstimate {
            statements: vec![
                statement(0, LockMode::AccessExclusive, 2000.0, &["s.t"]),
                statement(1, LockMode::Share, 500.0, &["s.t", "s.new"]),
                StatementEstimate::new(2, 0.0),
            ],
            ..Default::default()
        };
        let live = LiveEvidence {
            traffic: LiveStatus::Read,
            table_traffic: vec![traffic("s.t", 10.0, 40.0)],
            ..Default::default()
        };
        let q = queue_estimates(&estimate, &live);
        assert_eq!(q.len(), 2, "{q:#?}");
        assert_eq!(q[0].writes, Some(20.0));
        assert_eq!(q[0].reads, Some(80.0));
        assert_eq!(q[1].writes, Some(5.0));
        assert_eq!(q[1].reads, None, "SHARE lets reads through");
        assert_eq!(q[1].without_rate, vec!["s.new".to_string()]);
        let unread = LiveEvidence {
            traffic: LiveStatus::Unavailable { reason: "x".into() },
            ..live
        };
        assert!(queue_estimates(&estimate, &unread).is_empty());
    }
}
