//! Replaying a whole history of up/down pairs on one scratch database, proving the project's
//! own down scripts and the generated rollbacks of every up.

use migration_parser::{Migration, ParseOptions, TransactionMode};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};
use topology::catalog::Catalog;

use super::model::Proof;
use super::setup::{introspect, run_setup, session};
use super::shadow::Shadow;
use crate::catalog::mismatches;
use crate::exec::{SqlFailure, execute_migration, execute_steps};
use crate::{MigrationPair, Options, RollbackError, generate};

/// Options for [`prove_history`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryOptions {
    /// SQL run once on the empty database before the first migration (extensions, the tool's
    /// bookkeeping table).
    pub setup_sql: String,
    /// The schema migrations run in.
    pub schema: String,
    /// Options for the generated rollbacks.
    pub generate: Options,
    /// Skip proving the project's own down scripts.
    pub skip_upstream: bool,
    /// `statement_timeout` on the shadow.
    pub statement_timeout: String,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        HistoryOptions {
            setup_sql: String::new(),
            schema: "public".into(),
            generate: Options::default(),
            skip_upstream: false,
            statement_timeout: "120s".into(),
        }
    }
}

/// The proof of one migration of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The migration's name.
    pub name: String,
    /// The up script failed (the history stops there).
    pub up_error: Option<SqlFailure>,
    /// The project's own down script, run right after the up: `None` when there is none.
    pub upstream: Option<Proof>,
    /// The down script is empty or comments only.
    pub upstream_empty: bool,
    /// The generated rollback of the up, from the catalog before it.
    pub generated: Option<Proof>,
}

/// The proofs of a whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReport {
    /// One entry per migration, in order.
    pub entries: Vec<HistoryEntry>,
}

fn parse(name: &str, sql: &str, in_tx: bool) -> Result<Migration, RollbackError> {
    let opts = ParseOptions {
        transaction_mode: if in_tx {
            TransactionMode::WrapFile
        } else {
            TransactionMode::Autocommit
        },
        ..Default::default()
    };
    migration_parser::parse(name, sql, &opts).map_err(|source| RollbackError::Parse {
        file: name.to_string(),
        source,
    })
}

fn failed_proof(f: SqlFailure) -> Proof {
    Proof::of_history(Some(f), Vec::new())
}

/// Replay a history of up/down pairs on one scratch database. For every migration: catalog C0,
/// up; then on a copy of the database (`CREATE DATABASE … TEMPLATE`) the project's down script,
/// compared with C0; and on another copy the rollback generated from the parsed up and C0,
/// compared with C0. The history continues from the state after the up. All scratch databases
/// are dropped. `progress` is called with each finished entry.
pub async fn prove_history(
    shadow: &Shadow,
    pairs: &[MigrationPair],
    options: &HistoryOptions,
    mut progress: impl FnMut(&HistoryEntry),
) -> Result<HistoryReport, RollbackError> {
    let main = Shadow::scratch_name();
    shadow.create_db(&main, None).await?;
    let result = history_in(shadow, &main, pairs, options, &mut progress).await;
    let dropped = shadow.drop_db(&main).await;
    let report = result?;
    dropped?;
    Ok(report)
}

