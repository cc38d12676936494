//! Value hints from the planner statistics: the values `pg_stats` already holds for a few
//! columns (`most_common_vals`, `histogram_bounds`), read without touching a table. The
//! rollback proof seeds its sample rows with them, so that a migration's `USING` cast or new
//! constraint sees values like the shard's. These are real values: they go to the shadow only,
//! never to a report or a log.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Connection as _, PgConnection, Row as _};

use crate::error::TopologyError;

/// Most values kept per column.
pub const MAX_HINTS_PER_COLUMN: usize = 24;
/// Longer values are left out (a sample row needs a value, not a document).
const MAX_HINT_BYTES: usize = 256;

/// For each `(table, column)` of `schema` asked for, the distinct values `pg_stats` holds (most
/// common values first, then histogram bounds; at most [`MAX_HINTS_PER_COLUMN`], each as the
/// column type's text form). Read in one `READ ONLY` transaction with `statement_timeout`
/// (e.g. `"5s"`), always rolled back. A column without statistics (never analyzed, or not
/// readable by the role) is absent from the result.
pub async fn value_hints(
    conn: &mut PgConnection,
    schema: &str,
    columns: &[(String, String)],
    statement_timeout: &str,
) -> Result<BTreeMap<(String, String), Vec<String>>, TopologyError> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    if columns.is_empty() {
        return Ok(out);
    }
    let target = format!("schema {schema}");
    let q = |what: &'static str| {
        let target = target.clone();
        move |e: sqlx::Error| TopologyError::query(target, what, e)
    };
    let mut tx = conn.begin().await.map_err(q("begin"))?;
    sqlx::query("SET TRANSACTION READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(q("set read only"))?;
    sqlx::query("SELECT pg_catalog.set_config('statement_timeout', $1, true)")
        .bind(statement_timeout)
        .execute(&mut *tx)
        .await
        .map_err(q("set statement_timeout"))?;
    let (tables, cols): (Vec<&str>, Vec<&str>) = columns
        .iter()
        .map(|(t, c)| (t.as_str(), c.as_str()))
        .unzip();
    let rows = sqlx::query(
        "SELECT s.tablename::text AS t, s.attname::text AS c, \
                s.most_common_vals::text::text[] AS mcv, s.histogram_bounds::text::text[] AS hist \
         FROM pg_catalog.pg_stats s \
         JOIN unnest($2::text[], $3::text[]) AS w(t, c) ON s.tablename = w.t AND s.attname = w.c \
         WHERE s.schemaname = $1 \
         ORDER BY s.tablename, s.attname, s.inherited",
    )
    .bind(schema)
    .bind(&tables)
    .bind(&cols)
    .fetch_all(&mut *tx)
    .await
    .map_err(q("read pg_stats"))?;
    tx.rollback().await.map_err(q("rollback"))?;
    for row in rows {
        let key: (String, String) = (row.get("t"), row.get("c"));
        let mcv: Option<Vec<String>> = row.try_get("mcv").unwrap_or(None);
        let hist: Option<Vec<String>> = row.try_get("hist").unwrap_or(None);
        let values = out.entry(key).or_default();
        let mut seen: BTreeSet<String> = values.iter().cloned().collect();
        for v in mcv.into_iter().flatten().chain(hist.into_iter().flatten()) {
            if values.len() >= MAX_HINTS_PER_COLUMN {
                break;
            }
            if v.len() <= MAX_HINT_BYTES && seen.insert(v.clone()) {
                values.push(v);
            }
        }
    }
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}
