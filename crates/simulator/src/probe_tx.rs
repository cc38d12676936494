//! The plumbing of the read-only probe transaction, shared by the built-in probes (`probe/`)
//! and the custom probes (`custom.rs`): statements sent as they are, one savepoint per probe,
//! the error a probe query raised, and the one failure that ends a shard's probing (the
//! connection is gone). It imports neither, and `custom.rs` imports nothing of `probe/`, so
//! the dependency is one way: `probe` → `custom` → `probe_tx`.

use sqlx::{AssertSqlSafe, PgConnection};

use crate::conn::is_connection_error;

pub use evidence::ProbeError;

/// A failure that ends the shard's probing: the connection is gone (→ unreachable).
#[derive(Debug)]
pub(crate) struct ConnectionLost(pub sqlx::Error);

/// `f(e)` for an error that leaves the connection usable; [`ConnectionLost`] otherwise.
pub(crate) fn lost_or<T>(
    e: sqlx::Error,
    f: impl FnOnce(sqlx::Error) -> T,
) -> Result<T, ConnectionLost> {
    if is_connection_error(&e) {
        Err(ConnectionLost(e))
    } else {
        Ok(f(e))
    }
}

/// The SQLSTATE and message of a failed probe query (an outcome, not a failure of the run).
pub(crate) fn probe_error(e: sqlx::Error) -> ProbeError {
    let (sqlstate, message) = crate::conn::sqlstate_and_message(&e);
    ProbeError { sqlstate, message }
}

/// Send `sql` as it is (simple protocol; several statements allowed).
pub(crate) async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Run `f` under the probe savepoint: its error is an outcome ([`ProbeError`]) after going back
/// to the savepoint; only a lost connection is an `Err`.
pub(crate) async fn savepoint<T>(
    conn: &mut PgConnection,
    f: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
) -> Result<Result<T, ProbeError>, ConnectionLost> {
    // A savepoint that succeeded is not released: the next `SAVEPOINT` of the same name stacks
    // on it (PostgreSQL allows that), and `ROLLBACK TO` always goes back to the newest one. A
    // read-only subtransaction gets no transaction id, so stacking costs nothing but saves one
    // round trip per probe; the whole transaction is rolled back at the end anyway.
    establish_savepoint(conn, PROBE_SAVEPOINT).await?;
    match f(conn).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) => {
            let pe = lost_or(e, probe_error)?;
            rollback_to_savepoint(conn, PROBE_SAVEPOINT).await?;
            Ok(Err(pe))
        }
    }
}

// A control statement can fail although nothing is wrong with it: when a `statement_timeout`
// fires just as the previous statement ends, PostgreSQL delivers the cancel to the next one
// ("canceling statement due to user request"). With a tiny probe timeout that happens. The
// transaction is then aborted but the previous savepoint still exists (they stack), so both
// helpers go back to it and try once more; only a second failure gives up.

/// The savepoint every probe runs under.
pub(crate) const PROBE_SAVEPOINT: &str = "deployclaw_probe";

/// `SAVEPOINT name`, recovering once from a stray cancel (see above) by going back to the
/// newest probe savepoint (the catalog lookups always leave one).
pub(crate) async fn establish_savepoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(), ConnectionLost> {
    let sql = format!("SAVEPOINT {name}");
    match exec(conn, &sql).await {
        Ok(()) => Ok(()),
        Err(e) if is_connection_error(&e) => Err(ConnectionLost(e)),
        Err(_) => {
            rollback_to_savepoint(conn, PROBE_SAVEPOINT).await?;
            exec(conn, &sql).await.map_err(ConnectionLost)
        }
    }
}

/// `ROLLBACK TO SAVEPOINT name`, tried twice (it is valid in an aborted transaction).
pub(crate) async fn rollback_to_savepoint(
    conn: &mut PgConnection,
    name: &str,
) -> Result<(), ConnectionLost> {
    let sql = format!("ROLLBACK TO SAVEPOINT {name}");
    match exec(conn, &sql).await {
        Ok(()) => Ok(()),
        Err(e) if is_connection_error(&e) => Err(ConnectionLost(e)),
        Err(_) => exec(conn, &sql).await.map_err(ConnectionLost),
    }
}
