//! Running a migration's statements with the file's real transaction structure: on a shadow
//! database ([`run_on_shadow`]) or on the target inside one transaction that is always rolled
//! back ([`run_in_place`]).

use std::time::Instant;

use migration_parser::{Migration, Statement, TransactionMode, TxControl};
use sqlx::{AssertSqlSafe, PgConnection};

use super::RehearsalLimits;
use super::engine::{Engine, failed, ms, simple};
use super::tx::{ends_transaction, runs_outside_transaction, sets_timeouts, tx_control};
use super::{NotRunReason, StatementOutcome, StatementRehearsal};
use crate::control::CancelToken;
use crate::ident::quote_ident;

struct OpenTx {
    id: usize,
    explicit: bool,
    aborted: bool,
}

/// Run the statements on a shadow database connection (`conn` already has its search_path).
/// Returns `Err` only when the connection is lost.
pub(crate) async fn run_on_shadow(
    conn: &mut PgConnection,
    migration: &Migration,
    schemas: Vec<String>,
    shard_schema: &str,
    version: u32,
    cancel: &CancelToken,
) -> Result<Vec<StatementRehearsal>, sqlx::Error> {
    let wrap_file = migration.options.transaction_mode == TransactionMode::WrapFile;
    let mut e = Engine::new(conn, schemas, shard_schema, version, cancel, false);
    let mut out = Vec::new();
    let mut open: Option<OpenTx> = None;
    for st in &migration.statements {
        if e.cancel.is_cancelled() {
            out.push(e.skipped(st, NotRunReason::Cancelled));
            continue;
        }
        match tx_control(st) {
            Some(TxControl::Begin) => {
                if open.is_some() || wrap_file {
                    // psql: "there is already a transaction in progress" (a warning).
                    out.push(simple(st, StatementOutcome::Succeeded, true, 0.0));
                } else {
                    let t0 = Instant::now();
                    match e.exec_user(&st.sql).await {
                        Ok(()) => {
                            open = Some(OpenTx {
                                id: st.tx.transaction,
                                explicit: true,
                                aborted: false,
                            });
                            e.start_unit().await?;
                            out.push(simple(st, StatementOutcome::Succeeded, true, ms(t0)));
                        }
                        Err(err) => out.push(simple(st, failed(&err), true, ms(t0))),
                    }
                }
                continue;
            }
            Some(TxControl::Commit) | Some(TxControl::Rollback) => {
                if wrap_file {
                    out.push(simple(st, StatementOutcome::Succeeded, true, 0.0));
                    continue;
                }
                let t0 = Instant::now();
                let r = e.exec_user(&st.sql).await;
                open = None;
                match r {
                    Ok(()) => out.push(simple(st, StatementOutcome::Succeeded, true, ms(t0))),
                    Err(err) if crate::conn::is_connection_error(&err) => return Err(err),
                    Err(err) => out.push(simple(st, failed(&err), true, ms(t0))),
                }
                continue;
            }
            Some(TxControl::Savepoint) => {
                let t0 = Instant::now();
                match e.exec_user(&st.sql).await {
                    Ok(()) => {
                        if st
                            .sql
                            .trim_start()
                            .to_ascii_uppercase()
                            .starts_with("ROLLBACK")
                            && let Some(o) = open.as_mut()
                        {
                            o.aborted = false;
                        }
                        out.push(simple(
                            st,
                            StatementOutcome::Succeeded,
                            st.tx.in_block,
                            ms(t0),
                        ));
                    }
                    Err(err) if crate::conn::is_connection_error(&err) => return Err(err),
                    Err(err) => out.push(simple(st, failed(&err), st.tx.in_block, ms(t0))),
                }
                continue;
            }
            None => {}
        }
        if st.tx.in_block {
            if open.as_ref().map(|o| o.id) != Some(st.tx.transaction)
                && !open.as_ref().is_some_and(|o| o.explicit)
            {
                if open.take().is_some() {
                    e.exec("COMMIT").await?;
                }
                e.exec("BEGIN").await?;
                open = Some(OpenTx {
                    id: st.tx.transaction,
                    explicit: false,
                    aborted: false,
                });
                e.start_unit().await?;
            }
            if open.as_ref().is_some_and(|o| o.aborted) {
                out.push(e.skipped(st, NotRunReason::TransactionAborted));
                continue;
            }
            let rec = e.run_observed(st, true).await?;
            if matches!(rec.outcome, StatementOutcome::Failed { .. })
                && let Some(o) = open.as_mut()
            {
                o.aborted = true;
            }
            out.push(rec);
        } else {
            if let Some(o) = open.take() {
                e.exec(if o.explicit || o.aborted {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                })
                .await?;
            }
            if runs_outside_transaction(st) {
                let rec = e.run_bare(st).await?;
                out.push(rec);
            } else {
                e.exec("BEGIN").await?;
                e.start_unit().await?;
                let rec = e.run_observed(st, false).await?;
                let ok = matches!(rec.outcome, StatementOutcome::Succeeded);
                e.exec(if ok { "COMMIT" } else { "ROLLBACK" }).await?;
                out.push(rec);
            }
        }
    }
    if let Some(o) = open.take() {
        // A block opened by an explicit BEGIN without COMMIT is rolled back when the session
        // ends (psql); an implicit whole-file block commits.
        e.exec(if o.explicit || o.aborted {
            "ROLLBACK"
        } else {
            "COMMIT"
        })
        .await?;
    }
    Ok(out)
}

