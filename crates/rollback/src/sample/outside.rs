//! Parents outside the proof's schema: a tenant table's foreign key to a shared table
//! (`shared.plans`) needs a parent row, but the shadow holds the shard's structure only, so the
//! shared table is empty and the tenant table could get no row. Such parents — and their own
//! parents in their schema — are seeded first, with synthetic values only (the shard's value
//! hints name tables of the proof's schema, never these).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};
use topology::catalog::{Catalog, ConstraintType, TableKind};

use super::cx::SeedCx;
use super::report::{SeedReport, ValueHints};
use super::sql::{release, savepoint};
use super::{cycles, order, table};
use crate::names::quote_ident;

/// Tables of other schemas that tables of `cat` reference, by schema.
fn referenced_outside(cat: &Catalog) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in cat.tables.values() {
        for c in t.constraints.values() {
            if c.kind != ConstraintType::ForeignKey {
                continue;
            }
            if let Some(fk) = &c.foreign_key
                && fk.references.schema != cat.schema
            {
                out.entry(fk.references.schema.clone())
                    .or_default()
                    .insert(fk.references.name.clone());
            }
        }
    }
    out
}

/// `wanted` and every table of `cat` they reference, transitively.
fn with_parents(cat: &Catalog, wanted: &BTreeSet<String>) -> BTreeSet<String> {
    let mut all = wanted.clone();
    let mut todo: Vec<String> = wanted.iter().cloned().collect();
    while let Some(name) = todo.pop() {
        let Some(t) = cat.tables.get(&name) else {
            continue;
        };
        for fk in t
            .constraints
            .values()
            .filter_map(|c| c.foreign_key.as_ref())
        {
            if fk.references.schema == cat.schema && all.insert(fk.references.name.clone()) {
                todo.push(fk.references.name.clone());
            }
        }
    }
    all
}

/// The table has no row on the shadow (a sample of real rows may already have filled it).
async fn is_empty(conn: &mut PgConnection, schema: &str, name: &str) -> bool {
    let sql = format!(
        "SELECT NOT EXISTS (SELECT 1 FROM {}.{})",
        quote_ident(schema),
        quote_ident(name)
    );
    savepoint(conn).await;
    let r = sqlx::query(AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get::<bool, _>(0));
    release(conn, r.is_ok()).await;
    r.unwrap_or(false)
}

/// Seed the empty parents outside `cat`'s schema (inside the caller's seeding transaction);
/// what they got goes into `report` under qualified names (`shared.plans`).
pub(super) async fn seed_outside_parents(
    conn: &mut PgConnection,
    cat: &Catalog,
    n: usize,
    checker: bool,
    report: &mut SeedReport,
) {
    let no_hints = ValueHints::new();
    let no_casts = BTreeMap::new();
    for (schema, tables) in referenced_outside(cat) {
        savepoint(conn).await;
        let other = topology::catalog::introspect_schema_in_transaction(conn, &schema).await;
        release(conn, other.is_ok()).await;
        let Ok(other) = other else {
            continue;
        };
        let wanted = with_parents(&other, &tables);
        let mut part = SeedReport::default();
        let mut cx = SeedCx {
            cat: &other,
            hints: &no_hints,
            casts: &no_casts,
            n,
            checker,
            types: HashMap::new(),
            later: Vec::new(),
            report: &mut part,
        };
        for name in order::parents_first(&other) {
            let t = &other.tables[&name];
            if wanted.contains(&name)
                && matches!(t.kind, TableKind::Ordinary | TableKind::Partitioned)
                && t.partition_of.is_none()
                && is_empty(conn, &schema, &name).await
            {
                table::seed_table(conn, &mut cx, t).await;
            }
        }
        let later = std::mem::take(&mut cx.later);
        cycles::close(conn, &other, &later).await;
        let q = |t: String| format!("{schema}.{t}");
        report
            .rows
            .extend(part.rows.into_iter().map(|(t, r)| (q(t), r)));
        report
            .skipped
            .extend(part.skipped.into_iter().map(|(t, w)| (q(t), w)));
        report
            .short
            .extend(part.short.into_iter().map(|(t, w)| (q(t), w)));
        report.fallbacks.extend(part.fallbacks);
    }
}
