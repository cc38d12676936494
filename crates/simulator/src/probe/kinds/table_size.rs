//! `table_size`: size and row estimate of every table the migration touches (evidence for the
//! lock-time estimate; predicts no failure).

use std::time::Instant;

use migration_parser::Operation;
use sqlx::{PgConnection, Row};

use crate::probe::cx::{PlanCx, touched_tables};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{ProbePlan, resolve};
use crate::probe::result::{ProbeResult, TableStats, shard_query_failed};
use crate::probe::spec::ProbeSpec;
use crate::probe_tx::{ConnectionLost, savepoint};

/// The `table_size` kind.
pub(crate) struct TableSize;

impl ProbeSpec for TableSize {
    fn kind(&self) -> ProbeKind {
        ProbeKind::TableSize
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        for (t, _) in touched_tables(op) {
            if let Some(st) = cx.shard_table(t) {
                cx.plan.tables.insert(st);
            }
        }
    }
}

/// Sizes of the planned tables (summed over partitions). Every catalog lookup is by oid
/// (`to_regclass` of the quoted name, then `pg_class_oid_index`): on a database with thousands of
/// tenant schemas a join over `pg_class` costs a sequential scan per shard, and an `OR` in the
/// join once pushed the plan over `jit_above_cost` (400 ms of JIT compilation per shard). The
/// total is `pg_table_size + pg_indexes_size`, which is what `pg_total_relation_size` computes,
/// without measuring every index a second time (each size is a `stat` of every fork's files).
const SIZES_SQL: &str = "SELECT r.s, r.t, c.oid IS NOT NULL,
       COALESCE(sum(p.heap), 0)::int8,
       COALESCE(sum(p.tbl + p.idx), 0)::int8,
       COALESCE(sum(p.idx), 0)::int8,
       sum(GREATEST(p.reltuples, 0))::int8,
       bool_and(p.reltuples < 0) FILTER (WHERE p.relkind <> 'p')
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(s, t, ord)
  LEFT JOIN LATERAL (SELECT c.oid, c.relkind FROM pg_class c
                      WHERE c.oid = to_regclass(format('%I.%I', r.s, r.t))
                        AND c.relkind IN ('r', 'p', 'm')) c ON true
  LEFT JOIN LATERAL (SELECT pc.oid, pc.relkind, pc.reltuples FROM pg_class pc
                      WHERE c.relkind <> 'p' AND pc.oid = c.oid
                     UNION ALL
                     SELECT pc.oid, pc.relkind, pc.reltuples FROM pg_class pc
                      WHERE c.relkind = 'p'
                        AND pc.oid = ANY (ARRAY(SELECT relid FROM pg_partition_tree(c.oid)))) pc ON true
  LEFT JOIN LATERAL (SELECT pc.oid, pc.relkind, pc.reltuples,
                            pg_relation_size(pc.oid) AS heap, pg_table_size(pc.oid) AS tbl,
                            pg_indexes_size(pc.oid) AS idx OFFSET 0) p ON pc.oid IS NOT NULL
 GROUP BY r.ord, r.s, r.t, c.oid
 ORDER BY r.ord";

pub(crate) async fn run_sizes(
    conn: &mut PgConnection,
    shard_id: &str,
    schema: &str,
    plan: &ProbePlan,
) -> Result<(Vec<TableStats>, Vec<ProbeResult>), ConnectionLost> {
    if plan.tables.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let started = Instant::now();
    let (ss, ts): (Vec<String>, Vec<String>) =
        plan.tables.iter().map(|t| resolve(t, schema)).unzip();
    let res = savepoint(conn, async |c| {
        sqlx::query(SIZES_SQL)
            .bind(&ss)
            .bind(&ts)
            .fetch_all(&mut *c)
            .await
    })
    .await?;
    let elapsed = started.elapsed().as_millis() as u64;
    let rows = match res {
        Ok(rows) => rows,
        // No sizes: the lock-time estimate would count no rewrite or scan time, so the failure
        // is evidence of its own (reported by `lock-time-budget`), never an empty table list.
        Err(e) => {
            let failed = shard_query_failed(
                shard_id,
                ProbeKind::TableSize,
                schema,
                e,
                SIZES_SQL,
                elapsed,
            );
            return Ok((Vec::new(), vec![failed]));
        }
    };
    let mut stats = Vec::new();
    let mut results = Vec::new();
    for row in rows {
        let s: String = row.try_get(0).unwrap_or_default();
        let t: String = row.try_get(1).unwrap_or_default();
        let exists: bool = row.try_get(2).unwrap_or(false);
        let heap: i64 = row.try_get(3).unwrap_or(0);
        let total: i64 = row.try_get(4).unwrap_or(0);
        let idx: i64 = row.try_get(5).unwrap_or(0);
        let tuples: Option<i64> = row.try_get(6).unwrap_or(None);
        let never_analyzed: Option<bool> = row.try_get(7).unwrap_or(None);
        let row_estimate = if never_analyzed == Some(true) {
            None
        } else {
            tuples
        };
        if exists {
            results.push(ProbeResult {
                shard: shard_id.to_string(),
                kind: ProbeKind::TableSize,
                statement_index: None,
                schema: s.clone(),
                table: t.clone(),
                column: None,
                constraint: None,
                count: row_estimate.unwrap_or(0).max(0) as u64,
                exact: false,
                samples: vec![],
                would_fail: false,
                bytes: Some(total),
                skipped: None,
                note: if row_estimate.is_none() {
                    Some("never analyzed: no row estimate".into())
                } else {
                    None
                },
                error: None,
                sql: SIZES_SQL.to_string(),
                duration_ms: elapsed,
            });
        }
        stats.push(TableStats {
            schema: s,
            table: t,
            exists,
            heap_bytes: heap,
            total_bytes: total,
            index_bytes: idx,
            row_estimate,
        });
    }
    Ok((stats, results))
}
