//! Statements of the seeding transaction that may fail without ending it (savepoints).

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

/// Open the seeding savepoint.
pub(super) async fn savepoint(conn: &mut PgConnection) {
    let _ = sqlx::raw_sql("SAVEPOINT deployclaw_seed")
        .execute(&mut *conn)
        .await;
}

/// Close the seeding savepoint: keep what ran (`ok`) or undo it.
pub(super) async fn release(conn: &mut PgConnection, ok: bool) {
    let sql = if ok {
        "RELEASE SAVEPOINT deployclaw_seed"
    } else {
        "ROLLBACK TO SAVEPOINT deployclaw_seed; RELEASE SAVEPOINT deployclaw_seed"
    };
    let _ = sqlx::raw_sql(sql).execute(&mut *conn).await;
}

/// Run one statement under a savepoint: on failure the transaction goes on as before. The
/// extended protocol runs exactly one statement, so text taken from the migration (a CHECK
/// expression, an index key) cannot end the seeding transaction or add statements.
pub(super) async fn guarded(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    savepoint(conn).await;
    let r = sqlx::query(AssertSqlSafe(sql.to_string()))
        .persistent(false)
        .execute(&mut *conn)
        .await
        .map(|_| ());
    release(conn, r.is_ok()).await;
    r
}
