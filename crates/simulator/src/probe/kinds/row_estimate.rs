//! `row_estimate`: how many rows an `UPDATE` / `DELETE` whose `WHERE` is not a bounded batch
//! touches on the shard. First the planner's estimate of the same row set (`EXPLAIN` of a
//! `SELECT` over the statement's `FROM` and `WHERE`: planned, never executed); when that is at
//! most [`EXACT_COUNT_BELOW`] rows, an exact `count(*)` under the probe transaction's
//! `statement_timeout` (a timeout keeps the estimate). Predicts no failure; the figure goes
//! into `unbatched-data-change`.
//!
//! The `WHERE` is the migration's code: it runs only after every function it calls, as it
//! resolves on the shard, passed the side-effect policy (`CallContext::ReadOnlyProbe`), inside
//! the read-only probe transaction. It may read relations (a subquery) — only a count leaves
//! the shard, and a failure is reported by its SQLSTATE alone, never the server's message
//! (which could quote a row).

use migration_parser::{CallContext, Operation, RowFilter, read_only_query};
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::probe::cx::PlanCx;
use crate::probe::kind::ProbeKind;
use crate::probe::model::{Check, PlannedProbe};
use crate::probe::result::ProbeResult;
use crate::probe::spec::ProbeSpec;
use crate::probe_tx::{ConnectionLost, savepoint};
use crate::safety::refused_calls;

/// An estimate at or below this many rows is replaced by an exact count.
pub(crate) const EXACT_COUNT_BELOW: u64 = 100_000;

/// The `row_estimate` kind.
pub(crate) struct RowEstimate;

impl ProbeSpec for RowEstimate {
    fn kind(&self) -> ProbeKind {
        ProbeKind::RowEstimate
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        let (table, filter) = match op {
            Operation::Update {
                table,
                filter: Some(f),
                ..
            }
            | Operation::Delete {
                table,
                filter: Some(f),
                ..
            } if !f.batched => (table, f),
            _ => return,
        };
        let (t, skipped) = cx.probe_table(table);
        let note = cx.data_note(table);
        cx.push_probe(PlannedProbe {
            statement_index: cx.si,
            kind: ProbeKind::RowEstimate,
            table: t,
            column: None,
            constraint: None,
            check: Check::RowEstimate {
                filter: filter.clone(),
            },
            would_fail: false,
            skipped,
            note,
        });
    }
}

/// `SELECT <what> FROM <the statement's tables> WHERE <its condition>`.
fn select(filter: &RowFilter, what: &str) -> String {
    format!(
        "SELECT {what} FROM {} WHERE {}",
        filter.from_sql, filter.where_sql
    )
}

/// The planner's row estimate of the top plan node of an `EXPLAIN (FORMAT JSON)` output.
fn plan_rows(json: &serde_json::Value) -> Option<u64> {
    json.get(0)?
        .get("Plan")?
        .get("Plan Rows")?
        .as_f64()
        .map(|n| n.max(0.0).round() as u64)
}

/// "failed with SQLSTATE 42703" — the server's message is not kept (it could quote a row).
fn failed(what: &str, e: &evidence::ProbeError) -> String {
    format!(
        "{what} failed on this shard with SQLSTATE {} (the WHERE may need the migration's earlier \
         statements): rehearsal decides",
        e.sqlstate.as_deref().unwrap_or("unknown")
    )
}

/// Run the probe into `r` (count, exact, sql, skipped, note).
pub(crate) async fn run(
    conn: &mut PgConnection,
    filter: &RowFilter,
    r: &mut ProbeResult,
) -> Result<(), ConnectionLost> {
    let probe = select(filter, "1");
    let refs = match read_only_query(&probe) {
        Ok(refs) => refs,
        Err(p) => {
            r.skipped = Some(format!(
                "the WHERE is not one read-only condition ({}): rehearsal decides",
                p.message
            ));
            return Ok(());
        }
    };
    let refused = savepoint(conn, async |c| {
        refused_calls(c, &refs.functions, CallContext::ReadOnlyProbe).await
    })
    .await?;
    match refused {
        Ok(v) if v.is_empty() => {}
        Ok(v) => {
            let why: Vec<String> = v
                .iter()
                .map(|c| format!("`{}`: {}", c.call.name, c.reason))
                .collect();
            r.skipped = Some(format!(
                "the WHERE calls functions not proven free of side effects ({}): not estimated",
                why.join("; ")
            ));
            return Ok(());
        }
        Err(e) => {
            r.skipped = Some(failed("checking the WHERE's functions", &e));
            return Ok(());
        }
    }
    let explain = format!("EXPLAIN (FORMAT JSON) {probe}");
    r.sql = explain.clone();
    let planned = savepoint(conn, async |c| {
        let row = sqlx::query(AssertSqlSafe(explain.as_str()))
            .fetch_one(&mut *c)
            .await?;
        row.try_get::<serde_json::Value, _>(0)
    })
    .await?;
    let estimate = match planned {
        Ok(json) => plan_rows(&json),
        Err(e) => {
            r.skipped = Some(failed("EXPLAIN of the WHERE", &e));
            return Ok(());
        }
    };
    let Some(estimate) = estimate else {
        r.skipped = Some("EXPLAIN gave no row estimate: rehearsal decides".into());
        return Ok(());
    };
    r.count = estimate;
    r.exact = false;
    if estimate > EXACT_COUNT_BELOW {
        return Ok(());
    }
    let count_sql = select(filter, "count(*)");
    let counted = savepoint(conn, async |c| {
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(count_sql.as_str()))
            .fetch_one(&mut *c)
            .await
    })
    .await?;
    match counted {
        Ok(n) => {
            r.count = n.max(0) as u64;
            r.exact = true;
            r.sql = count_sql;
        }
        Err(e) => {
            r.note = Some(format!(
                "the exact count did not finish (SQLSTATE {}): the planner's estimate is shown",
                e.sqlstate.as_deref().unwrap_or("unknown")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_plan_node_gives_the_estimate() {
        let json = serde_json::json!([{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 1234.0}}]);
        assert_eq!(plan_rows(&json), Some(1234));
        assert_eq!(plan_rows(&serde_json::json!([])), None);
    }
}