/// Run the statements on the target itself inside ONE transaction that is always rolled back.
/// The caller has classified them first ([`crate::in_place::classify`]): only a migration with
/// no refused statement comes here. Returns `Err` only when the connection is lost (the server
/// then rolls back). `timezone`: the TimeZone a deploy client of the shard gets (our session
/// starts under UTC), set for the transaction so a `timestamp` ↔ `timestamptz` change rewrites
/// here exactly when it would in the deploy.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_in_place(
    conn: &mut PgConnection,
    migration: &Migration,
    schemas: Vec<String>,
    shard_schema: &str,
    version: u32,
    limits: RehearsalLimits,
    timezone: Option<&str>,
    cancel: &CancelToken,
) -> Result<Vec<StatementRehearsal>, sqlx::Error> {
    // Every setting is transaction-local: nothing outlives the rehearsal's transaction, and the
    // session is closed right after it.
    let timeouts = format!(
        "SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; \
         SET LOCAL idle_in_transaction_session_timeout = {}",
        limits.statement_timeout.as_millis().max(1),
        limits.lock_timeout.as_millis().max(1),
        limits.idle_in_transaction_timeout.as_millis().max(1)
    );
    // READ WRITE whatever the role's or database's default_transaction_read_only says, for this
    // one transaction only.
    sqlx::raw_sql("BEGIN READ WRITE")
        .execute(&mut *conn)
        .await?;
    let result = async {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET LOCAL default_transaction_read_only = off; {timeouts}; \
             SET LOCAL standard_conforming_strings = on; \
             SET LOCAL deployclaw.in_place_guard = 'on'"
        )))
        .execute(&mut *conn)
        .await?;
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(format!("{}, public", quote_ident(shard_schema)))
            .execute(&mut *conn)
            .await?;
        if let Some(tz) = timezone {
            sqlx::query("SELECT set_config('TimeZone', $1, true)")
                .bind(tz)
                .execute(&mut *conn)
                .await?;
        }
        let mut e = Engine::new(&mut *conn, schemas, shard_schema, version, cancel, true);
        in_place_statements(&mut e, migration, &timeouts).await
    }
    .await;
    // ALWAYS roll back.
    let rb = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
    match (result, rb) {
        (Ok(v), Ok(_)) => Ok(v),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
    }
}

