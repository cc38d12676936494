//! Candidate values of one column, best first: the shard's real values (hints), values of the
//! types the migration casts the column to, constants of the CHECKs on it (and its domain's),
//! synthetic values of its type; all tested against the column's type, and against the cast
//! targets where the migration has some.

use topology::catalog::{Column, ConstraintType, Table};

use super::cx::SeedCx;
use super::types::{self, TypeInfo};
use sqlx::postgres::PgConnection;

/// A column's candidates.
#[derive(Debug, Default)]
pub(super) struct Candidates {
    /// Values as text, best first, distinct.
    pub values: Vec<String>,
    /// How many of the first `values` are hint values.
    pub hinted: usize,
    /// NULL is allowed (column and domain).
    pub nullable: bool,
    /// Why the column falls back from what it should take, if it does.
    pub note: Option<String>,
}

fn push_distinct(out: &mut Vec<String>, v: String) {
    if !out.contains(&v) {
        out.push(v);
    }
}

/// Values derived from the constants of `checks` for a column of type `info`.
fn from_checks(info: &TypeInfo, checks: &[&str], count: usize) -> Vec<String> {
    let (mut nums, mut strs) = (Vec::new(), Vec::new());
    for c in checks {
        let (n, s) = types::check_literals(c);
        nums.extend(n);
        strs.extend(s);
    }
    if types::is_numeric(&info.base) {
        types::numbers_around(&nums)
    } else if types::is_textual(&info.base) || !info.labels.is_empty() {
        strs.extend(types::strings_of_length(&nums, count));
        strs
    } else {
        // Dates, timestamps, …: the quoted constants, tested by the type's cast.
        strs
    }
}

/// The bounds (`FOR VALUES FROM (…) TO (…)`, `IN (…)`) of the partitions of `table` when
/// `column` is in its partition key: a row must fall in one of them.
fn partition_bounds<'c>(cx: &SeedCx<'c>, table: &Table, column: &str) -> Vec<&'c str> {
    let in_key = table.partition_key.as_deref().is_some_and(|k| {
        k.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == column)
    });
    if !in_key {
        return Vec::new();
    }
    cx.cat
        .tables
        .values()
        .filter(|p| {
            p.partition_of
                .as_ref()
                .is_some_and(|o| o.schema == cx.cat.schema && o.name == table.name)
        })
        .filter_map(|p| p.partition_bound.as_deref())
        .collect()
}

/// The server's name of a type the migration spells (`int` → `integer`), if it exists.
async fn server_type(conn: &mut PgConnection, ty: &str) -> Option<String> {
    sqlx::query_scalar::<_, Option<String>>("SELECT pg_catalog.to_regtype($1)::text")
        .bind(ty)
        .fetch_one(&mut *conn)
        .await
        .ok()
        .flatten()
}

/// The candidates of column `col` of `table`.
pub(super) async fn candidates(
    conn: &mut PgConnection,
    cx: &mut SeedCx<'_>,
    table: &Table,
    col: &Column,
) -> Candidates {
    let count = cx.n + 8;
    let info = types::type_info(conn, &col.data_type, &mut cx.types).await;
    let key = (table.name.clone(), col.name.clone());
    let mut values = Vec::new();
    for h in cx.hints.get(&key).into_iter().flatten() {
        push_distinct(&mut values, h.clone());
    }
    let hints = values.len();
    let mut targets = Vec::new();
    for ty in cx.casts.get(&key).into_iter().flatten() {
        let Some(ty) = server_type(conn, ty).await else {
            continue;
        };
        let target = types::type_info(conn, &ty, &mut cx.types).await;
        (0..count)
            .filter_map(|k| types::synthetic(&target, k))
            .for_each(|v| push_distinct(&mut values, v));
        targets.push(ty);
    }
    let mut checks: Vec<&str> = table
        .constraints
        .values()
        .filter(|c| c.kind == ConstraintType::Check && c.columns.contains(&col.name))
        .map(|c| c.definition.as_str())
        .collect();
    checks.extend(info.checks.iter().map(String::as_str));
    checks.extend(partition_bounds(cx, table, &col.name));
    from_checks(&info, &checks, count)
        .into_iter()
        .for_each(|v| push_distinct(&mut values, v));
    (0..count)
        .filter_map(|k| types::synthetic(&info, k))
        .for_each(|v| push_distinct(&mut values, v));
    let mut out = Candidates {
        nullable: !col.not_null && !info.not_null,
        ..Default::default()
    };
    let (values, hinted) = filter(conn, cx.checker, values, hints, &col.data_type).await;
    if hints > 0 && hinted == 0 {
        out.note = Some("the hint values do not fit the column's type".into());
    }
    let mut kept = (values, hinted);
    for ty in &targets {
        let (v, h) = filter(conn, cx.checker, kept.0.clone(), kept.1, ty).await;
        if v.is_empty() {
            out.note = Some(format!("no candidate value casts to {ty}"));
            break;
        }
        kept = (v, h);
    }
    (out.values, out.hinted) = kept;
    if out.values.is_empty() && out.note.is_none() {
        out.note = Some(format!("no sample value for type {}", col.data_type));
    }
    out
}

/// The values of `values` the server accepts as `ty`, and how many of the first `hinted` are
/// kept.
async fn filter(
    conn: &mut PgConnection,
    checker: bool,
    values: Vec<String>,
    hinted: usize,
    ty: &str,
) -> (Vec<String>, usize) {
    if !checker || values.is_empty() {
        return (values, hinted);
    }
    let ok = types::accepted(conn, &values, ty).await;
    let mut kept_hints = 0;
    let mut out = Vec::new();
    for (i, (v, ok)) in values.into_iter().zip(ok).enumerate() {
        if ok {
            kept_hints += usize::from(i < hinted);
            out.push(v);
        }
    }
    (out, kept_hints)
}
