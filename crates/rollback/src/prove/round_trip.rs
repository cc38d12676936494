//! One round trip on a loaded scratch database: forward, rollback, exact catalog comparison
//! (and, on sample rows, the values before and after).

use migration_parser::Migration;
use sqlx::postgres::PgConnection;
use topology::catalog::Catalog;

use super::model::{ProveOptions, RollbackSource};
use super::setup::{introspect, session};
use crate::catalog::{CatalogSnapshot, Mismatch, mismatches};
use crate::exec::{SqlFailure, execute_migration, execute_steps};
use crate::sample::{column_values, compare_values};
use crate::{ColumnLoss, Rollback, RollbackError, generate};

/// What one round trip found.
#[derive(Debug, Default)]
pub(crate) struct RoundTrip {
    /// The forward statement that failed (then the rollback did not run).
    pub forward_error: Option<SqlFailure>,
    /// The rollback statement that failed.
    pub rollback_error: Option<SqlFailure>,
    /// Catalog before vs after the rollback.
    pub mismatches: Vec<Mismatch>,
    /// Columns whose values did not come back (only when values were compared).
    pub data_loss: Vec<ColumnLoss>,
    /// The rollback, when it was generated here.
    pub generated: Option<Rollback>,
}

/// Run `forward` then the rollback on `conn` (search path and timeout already set), compare
/// the catalog with `c0` — and, with `values`, every column's values with those before.
pub(crate) async fn round_trip(
    conn: &mut PgConnection,
    c0: &Catalog,
    forward: &Migration,
    rollback: &RollbackSource<'_>,
    options: &ProveOptions,
    values: bool,
) -> Result<RoundTrip, RollbackError> {
    let s0 = CatalogSnapshot::from_topology(c0);
    let before = if values {
        Some(column_values(conn, &s0).await?)
    } else {
        None
    };
    let mut out = RoundTrip::default();
    if let Err(f) = execute_migration(conn, forward).await {
        out.forward_error = Some(f);
        return Ok(out);
    }
    let result = match rollback {
        RollbackSource::Generate(o) => {
            let rb = generate(forward, &s0, o);
            let r = execute_steps(conn, &rb.steps).await;
            out.generated = Some(rb);
            r
        }
        RollbackSource::Generated(rb) => execute_steps(conn, &rb.steps).await,
        RollbackSource::Script(m) => execute_migration(conn, m).await,
    };
    out.rollback_error = result.err();
    // The rollback may have changed the session (SET search_path, RESET ALL).
    session(conn, &options.schema, &options.statement_timeout).await?;
    let c2 = introspect(conn, &options.schema).await?;
    out.mismatches = mismatches(c0, &c2);
    if let Some(before) = before {
        let after = column_values(conn, &CatalogSnapshot::from_topology(&c2)).await?;
        out.data_loss = compare_values(&before, &after);
    }
    Ok(out)
}
