//! Sample rows for a proof: seeding a few generated rows per table before the migration, and
//! reading every column's values before and after the round trip to find what was lost.

use std::collections::BTreeMap;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use crate::catalog::CatalogSnapshot;
use crate::names::{quote_ident, split_dotted};
use crate::{ColumnLoss, RollbackError};

/// Values known to be valid per `(table, column)`, as text (cast to the column's type on insert).
pub type ValueHints = BTreeMap<(String, String), Vec<String>>;

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

/// A literal of type `ty` for sample row `i`, or `None` when no sample value is known.
fn sample_value(ty: &str, i: usize, snap: &CatalogSnapshot) -> Option<String> {
    let t = ty.to_ascii_lowercase();
    if t.ends_with("[]") {
        return Some(format!("'{{}}'::{ty}"));
    }
    let base = t.split('(').next().unwrap_or("").trim().to_string();
    let v = match base.as_str() {
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" | "oid" => {
            format!("{i}")
        }
        "text" | "character varying" | "character" | "citext" | "name" | "bpchar" => {
            format!("'{i}sample'::{ty}")
        }
        "boolean" => (if i.is_multiple_of(2) { "true" } else { "false" }).to_string(),
        "uuid" => format!("md5('{i}')::uuid"),
        "json" | "jsonb" => format!("'{{\"k\": {i}}}'::{ty}"),
        "date" => format!("date '2020-01-01' + {i}"),
        "timestamp without time zone" | "timestamp with time zone" => {
            format!("(timestamp '2020-01-01 00:00:00' + interval '{i} hours')::{ty}")
        }
        "time without time zone" | "time with time zone" => format!("'10:{i:02}'::{ty}"),
        "interval" => format!("interval '{i} minutes'"),
        "bytea" => format!("convert_to('b{i}', 'UTF8')"),
        "inet" | "cidr" => format!("'10.0.0.{}'::{ty}", i % 250),
        "tsvector" => "''::tsvector".into(),
        "money" => format!("{i}::money"),
        _ => {
            let name = split_dotted(ty).last().cloned().unwrap_or_default();
            match snap.types.get(&name) {
                Some(crate::catalog::TypeSnap::Enum { labels, .. }) if !labels.is_empty() => {
                    format!(
                        "{}::{ty}",
                        crate::names::quote_literal(&labels[i % labels.len()])
                    )
                }
                _ => return None,
            }
        }
    };
    Some(v)
}

/// Insert up to `n` generated rows per table, parents before children; best effort (rows that
/// violate a CHECK or a trigger are skipped). Returns the number of rows inserted.
pub(crate) async fn seed_rows(conn: &mut PgConnection, snap: &CatalogSnapshot, n: usize) -> usize {
    let mut order: Vec<String> = Vec::new();
    let mut pending: Vec<String> = snap.tables.keys().cloned().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|t| {
            let deps_done = snap.tables[t]
                .constraints
                .values()
                .filter(|c| c.kind == "f")
                .all(|c| {
                    let r = c
                        .ref_table
                        .as_deref()
                        .map(split_dotted)
                        .and_then(|p| p.last().cloned())
                        .unwrap_or_default();
                    r == *t || order.contains(&r) || !snap.tables.contains_key(&r)
                });
            if deps_done {
                order.push(t.clone());
            }
            !deps_done
        });
        if pending.len() == before {
            order.append(&mut pending);
        }
    }
    let mut inserted = 0;
    for tname in order {
        let t = &snap.tables[&tname];
        if t.kind == "p" {
            continue;
        }
        let qt = format!("{}.{}", quote_ident(&snap.schema), quote_ident(&tname));
        for i in 1..=n {
            let mut cols = Vec::new();
            let mut vals = Vec::new();
            let mut ok = true;
            for c in &t.columns {
                if c.generated.is_some() || c.identity.is_some() || c.default.is_some() {
                    continue;
                }
                let fk = t
                    .constraints
                    .values()
                    .find(|k| k.kind == "f" && k.columns.len() == 1 && k.columns[0] == c.name);
                let v = match fk {
                    Some(k) => fk_value(&k.definition, i),
                    None => sample_value(&c.data_type, i, snap),
                };
                match v {
                    Some(v) => {
                        cols.push(quote_ident(&c.name));
                        vals.push(v);
                    }
                    None if !c.not_null => {}
                    None => ok = false,
                }
            }
            if !ok {
                break;
            }
            let sql = if cols.is_empty() {
                format!("INSERT INTO {qt} DEFAULT VALUES")
            } else {
                format!(
                    "INSERT INTO {qt} ({}) VALUES ({})",
                    cols.join(", "),
                    vals.join(", ")
                )
            };
            if sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *conn)
                .await
                .is_ok()
            {
                inserted += 1;
            }
        }
    }
    inserted
}

/// `(SELECT refcol FROM reftable ORDER BY 1 OFFSET k LIMIT 1)` from a foreign key definition.
fn fk_value(def: &str, i: usize) -> Option<String> {
    let at = def.find("REFERENCES ")? + "REFERENCES ".len();
    let rest = &def[at..];
    let open = rest.find('(')?;
    let close = rest[open..].find(')')? + open;
    let table = rest[..open].trim();
    let col = rest[open + 1..close].trim();
    if col.contains(',') {
        return None;
    }
    Some(format!(
        "(SELECT {col} FROM {table} ORDER BY 1 OFFSET {} LIMIT 1)",
        (i - 1) % 3
    ))
}
