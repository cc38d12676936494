//! `table_size`: size and row estimate of every table the migration touches (evidence for the
//! lock-time estimate; predicts no failure).

use std::time::Instant;

use crate::probe::cx::{PlanCx, touched_tables};
use crate::probe::kind::ProbeKind;
use crate::probe::model::{ProbePlan, resolve};
use crate::probe::result::{ProbeResult, TableStats, shard_query_failed};
use crate::probe::spec::ProbeSpec;
use crate::probe_tx::{ConnectionLost, savepoint};
use migration_parser::Operation;
use sqlx::{PgConnection, Row};

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
       bool_and(p.reltuples < 0) FILTER (WHERE p.relkind <> 'p'),
       r.ord::int8
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

/// The arguments of [`SIZES_SQL`] for `plan` on the shard whose tables are in `schema`,
/// appended to `args` (schemas, tables): one shard's, or a whole database's in a row.
pub(crate) fn push_size_args(plan: &ProbePlan, schema: &str, args: &mut [Vec<String>; 2]) {
    for t in &plan.tables {
        let (s, t) = resolve(t, schema);
        args[0].push(s);
        args[1].push(t);
    }
}

/// Run [`SIZES_SQL`] on `args`: `(position in args, sizes)` per table.
pub(crate) async fn fetch_sizes(
    conn: &mut PgConnection,
    args: &[Vec<String>; 2],
) -> Result<Vec<(usize, TableStats)>, sqlx::Error> {
    let rows = sqlx::query(SIZES_SQL)
        .bind(&args[0])
        .bind(&args[1])
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let tuples: Option<i64> = row.try_get(6)?;
        let never_analyzed: Option<bool> = row.try_get(7)?;
        let ord: i64 = row.try_get(8)?;
        let Ok(i) = usize::try_from(ord - 1) else {
            continue;
        };
        out.push((
            i,
            TableStats {
                schema: row.try_get(0)?,
                table: row.try_get(1)?,
                exists: row.try_get(2)?,
                heap_bytes: row.try_get(3)?,
                total_bytes: row.try_get(4)?,
                index_bytes: row.try_get(5)?,
                row_estimate: if never_analyzed == Some(true) {
                    None
                } else {
                    tuples
                },
            },
        ));
    }
    Ok(out)
}

/// The sizes of `plan`'s tables on one shard, in one query under the probe savepoint: the
/// tables' sizes and one `table_size` result per existing table. A failed query is the
/// evidence: the lock-time estimate would count no rewrite or scan time, so it is reported
/// (by `lock-time-budget`), never an empty table list.
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
    let mut args: [Vec<String>; 2] = Default::default();
    push_size_args(plan, schema, &mut args);
    let res = savepoint(conn, async |c| fetch_sizes(c, &args).await).await?;
    let elapsed = started.elapsed().as_millis() as u64;
    match res {
        Ok(rows) => {
            let stats: Vec<TableStats> = rows.into_iter().map(|(_, s)| s).collect();
            let results = size_results(shard_id, &stats, elapsed);
            Ok((stats, results))
        }
        Err(e) => {
            let failed = shard_query_failed(
                shard_id,
                ProbeKind::TableSize,
                schema,
                e,
                SIZES_SQL,
                elapsed,
            );
            Ok((Vec::new(), vec![failed]))
        }
    }
}

/// One `table_size` result per existing table of `stats` (one shard's sizes, read in
/// `elapsed` ms).
pub(crate) fn size_results(shard_id: &str, stats: &[TableStats], elapsed: u64) -> Vec<ProbeResult> {
    stats
        .iter()
        .filter(|s| s.exists)
        .map(|s| ProbeResult {
            shard: shard_id.to_string(),
            kind: ProbeKind::TableSize,
            statement_index: None,
            schema: s.schema.clone(),
            table: s.table.clone(),
            column: None,
            constraint: None,
            count: s.row_estimate.unwrap_or(0).max(0) as u64,
            exact: false,
            samples: vec![],
            would_fail: false,
            bytes: Some(s.total_bytes),
            skipped: None,
            note: s
                .row_estimate
                .is_none()
                .then(|| "never analyzed: no row estimate".into()),
            error: None,
            sql: SIZES_SQL.to_string(),
            duration_ms: elapsed,
        })
        .collect()
}