async fn history_in(
    shadow: &Shadow,
    main: &str,
    pairs: &[MigrationPair],
    options: &HistoryOptions,
    progress: &mut dyn FnMut(&HistoryEntry),
) -> Result<HistoryReport, RollbackError> {
    if !options.setup_sql.trim().is_empty() {
        let mut conn = shadow.connect(main).await?;
        run_setup(&mut conn, &options.setup_sql).await?;
        let _ = conn.close().await;
    }
    let mut entries = Vec::new();
    for pair in pairs {
        let up = parse(&pair.name, &pair.up, pair.run_in_transaction)?;
        let mut conn = shadow.connect(main).await?;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
        let c0 = introspect(&mut conn, &options.schema).await?;
        let up_result = execute_migration(&mut conn, &up).await;
        let _ = conn.close().await;
        let mut entry = HistoryEntry {
            name: pair.name.clone(),
            up_error: None,
            upstream: None,
            upstream_empty: false,
            generated: None,
        };
        if let Err(f) = up_result {
            entry.up_error = Some(f);
            progress(&entry);
            entries.push(entry);
            break;
        }
        if let (Some(down), false) = (&pair.down, options.skip_upstream) {
            let proof = match parse(
                &format!("{}/down", pair.name),
                down,
                pair.run_in_transaction,
            ) {
                Ok(m) if pair.run_in_transaction => {
                    // A transactional down runs inside BEGIN ... ROLLBACK on the main database:
                    // exactly as the tool runs it, without copying the database.
                    entry.upstream_empty = m.statements.is_empty();
                    let stmts: Vec<(usize, u32, String)> = m
                        .statements
                        .iter()
                        .map(|s| (s.index, s.span.line, s.sql.clone()))
                        .collect();
                    in_rolled_back_tx(shadow, main, options, &c0, &stmts).await?
                }
                Ok(m) => {
                    entry.upstream_empty = m.statements.is_empty();
                    on_copy(shadow, main, options, &c0, |conn| {
                        Box::pin(async move { execute_migration(conn, &m).await })
                    })
                    .await?
                }
                Err(e) => failed_proof(SqlFailure {
                    statement: 0,
                    line: 0,
                    sql: String::new(),
                    sqlstate: None,
                    message: e.to_string(),
                }),
            };
            entry.upstream = Some(proof);
        }
        let rb = generate(&up, &c0, &options.generate);
        let steps = rb.steps.clone();
        // Without CONCURRENTLY steps the whole script can run in one transaction that is rolled
        // back on the main database (same catalog effect as its separate transactions); with
        // them it runs as written on a copy.
        let transactional = rb
            .statements
            .iter()
            .all(|s| s.placement != crate::Placement::NoTransaction);
        let mut proof = if transactional {
            let stmts: Vec<(usize, u32, String)> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| *s != "BEGIN" && *s != "COMMIT")
                .map(|(i, s)| (i, 0, s.clone()))
                .collect();
            in_rolled_back_tx(shadow, main, options, &c0, &stmts).await?
        } else {
            on_copy(shadow, main, options, &c0, |conn| {
                Box::pin(async move { execute_steps(conn, &steps).await })
            })
            .await?
        };
        proof.rollback = Some(rb);
        entry.generated = Some(proof);
        progress(&entry);
        entries.push(entry);
    }
    Ok(HistoryReport { entries })
}

/// Run a migration's statements after `BEGIN` on `main`, introspect, and roll back.
async fn in_rolled_back_tx(
    shadow: &Shadow,
    main: &str,
    options: &HistoryOptions,
    c0: &Catalog,
    statements: &[(usize, u32, String)],
) -> Result<Proof, RollbackError> {
    let mut conn = shadow.connect(main).await?;
    session(&mut conn, &options.schema, &options.statement_timeout).await?;
    let db = |action: &str, source: sqlx::Error| RollbackError::Database {
        action: action.to_string(),
        source,
    };
    sqlx::raw_sql("BEGIN")
        .execute(&mut conn)
        .await
        .map_err(|e| db("begin", e))?;
    let mut failed = None;
    for (index, line, sql) in statements {
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
        {
            let (sqlstate, message) = match &e {
                sqlx::Error::Database(d) => {
                    (d.code().map(|c| c.into_owned()), d.message().to_string())
                }
                other => (None, other.to_string()),
            };
            failed = Some(SqlFailure {
                statement: *index,
                line: *line,
                sql: sql
                    .trim()
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(120)
                    .collect(),
                sqlstate,
                message,
            });
            break;
        }
    }
    if failed.is_some() {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut conn)
            .await
            .map_err(|e| db("rollback", e))?;
    }
    // Inside the still open transaction when the statements ran: the catalog they left.
    let c2 = if failed.is_some() {
        introspect(&mut conn, &options.schema).await?
    } else {
        topology::catalog::introspect_schema_in_transaction(&mut conn, &options.schema)
            .await
            .map_err(RollbackError::Catalog)?
    };
    if failed.is_none() {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut conn)
            .await
            .map_err(|e| db("rollback", e))?;
    }
    let _ = conn.close().await;
    Ok(Proof::of_history(failed, mismatches(c0, &c2)))
}

type StepFuture<'c> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), SqlFailure>> + Send + 'c>>;

/// Copy `main`, run `f` on the copy, compare its catalog with `c0`, drop the copy.
async fn on_copy<F>(
    shadow: &Shadow,
    main: &str,
    options: &HistoryOptions,
    c0: &Catalog,
    f: F,
) -> Result<Proof, RollbackError>
where
    F: for<'c> FnOnce(&'c mut PgConnection) -> StepFuture<'c>,
{
    let copy = Shadow::scratch_name();
    shadow.create_db(&copy, Some(main)).await?;
    let inner = async {
        let mut conn = shadow.connect(&copy).await?;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
        let r = f(&mut conn).await;
        session(&mut conn, &options.schema, &options.statement_timeout).await?;
        let c2 = introspect(&mut conn, &options.schema).await?;
        let _ = conn.close().await;
        Ok::<Proof, RollbackError>(Proof::of_history(r.err(), mismatches(c0, &c2)))
    }
    .await;
    let dropped = shadow.drop_db(&copy).await;
    let p = inner?;
    dropped?;
    Ok(p)
}
