//! Reading every column's values before and after the round trip, and what was lost.

use std::collections::BTreeMap;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use crate::catalog::CatalogSnapshot;
use crate::names::quote_ident;
use crate::{ColumnLoss, RollbackError};

pub(crate) type Values = BTreeMap<(String, String), Vec<Option<String>>>;

/// The sorted text values of every column of every non-empty table.
pub(crate) async fn column_values(
    conn: &mut PgConnection,
    snap: &CatalogSnapshot,
) -> Result<Values, RollbackError> {
    let mut out = Values::new();
    for (tname, t) in &snap.tables {
        if t.columns.is_empty() {
            continue;
        }
        let qt = format!("{}.{}", quote_ident(&snap.schema), quote_ident(tname));
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|c| {
                format!(
                    "(SELECT array_agg(x ORDER BY x) FROM (SELECT {}::text AS x FROM {qt}) s)",
                    quote_ident(&c.name)
                )
            })
            .collect();
        let sql = format!("SELECT {}", cols.join(", "));
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await
            .map_err(|source| RollbackError::Database {
                action: format!("read sample values of {tname}"),
                source,
            })?;
        for (i, c) in t.columns.iter().enumerate() {
            let v: Option<Vec<Option<String>>> = row.try_get(i).unwrap_or(None);
            if let Some(v) = v {
                out.insert((tname.clone(), c.name.clone()), v);
            }
        }
    }
    Ok(out)
}

/// The columns whose values of `before` are not all found again in `after`.
pub(crate) fn compare_values(before: &Values, after: &Values) -> Vec<ColumnLoss> {
    let mut out = Vec::new();
    let after_tables: std::collections::BTreeSet<&str> =
        after.keys().map(|(t, _)| t.as_str()).collect();
    for ((t, c), b) in before {
        if b.is_empty() {
            continue;
        }
        match after.get(&(t.clone(), c.clone())) {
            None => out.push(ColumnLoss {
                table: t.clone(),
                column: c.clone(),
                rows_before: b.len(),
                values_lost: b.len(),
                reason: if after.keys().any(|(at, ac)| at == t && ac == c) {
                    "no value after the round trip".into()
                } else if after_tables.contains(t.as_str()) {
                    "the column has no values after the round trip".into()
                } else {
                    "the table is empty or missing after the round trip (rows deleted or table dropped and recreated)".into()
                },
            }),
            Some(a) if a != b => {
                let mut pool: Vec<&Option<String>> = a.iter().collect();
                let mut lost = 0;
                for v in b {
                    match pool.iter().position(|x| *x == v) {
                        Some(p) => {
                            pool.swap_remove(p);
                        }
                        None => lost += 1,
                    }
                }
                out.push(ColumnLoss {
                    table: t.clone(),
                    column: c.clone(),
                    rows_before: b.len(),
                    values_lost: lost,
                    reason: if a.iter().all(Option::is_none) {
                        "every value is NULL after the round trip (column dropped and re-added)".into()
                    } else {
                        format!("{lost} of {} values differ after the round trip", b.len())
                    },
                });
            }
            _ => {}
        }
    }
    out
}
