//! What every data probe's SQL needs on a shard: the probed table ([`Target`]), the primary key
//! that names offending rows, and counting `(count, sample)` rows.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection, Row};

use migration_parser::{CallContext, read_only_query};

use super::model::{Bound, Check};
use super::result::ProbeError;
use crate::ident::quote_ident;
use crate::probe_tx::{ConnectionLost, savepoint};
use crate::safety::refused_calls;

/// The table a data probe reads, on one shard.
pub(crate) struct Target<'a> {
    /// The shard's schema (unqualified names resolve there).
    pub shard_schema: &'a str,
    /// The table's schema.
    pub schema: &'a str,
    /// The table.
    pub table: &'a str,
    /// `schema.table`, quoted.
    pub qt: String,
    /// The sample key of an offending row `x`: its primary key (or `ctid`) as text.
    pub sample: String,
}

/// Rows of `(count(*) OVER (), sample)`.
pub(crate) async fn count_and_samples(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<(u64, Vec<String>), sqlx::Error> {
    // Unique to this shard: not worth a slot in the connection's statement cache.
    let rows = sqlx::query(AssertSqlSafe(sql.to_string()))
        .persistent(false)
        .fetch_all(&mut *conn)
        .await?;
    let mut n = 0u64;
    let mut samples = Vec::new();
    for row in rows {
        let c: i64 = row.try_get(0)?;
        n = c.max(0) as u64;
        let s: Option<String> = row.try_get(1)?;
        samples.push(s.unwrap_or_else(|| "NULL".into()));
    }
    Ok((n, samples))
}

/// Primary-key columns per `(schema, table)`, looked up by oid (`to_regclass` of the quoted
/// name, then `pg_index_indrelid_index`). Every name is qualified: a table missing from the
/// database's batch is looked up inside the shard's transaction, under the tenant's search
/// path, where `oid = regclass` (not an exact match in `pg_catalog`) could resolve to a
/// tenant's operator.
pub(crate) const PKS_SQL: &str = "SELECT r.s, r.t,
       ARRAY(SELECT a.attname::pg_catalog.text
               FROM pg_catalog.pg_index i
               CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(n, o)
               JOIN pg_catalog.pg_attribute a
                 ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.n
              WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.format('%I.%I', r.s, r.t))
                AND i.indisprimary
              ORDER BY k.o)
  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS r(s, t)";

/// Run [`PKS_SQL`] on `(schemas, tables)`: each table's primary-key columns in key order
/// (empty without a primary key).
pub(crate) async fn fetch_pks(
    conn: &mut PgConnection,
    schemas: &[String],
    tables: &[String],
) -> Result<Vec<((String, String), Vec<String>)>, sqlx::Error> {
    let rows = sqlx::query(PKS_SQL)
        .bind(schemas)
        .bind(tables)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?));
    }
    Ok(out)
}

pub(crate) async fn primary_key(
    conn: &mut PgConnection,
    cache: &mut HashMap<(String, String), Vec<String>>,
    schema: &str,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    if let Some(v) = cache.get(&(schema.to_string(), table.to_string())) {
        return Ok(v.clone());
    }
    let rows = sqlx::query(PKS_SQL)
        .bind(vec![schema.to_string()])
        .bind(vec![table.to_string()])
        .fetch_all(&mut *conn)
        .await?;
    let cols: Vec<String> = match rows.first() {
        Some(r) => r.try_get(2)?,
        None => Vec::new(),
    };
    cache.insert((schema.to_string(), table.to_string()), cols.clone());
    Ok(cols)
}

/// The text of a value, through its type's output function (`pg_catalog.format('%s', …)`),
/// NULL for NULL: never `::text`, which runs a cast function a tenant may have created for
/// its own type (`CREATE CAST (mood AS text) WITH FUNCTION …`) — code the `ALTER` never runs.
pub(crate) fn value_text(expr: &str) -> String {
    format!("CASE WHEN ({expr}) IS NULL THEN NULL ELSE pg_catalog.format('%s', {expr}) END")
}

