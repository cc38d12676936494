//! Proving a rollback on a shadow database, in two phases: the structural round trip on empty
//! tables (forward → rollback → exact catalog comparison), then the same round trip on sample
//! rows, on a copy of the loaded database.
//!
//! Modules: `shadow` (the server and its scratch databases), `setup` (loading the shard's
//! structure faithfully: extensions, shared schemas, populated materialized views),
//! `round_trip` (one forward → rollback → compare), `model` (options, [`Proof`], the
//! outcome), `history` (a whole history of up/down pairs).

mod history;
mod model;
mod round_trip;
mod setup;
mod shadow;

use std::time::Instant;

use migration_parser::Migration;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use topology::catalog::Catalog;

pub use history::{HistoryEntry, HistoryOptions, HistoryReport, prove_history};
pub use model::{ColumnLoss, DataPhase, Proof, ProofOutcome, ProveOptions, RollbackSource, Setup};
pub use shadow::Shadow;

use crate::RollbackError;
use crate::sample::seed_rows;
use round_trip::round_trip;
use setup::{introspect, not_loaded_reason, populate_matviews, session};

/// Prove a rollback. On a scratch database of `shadow`: load the pre-migration structure
/// (`setup`: SQL, or a shard's catalog; the shard's extensions first, see
/// [`ProveOptions::extensions`]), populate its materialized views, take catalog C0 of
/// `options.schema`; copy the database for the data phase; then
/// 1. structure: run `forward`, the rollback, take C2 and compare with C0 (empty tables);
/// 2. data (when asked): on the copy, seed sample rows (or load [`ProveOptions::sample_data`]),
///    refresh the materialized views, and do the same round trip, comparing values too.
///
/// A setup that does not load or a failing structural forward is not proven
/// ([`ProofOutcome::NotProven`]); a data phase that cannot run leaves the structural proof
/// standing. Every scratch database is dropped whatever happens.
pub async fn prove(
    shadow: &Shadow,
    setup: Setup<'_>,
    forward: &Migration,
    rollback: RollbackSource<'_>,
    options: &ProveOptions,
) -> Result<Proof, RollbackError> {
    let started = Instant::now();
    let db = Shadow::scratch_name();
    let data_db = Shadow::scratch_name();
    shadow.create_db(&db, None).await?;
    let result = prove_in(shadow, [&db, &data_db], setup, forward, rollback, options).await;
    let dropped_data = shadow.drop_db(&data_db).await;
    let dropped = shadow.drop_db(&db).await;
    if dropped.is_ok() && dropped_data.is_ok() {
        shadow.drop_owner(&db).await;
    }
    let mut proof = result?;
    dropped?;
    dropped_data?;
    proof.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(proof)
}

async fn prove_in(
    shadow: &Shadow,
    [db, data_db]: [&str; 2],
    setup: Setup<'_>,
    forward: &Migration,
    rollback: RollbackSource<'_>,
    options: &ProveOptions,
) -> Result<Proof, RollbackError> {
    let mut proof = Proof::empty();
    let loaded = shadow.load_as_owner(db, setup, &options.extensions).await?;
    proof.missing_extensions = loaded.missing_extensions;
    if let Some(e) = loaded.error {
        let message = match e {
            RollbackError::Setup { sqlstate, message } => format!("[{sqlstate}] {message}"),
            other => return Err(other),
        };
        proof.setup_error = Some(not_loaded_reason(&message, &proof.missing_extensions));
        return Ok(proof);
    }
    let mut conn = shadow.owner_conn(db, db).await?;
    session(&mut conn, &options.schema, &options.statement_timeout).await?;
    let c0 = introspect(&mut conn, &options.schema).await?;
    let wants_data = options.sample_data.is_some() || options.sample_rows > 0;
    if wants_data {
        // A copy needs its template free of sessions.
        let _ = conn.close().await;
        shadow.copy_db(data_db, db).await?;
        conn = shadow.owner_conn(db, db).await?;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
    }
    let structure = round_trip(&mut conn, &c0, forward, &rollback, options, false).await;
    let _ = conn.close().await;
    let structure = structure?;
    proof.forward_error = structure.forward_error;
    proof.rollback_error = structure.rollback_error;
    proof.mismatches = structure.mismatches;
    proof.rollback = structure.generated;
    if proof.forward_error.is_none() && wants_data {
        // The data phase proves the very rollback the structural phase ran.
        let rollback = match (&proof.rollback, rollback) {
            (Some(rb), _) => RollbackSource::Generated(rb),
            (None, r) => r,
        };
        let mut conn = shadow.owner_conn(data_db, db).await?;
        let data = data_phase(&mut conn, &c0, forward, &rollback, options).await;
        let _ = conn.close().await;
        (proof.data, proof.data_loss) = data?;
    }
    proof.settle();
    Ok(proof)
}

/// The round trip on sample rows, on `conn` of the data phase's copy.
async fn data_phase(
    conn: &mut PgConnection,
    c0: &Catalog,
    forward: &Migration,
    rollback: &RollbackSource<'_>,
    options: &ProveOptions,
) -> Result<(DataPhase, Vec<ColumnLoss>), RollbackError> {
    session(conn, &options.schema, &options.statement_timeout).await?;
    let real_rows = options.sample_data.is_some();
    // Real values (sampled rows, or the shard's pg_stats hints) may be quoted by any message.
    let withhold = real_rows || !options.value_hints.is_empty();
    let mut partial = None;
    let rows = match &options.sample_data {
        Some(sql) => match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut *conn)
            .await
        {
            Ok(r) => r.rows_affected(),
            Err(e) => {
                // Real rows: the server's message may quote a value; name the SQLSTATE only.
                let reason = format!(
                    "the sample data could not be loaded on the shadow (SQLSTATE {})",
                    sqlstate(&e)
                );
                return Ok((DataPhase::NotRun { reason }, Vec::new()));
            }
        },
        None => {
            let report =
                seed_rows(conn, c0, options.sample_rows, &options.value_hints, forward).await;
            partial = report.partial();
            report.total() as u64
        }
    };
    populate_matviews(conn).await;
    session(conn, &options.schema, &options.statement_timeout).await?;
    let trip = round_trip(conn, c0, forward, rollback, options, true).await?;
    if let Some(e) = trip.forward_error {
        let reason = if withhold {
            // The message may quote a real value: statement and SQLSTATE only.
            format!(
                "the forward migration failed on the sampled real rows at line {} (SQLSTATE {})",
                e.line,
                e.sqlstate.as_deref().unwrap_or("none")
            )
        } else {
            format!("the forward migration failed on the sample rows: {e}")
        };
        return Ok((DataPhase::NotRun { reason }, Vec::new()));
    }
    let phase = DataPhase::Ran {
        rows,
        real_rows,
        partial,
        rollback_error: trip.rollback_error.map(|mut f| {
            if withhold {
                // On real rows the server's message may quote a value.
                f.message = "message withheld: it may quote a sampled real value".into();
            }
            f
        }),
        mismatches: trip.mismatches,
    };
    Ok((phase, trip.data_loss))
}

/// The SQLSTATE of a server error, `none` otherwise.
fn sqlstate(e: &sqlx::Error) -> String {
    e.as_database_error()
        .and_then(|d| d.code().map(|c| c.into_owned()))
        .unwrap_or_else(|| "none".into())
}
