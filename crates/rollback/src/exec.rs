//! Running migrations and rollbacks statement by statement, with their transaction structure.

use migration_parser::{Migration, TransactionMode};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

/// A statement that failed on the shadow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlFailure {
    /// 0-based index of the statement (in the migration, or in [`crate::Rollback::steps`]).
    pub statement: usize,
    /// Its line in the file (0 when it has none, e.g. a generated step).
    pub line: u32,
    /// The statement's first line.
    pub sql: String,
    /// SQLSTATE (`42P01`, `25001`, ...), `None` when the failure was not a server error.
    pub sqlstate: Option<String>,
    /// The server's message.
    pub message: String,
}

impl std::fmt::Display for SqlFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "statement {} (line {}) failed [{}]: {} -- {}",
            self.statement + 1,
            self.line,
            self.sqlstate.as_deref().unwrap_or("-----"),
            self.message,
            self.sql
        )
    }
}

fn failure(statement: usize, line: u32, sql: &str, e: &sqlx::Error) -> SqlFailure {
    let (sqlstate, message) = match e {
        sqlx::Error::Database(db) => (db.code().map(|c| c.into_owned()), db.message().to_string()),
        other => (None, other.to_string()),
    };
    let first = sql.trim().lines().next().unwrap_or("").trim();
    SqlFailure {
        statement,
        line,
        sql: if first.chars().count() > 120 {
            format!("{}…", first.chars().take(120).collect::<String>())
        } else {
            first.to_string()
        },
        sqlstate,
        message,
    }
}

async fn run(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Run a parsed migration on `conn` one statement at a time, the way its runner would:
/// [`TransactionMode::WrapFile`] wraps the whole file in `BEGIN`/`COMMIT`; in
/// [`TransactionMode::Autocommit`] each statement commits on its own unless the file opens a
/// transaction itself. On failure the open transaction is rolled back and the failing
/// statement is returned.
pub async fn execute_migration(
    conn: &mut PgConnection,
    migration: &Migration,
) -> Result<(), SqlFailure> {
    let wrap = migration.options.transaction_mode == TransactionMode::WrapFile;
    if migration.statements.is_empty() {
        return Ok(());
    }
    if wrap {
        run(conn, "BEGIN")
            .await
            .map_err(|e| failure(0, 0, "BEGIN", &e))?;
    }
    for s in &migration.statements {
        if let Err(e) = run(conn, &s.sql).await {
            let _ = run(conn, "ROLLBACK").await;
            return Err(failure(s.index, s.span.line, &s.sql, &e));
        }
    }
    if wrap && let Err(e) = run(conn, "COMMIT").await {
        let _ = run(conn, "ROLLBACK").await;
        return Err(failure(migration.statements.len(), 0, "COMMIT", &e));
    }
    Ok(())
}

/// Run single SQL statements in order (e.g. [`crate::Rollback::steps`], which carry their own
/// `BEGIN`/`COMMIT`). On failure an open transaction is rolled back.
pub async fn execute_steps(conn: &mut PgConnection, steps: &[String]) -> Result<(), SqlFailure> {
    for (i, s) in steps.iter().enumerate() {
        if let Err(e) = run(conn, s).await {
            let _ = run(conn, "ROLLBACK").await;
            return Err(failure(i, 0, s, &e));
        }
    }
    Ok(())
}

/// Run a generated rollback's [`steps`](crate::Rollback::steps).
pub async fn execute_rollback(
    conn: &mut PgConnection,
    rollback: &crate::Rollback,
) -> Result<(), SqlFailure> {
    execute_steps(conn, &rollback.steps).await
}