/// The sample text of `cols` of row `alias`: one column's value ([`value_text`]), several as
/// `(ROW(a, b))::text` (the record's output function, which calls each column type's own), or
/// the `ctid`.
pub(crate) fn row_text(alias: &str, cols: &[String]) -> String {
    match cols {
        [] => format!("{alias}.ctid::text"),
        [one] => value_text(&format!("{alias}.{}", quote_ident(one))),
        many => format!(
            "(ROW({}))::text",
            many.iter()
                .map(|c| format!("{alias}.{}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The lateral subquery that binds `bound` beside the probed row `x` (nothing when empty): its
/// names resolve there because the shard's table has no column of that name.
pub(crate) fn bound_sql(bound: &[Bound]) -> String {
    if bound.is_empty() {
        return String::new();
    }
    format!(
        " CROSS JOIN LATERAL (SELECT {}) AS deployclaw_bound",
        bound
            .iter()
            .map(|b| format!("{} AS {}", b.sql, quote_ident(&b.name)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The migration's code among `bound` (added columns' defaults), each as one query.
fn bound_code(bound: &[Bound]) -> impl Iterator<Item = String> + '_ {
    bound
        .iter()
        .filter(|b| b.migration_code)
        .map(|b| format!("SELECT {}", b.sql))
}

/// The text of the migration a probe of `check` evaluates on the shard, each as one query
/// (`SELECT <expression>`): a `CHECK` expression, a `USING` expression cast to the new type,
/// a unique index's key expressions and predicate. Empty when the probe's SQL is all the
/// simulator's own (names quoted, labels as literals).
pub(crate) fn migration_code(check: &Check) -> Vec<String> {
    match check {
        Check::Expression { expr, bound } => std::iter::once(format!("SELECT ({expr})"))
            .chain(bound_code(bound))
            .collect(),
        Check::Cast {
            using: Some(u),
            new_type,
            bound,
            ..
        } => std::iter::once(format!("SELECT ({u})::{new_type}"))
            .chain(bound_code(bound))
            .collect(),
        Check::DomainChecks {
            base,
            using,
            checks,
            bound,
            ..
        } => using
            .iter()
            .map(|u| format!("SELECT ({u})::{base}"))
            .chain(checks.iter().map(|c| format!("SELECT ({c})")))
            .chain(bound_code(bound))
            .collect(),
        Check::Duplicates {
            keys,
            predicate,
            bound,
            ..
        } => keys
            .iter()
            .chain(predicate)
            .map(|e| format!("SELECT ({e})"))
            .chain(bound_code(bound))
            .collect(),
        _ => Vec::new(),
    }
}

/// Why the migration's code in a probe of `check` may not run on the shard of `conn`, if it
/// may not: the migration is untrusted, so what it wrote runs in a probe only as one read-only
/// expression that reads no relation (a `CHECK`, `USING` or index expression cannot hold a
/// subquery; one here would read other tables into the report through an error message) and
/// whose every function, as it resolves on the shard's search path, passes the side-effect
/// policy ([`migration_parser::judge_call`]; `pg_terminate_backend`, advisory locks, server
/// files, `dblink`, a tenant's `VOLATILE` function … are refused). The probe is then skipped:
/// the rehearsal decides. `Err` when the function lookup itself failed (a statement timeout):
/// the probe could not run.
pub(crate) async fn unproven_migration_code(
    conn: &mut PgConnection,
    check: &Check,
) -> Result<Result<Option<String>, ProbeError>, ConnectionLost> {
    for sql in migration_code(check) {
        let refs = match read_only_query(&sql) {
            Ok(r) => r,
            Err(p) => return Ok(Ok(Some(skip_reason(&p.message)))),
        };
        if let Some(rel) = refs.relations.first() {
            return Ok(Ok(Some(skip_reason(&format!(
                "it reads the relation `{rel}`"
            )))));
        }
        if let Some(q) = refs.qualified.first() {
            // `a.f` is also the call `f(a)` when `a` is a row of the probe's query without a
            // column `f` (attribute notation): a function no call names.
            return Ok(Ok(Some(skip_reason(&format!(
                "it names `{q}`, which may call a function by attribute notation"
            )))));
        }
        if refs.functions.is_empty() {
            // Nothing to look up (an operator or cast of built-in types only).
            continue;
        }
        let refused = savepoint(conn, async |c| {
            refused_calls(c, &refs.functions, CallContext::ReadOnlyProbe).await
        })
        .await?;
        match refused {
            Ok(r) if r.is_empty() => {}
            Ok(r) => {
                let why: Vec<String> = r
                    .iter()
                    .map(|c| format!("`{}`: {}", c.call.name, c.reason))
                    .collect();
                return Ok(Ok(Some(skip_reason(&why.join("; ")))));
            }
            // The lookup itself failed (a statement timeout, a lock): the probe could not run,
            // which is a finding of its rule, not a deliberate skip.
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(None))
}

fn skip_reason(why: &str) -> String {
    format!(
        "the migration's expression is not proven free of side effects on this shard ({why}): rehearsal decides"
    )
}