/// The statements of an in-place rehearsal, each under a savepoint (a block under one), in
/// the rehearsal's open transaction; `timeouts` are restored after a statement that set them.
async fn in_place_statements(
    e: &mut Engine<'_>,
    migration: &Migration,
    timeouts: &str,
) -> Result<Vec<StatementRehearsal>, sqlx::Error> {
    let mut out = Vec::new();
    // Open block: (transaction id, aborted).
    let mut block: Option<(usize, bool)> = None;
    for st in &migration.statements {
        if e.cancel.is_cancelled() {
            out.push(e.skipped(st, NotRunReason::Cancelled));
            continue;
        }
        match tx_control(st) {
            Some(TxControl::Begin) => {
                if block.is_none() {
                    e.exec("SAVEPOINT deployclaw_block").await?;
                    e.start_unit().await?;
                    block = Some((st.tx.transaction, false));
                }
                out.push(e.skipped(st, NotRunReason::TransactionControl));
                continue;
            }
            Some(TxControl::Commit) | Some(TxControl::Rollback) => {
                if block.take().is_some() {
                    e.exec("RELEASE SAVEPOINT deployclaw_block").await?;
                }
                out.push(e.skipped(st, NotRunReason::TransactionControl));
                continue;
            }
            _ => {}
        }
        if ends_transaction(&st.sql) {
            // A transaction-control statement the parser did not classify (`END`,
            // `ABORT`, `PREPARE TRANSACTION`, ...): running it would end the rehearsal's
            // transaction on the target.
            out.push(e.skipped(st, NotRunReason::TransactionControl));
            continue;
        }
        if runs_outside_transaction(st) {
            out.push(e.skipped(st, NotRunReason::NotTransactional));
            continue;
        }
        if st.tx.in_block && tx_control(st).is_none() {
            if block.map(|b| b.0) != Some(st.tx.transaction) && block.is_none() {
                e.exec("SAVEPOINT deployclaw_block").await?;
                e.start_unit().await?;
                block = Some((st.tx.transaction, false));
            }
            if block.is_some_and(|b| b.1) {
                out.push(e.skipped(st, NotRunReason::TransactionAborted));
                continue;
            }
            let rec = e.run_observed(st, true).await?;
            if matches!(rec.outcome, StatementOutcome::Failed { .. }) {
                e.exec("ROLLBACK TO SAVEPOINT deployclaw_block").await?;
                if let Some(b) = block.as_mut() {
                    b.1 = true;
                }
            }
            out.push(rec);
        } else {
            if block.take().is_some() {
                e.exec("RELEASE SAVEPOINT deployclaw_block").await?;
            }
            e.exec("SAVEPOINT deployclaw_stmt").await?;
            e.start_unit().await?;
            let rec = e.run_observed(st, false).await?;
            if matches!(rec.outcome, StatementOutcome::Failed { .. }) {
                e.exec("ROLLBACK TO SAVEPOINT deployclaw_stmt").await?;
            } else {
                e.exec("RELEASE SAVEPOINT deployclaw_stmt").await?;
            }
            out.push(rec);
        }
        still_in_transaction(e, st).await?;
        if sets_timeouts(st) {
            // The migration may have changed the timeouts: ours stay in force.
            e.exec(timeouts).await?;
        }
    }
    Ok(out)
}

/// Whether the rehearsal's own transaction is still open after `st` (the `SET LOCAL` guard
/// vanishes with the transaction); `Err` if a statement ended it anyhow: stop at once.
async fn still_in_transaction(e: &mut Engine<'_>, st: &Statement) -> Result<(), sqlx::Error> {
    // Still inside the rehearsal's own transaction? (`SET LOCAL` of the guard vanishes
    // with the transaction.) If a statement ended it anyhow, stop at once.
    let guard: Option<String> =
        sqlx::query_scalar("SELECT current_setting('deployclaw.in_place_guard', true)")
            .fetch_one(&mut *e.conn)
            .await?;
    if guard.as_deref() != Some("on") {
        return Err(sqlx::Error::Protocol(format!(
            "statement {} (line {}) ended the in-place rehearsal's transaction; rehearsal stopped",
            st.index + 1,
            st.span.line
        )));
    }
    Ok(())
}
