//! Sample rows for a proof, valid by construction, and the values read back after the round
//! trip.
//!
//! [`seed_rows`] inserts up to `n` rows per table of the pre-migration schema, in one
//! transaction on the shadow:
//! 1. what the migration will ask of existing rows ([`needs`]: new CHECKs, `SET NOT NULL`, new
//!    unique indexes and keys, new foreign keys) is installed as temporary `NOT VALID`
//!    constraints and unique indexes, so the server rejects a row the migration would reject;
//!    a column whose type changes gets values that cast to the new type;
//! 2. tables are seeded parents first ([`order`]) — empty parents in other schemas (a shared
//!    `plans` table) before all ([`outside`]); a foreign key's columns take the parents'
//!    seeded keys together (multi-column keys included; a self-reference takes the rows seeded
//!    before, or the row's own key); a cycle's nullable foreign keys start NULL;
//! 3. every other column takes candidates ([`column`]): the shard's real values
//!    ([`ValueHints`]) first, then values of the type a `ALTER TYPE` casts to, constants of the
//!    CHECKs on it, then synthetic values of its type (enum labels, domain base, arrays), each
//!    tested against the column's type (domain CHECKs included) before use; a column with a
//!    default, identity or generation expression is left to it;
//! 4. each row is inserted under a SAVEPOINT ([`table`]); a failure names a constraint or a
//!    column (`23514`, `23505`, `23503`, `23502`, `23P01`), whose columns move to their next
//!    candidate (a column with a default starts taking candidates), then NULL where nullable;
//! 5. the temporary objects are dropped before `COMMIT` (if one cannot be, everything is
//!    rolled back and the report says so): the catalog the proof compares is untouched.
//!
//! The [`SeedReport`] says how many rows each table got, which tables got none and why, and
//! which columns fell back. Hint values (real data of the shard) go into the shadow only: no
//! report line, log line or error message carries a value, only names and SQLSTATEs.

mod column;
mod cx;
mod cycles;
mod needs;
mod order;
mod outside;
mod report;
mod sql;
mod table;
mod types;
mod values;

use std::collections::HashMap;

use migration_parser::Migration;
use sqlx::postgres::PgConnection;
use topology::catalog::{Catalog, TableKind};

pub use report::{ColumnFallback, SeedReport, ValueHints};
use sql::guarded;
pub(crate) use values::{column_values, compare_values};

/// Insert up to `n` rows, valid by construction, into every table of `c0` (the pre-migration
/// catalog of the proof's schema, introspected on `conn`), preferring `hints` and the values
/// `migration` will need. Never fails: what could not be seeded is in the report. `conn` must
/// not be inside a transaction.
pub async fn seed_rows(
    conn: &mut PgConnection,
    c0: &Catalog,
    n: usize,
    hints: &ValueHints,
    migration: &Migration,
) -> SeedReport {
    let mut report = SeedReport::default();
    if n == 0 || sqlx::raw_sql("BEGIN").execute(&mut *conn).await.is_err() {
        return report;
    }
    let needs = needs::derive(migration, c0);
    let mut temps = Vec::new();
    for t in &needs.temps {
        if guarded(conn, &t.create).await.is_ok() {
            temps.push(t);
        }
    }
    let working = if temps.is_empty() {
        None
    } else {
        topology::catalog::introspect_schema_in_transaction(conn, &c0.schema)
            .await
            .ok()
    };
    let cat = working.as_ref().unwrap_or(c0);
    let checker = types::install_try_cast(conn).await;
    outside::seed_outside_parents(conn, cat, n, checker, &mut report).await;
    let mut cx = cx::SeedCx {
        cat,
        hints,
        casts: &needs.casts,
        n,
        checker,
        types: HashMap::new(),
        later: Vec::new(),
        report: &mut report,
    };
    for name in order::parents_first(cat) {
        let t = &cat.tables[&name];
        if matches!(t.kind, TableKind::Ordinary | TableKind::Partitioned)
            && t.partition_of.is_none()
        {
            table::seed_table(conn, &mut cx, t).await;
        }
    }
    cycles::close(conn, cat, &cx.later).await;
    let _ = guarded(
        conn,
        "DROP FUNCTION IF EXISTS pg_temp.deployclaw_try_cast(text, text)",
    )
    .await;
    for t in temps.iter().rev() {
        if let Err(e) = guarded(conn, &t.drop).await {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            let code = e
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()))
                .unwrap_or_default();
            let why = format!(
                "a temporary seeding constraint could not be removed (SQLSTATE {code}); no rows kept"
            );
            let tables: Vec<String> = report.rows.keys().cloned().collect();
            report.rows.clear();
            for t in tables {
                report.skipped.insert(t, why.clone());
            }
            return report;
        }
    }
    if sqlx::raw_sql("COMMIT").execute(&mut *conn).await.is_err() {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
        let tables: Vec<String> = report.rows.keys().cloned().collect();
        report.rows.clear();
        for t in tables {
            report
                .skipped
                .insert(t, "the seeding transaction could not commit".into());
        }
    }
    report
}
