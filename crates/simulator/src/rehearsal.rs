//! Rehearsal: run the migration statement by statement on a copy of one shard's structure (or,
//! opt-in, on the target inside one transaction that is always rolled back) and record what
//! PostgreSQL actually did: outcome with SQLSTATE, relation locks held (`pg_locks`), relations
//! rewritten (`relfilenode` changed), duration.
//!
//! ## Shadow
//!
//! The shadow server is an [`EphemeralPg`] started for the run (default) or a scratch server
//! given by URL. For every schema shape a fresh database `deployclaw_shadow_<random>` is created
//! there and dropped at the end — on success, error and cancellation (a [`Drop`] fallback drops
//! it from a helper thread if the future was abandoned). The ephemeral cluster listens on its
//! private Unix socket only ([`EphemeralOptions::shadow`]). On a scratch server the run holds a
//! lease (a session-level advisory lock keyed on the database name, taken before the database
//! is created) for every database it makes, and first drops the leftovers of runs that died
//! ([`topology::scratch`]); shadow connections never fall back to `PGPASSWORD`.
//!
//! **Cloning uses `pg_dump --schema-only`** of the shard's schema (plus the schemas its foreign
//! keys and column types reference, plus schemas the migration names), piped through `psql` into
//! the shadow database, with the client binaries of the installed PostgreSQL
//! ([`topology::ephemeral::find_bin_dir`]). Why not DDL generated from the introspected catalog:
//! `pg_dump` reproduces *everything* that influences locking and rewrites (partitioning,
//! triggers, generated columns, exclusion constraints, inheritance, storage options, collations,
//! domains) exactly as the server has it, and is maintained by PostgreSQL itself. The cost is
//! that `pg_dump` must be at least the server's major version; a failing clone is recorded in
//! [`RehearsalResult::setup_error`] (the probes still run). Extensions the shard database has are
//! created first (best effort). No rows are copied: data questions are answered by the probes on
//! the real shard, and lock *duration* is estimated from the real shard's sizes
//! ([`crate::estimate`]).
//!
//! ## Transaction structure
//!
//! Statements run with the file's real transaction structure ([`TxContext`]): explicit
//! `BEGIN … COMMIT` blocks (or the whole file under `TransactionMode::WrapFile`) run as one
//! transaction; an autocommit statement runs inside a `BEGIN … COMMIT` wrapper so its locks can be
//! read from `pg_locks` before they are released — except statements that cannot run in a
//! transaction (`… CONCURRENTLY`, `VACUUM`), which run bare and whose locks come from the
//! parser's knowledge table ([`LockSource::KnowledgeTable`]). After a failing statement inside a
//! block, the rest of the block is [`NotRunReason::TransactionAborted`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use migration_parser::{
    LockMode, Migration, Operation, PgVersion, Statement, TransactionMode, TxControl, lock_facts,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use tokio::io::AsyncWriteExt;
use topology::ConnectionSpec;
use topology::ephemeral::{EphemeralOptions, EphemeralPg};

use crate::SimError;
use crate::conn::{redacted, shadow_connect_options, sqlstate_and_message};
use crate::control::CancelToken;
use crate::dump::{DumpCache, client_command, dump_schemas};
use crate::ident::quote_ident;
use crate::in_place::InPlaceRefusal;

/// Where the rehearsal runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RehearsalMode {
    /// On a shadow copy of the schema (ephemeral cluster or `--shadow URL`). The default.
    #[default]
    Shadow,
    /// On the target itself, inside ONE transaction that is always rolled back, with
    /// `lock_timeout`/`statement_timeout` set. Statements that cannot run in a transaction are
    /// not executed ([`NotRunReason::NotTransactional`]). Opt-in: for staging or a restored
    /// snapshot — it does take the real locks for the duration of the rehearsal.
    InPlace,
    /// No rehearsal at all (probes only).
    Skip,
}

/// Where lock facts for a statement come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockSource {
    /// Read from `pg_locks` for the session while the statement's transaction was open.
    Observed,
    /// From the parser's knowledge table (statement ran outside a transaction, or was not run).
    KnowledgeTable,
    /// None known (statement failed before locks could be read).
    Unknown,
}

/// A relation lock held by the rehearsal session after a statement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObservedLock {
    /// Schema of the relation.
    pub schema: String,
    /// Relation name.
    pub relation: String,
    /// `table`, `partitioned_table`, `index`, `sequence`, `view`, `materialized_view`, `other`.
    pub relkind: String,
    /// Lock mode.
    pub mode: LockMode,
    /// The relation did not exist before the statement's transaction (locks on it block nobody).
    pub created_here: bool,
}

/// Why a statement was not executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotRunReason {
    /// An earlier statement of the same transaction block failed.
    TransactionAborted,
    /// In-place rehearsal: the statement cannot run inside a transaction (`CONCURRENTLY`,
    /// `VACUUM`), so it was not executed on the target.
    NotTransactional,
    /// In-place rehearsal: `BEGIN`/`COMMIT`/`ROLLBACK` of the file are not executed (the whole
    /// rehearsal is one transaction that is rolled back).
    TransactionControl,
    /// The run was cancelled.
    Cancelled,
    /// The shadow could not be prepared.
    SetupFailed,
}

/// What happened to one statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StatementOutcome {
    /// It ran without error.
    Succeeded,
    /// It raised an error.
    Failed {
        /// SQLSTATE (`42703` undefined column, `23505` unique violation, `55P03` lock timeout…).
        sqlstate: Option<String>,
        /// The server's message.
        message: String,
    },
    /// It was not executed.
    NotRun {
        /// Why.
        reason: NotRunReason,
    },
}

/// The rehearsal record of one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementRehearsal {
    /// 0-based statement index in the migration.
    pub index: usize,
    /// 1-based line of the statement in the file.
    pub line: u32,
    /// Outcome.
    pub outcome: StatementOutcome,
    /// Relation locks held right after the statement, within its transaction (for a statement
    /// in a block: everything the block holds so far). Excludes system catalogs.
    pub locks: Vec<ObservedLock>,
    /// Where [`StatementRehearsal::locks`] comes from.
    pub lock_source: LockSource,
    /// Relations whose `relfilenode` changed: rewritten (or truncated), as `schema.name`.
    pub rewritten: Vec<String>,
    /// Relations created by the statement, as `schema.name`.
    pub created: Vec<String>,
    /// The statement ran inside a multi-statement transaction block.
    pub in_block: bool,
    /// Wall time on the rehearsal target, in milliseconds.
    pub duration_ms: f64,
}

/// The rehearsal of the migration for one schema shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RehearsalResult {
    /// Catalog fingerprint of the shape.
    pub fingerprint: String,
    /// Shard whose structure was rehearsed.
    pub shard: String,
    /// Its schema (the clone keeps the name, so unqualified names resolve the same).
    pub schema: String,
    /// Shadow or in place.
    pub mode: RehearsalMode,
    /// Where it ran (redacted URL plus database).
    pub target: String,
    /// Server major version of the rehearsal target.
    pub server_version: u32,
    /// The shadow could not be prepared (clone failed, server unreachable); statements are then
    /// [`NotRunReason::SetupFailed`].
    pub setup_error: Option<String>,
    /// Errors `psql` reported while loading the schema dump (best effort clone).
    pub clone_errors: Vec<String>,
    /// Per statement, in file order.
    pub statements: Vec<StatementRehearsal>,
    /// Total wall time (clone + statements).
    pub duration_ms: u64,
    /// `--rehearse in-place` only: the statements that were not proven free of effects a
    /// rollback does not undo ([`crate::in_place`]). When there are any, nothing ran on the
    /// target: this rehearsal ran on the shadow instead ([`RehearsalResult::mode`] is
    /// [`RehearsalMode::Shadow`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_place_refused: Vec<InPlaceRefusal>,
}

impl RehearsalResult {
    /// True when the setup worked and no statement failed.
    pub fn ok(&self) -> bool {
        self.setup_error.is_none()
            && self
                .statements
                .iter()
                .all(|s| !matches!(s.outcome, StatementOutcome::Failed { .. }))
    }

    /// The first failing statement, if any.
    pub fn first_failure(&self) -> Option<&StatementRehearsal> {
        self.statements
            .iter()
            .find(|s| matches!(s.outcome, StatementOutcome::Failed { .. }))
    }
}

/// Limits for rehearsal statements.
#[derive(Debug, Clone, Copy)]
pub struct RehearsalLimits {
    /// `statement_timeout` per statement.
    pub statement_timeout: Duration,
    /// `lock_timeout` per statement.
    pub lock_timeout: Duration,
    /// In place: `idle_in_transaction_session_timeout` of the rehearsal's transaction, so that
    /// a stalled client does not keep the target's locks (the server ends the session).
    pub idle_in_transaction_timeout: Duration,
}

// ---------------------------------------------------------------------------------------------
// Shadow server and databases
// ---------------------------------------------------------------------------------------------

/// The server rehearsals run on.
pub(crate) struct ShadowServer {
    pub spec: ConnectionSpec,
    pub bin_dir: PathBuf,
    pub version: u32,
    /// Keeps the ephemeral cluster alive (stopped on drop).
    _ephemeral: Option<EphemeralPg>,
    /// On a scratch server: the session holding the lease of every database this run created
    /// (see [`topology::scratch`]).
    lease: Option<std::sync::Arc<topology::scratch::Lease>>,
    /// What the reaper did when this run connected (leftovers of dead runs).
    pub reaped: topology::scratch::Reaped,
    /// Whether every database gets its own owner role that the migration runs as (the
    /// ephemeral cluster, where the admin is a superuser; see [`ShadowDb::demote`]). Also the
    /// only server whose spare databases may be taken (never on a scratch server).
    private_owner: bool,
}

impl ShadowServer {
    /// Start an ephemeral cluster.
    pub async fn ephemeral() -> Result<ShadowServer, SimError> {
        let pg = EphemeralPg::start_async(EphemeralOptions::shadow())
            .await
            .map_err(|source| SimError::ShadowStart { source })?;
        Ok(ShadowServer {
            spec: pg.connection_spec(),
            bin_dir: pg.bin_dir().to_path_buf(),
            version: pg.version(),
            _ephemeral: Some(pg),
            lease: None,
            reaped: Default::default(),
            private_owner: true,
        })
    }

    /// Use an existing scratch server: drop the scratch databases of dead runs
    /// ([`topology::scratch::reap_leftovers`], before this run holds any lease) and open the
    /// session that will hold this run's leases. `ephemeral`: it is an ephemeral cluster this
    /// process started (see `SimOptions::shadow_is_ephemeral`).
    pub async fn external(spec: ConnectionSpec, ephemeral: bool) -> Result<ShadowServer, SimError> {
        let bin_dir = topology::ephemeral::find_bin_dir()
            .map_err(|source| SimError::ShadowStart { source })?;
        let mut conn = admin_connect(&spec).await?;
        let version = server_version(&mut conn)
            .await
            .map_err(|source| SimError::Shadow {
                url: spec.redacted_url(),
                what: "read server_version_num".into(),
                source,
            })?;
        let reaped = topology::scratch::reap_leftovers(&mut conn).await;
        let _ = conn.close().await;
        let reaped = reaped.map_err(|source| SimError::Shadow {
            url: spec.redacted_url(),
            what: "look for leftover scratch databases".into(),
            source,
        })?;
        let opts = shadow_connect_options(&spec, &spec.database)
            .map_err(|source| SimError::ShadowStart { source })?;
        let lease = topology::scratch::Lease::open(&opts)
            .await
            .map_err(|source| SimError::Shadow {
                url: spec.redacted_url(),
                what: "open the lease session".into(),
                source,
            })?;
        Ok(ShadowServer {
            spec,
            bin_dir,
            version,
            _ephemeral: None,
            lease: Some(std::sync::Arc::new(lease)),
            reaped,
            private_owner: ephemeral,
        })
    }

    /// Create a fresh, uniquely named database (on a scratch server: after taking its lease).
    pub async fn create_db(&self) -> Result<ShadowDb, SimError> {
        let name = topology::scratch::new_scratch_name();
        if let Some(lease) = &self.lease {
            lease.take(&name).await.map_err(|source| SimError::Shadow {
                url: self.spec.redacted_url(),
                what: format!("take the lease of {name}"),
                source,
            })?;
        }
        let mut conn = admin_connect(&self.spec).await?;
        // A spare database of an ephemeral shadow made from the cached template is renamed;
        // on a scratch server (never a spare there) this is CREATE DATABASE … TEMPLATE template0.
        let mut r =
            topology::ephemeral::create_database(&mut conn, &name, self.private_owner).await;
        if r.is_ok() && self.private_owner {
            // The owner clones as a superuser (extensions, every object kind), then is demoted
            // before the migration runs as it.
            let q = quote_ident(&name);
            r = sqlx::raw_sql(AssertSqlSafe(format!(
                "CREATE ROLE {q} LOGIN SUPERUSER; ALTER DATABASE {q} OWNER TO {q}"
            )))
            .execute(&mut conn)
            .await
            .map(|_| ());
        }
        let _ = conn.close().await;
        r.map_err(|source| SimError::Shadow {
            url: self.spec.redacted_url(),
            what: format!("create database {name}"),
            source,
        })?;
        Ok(ShadowDb {
            admin: self.spec.clone(),
            owner: self.private_owner.then(|| name.clone()),
            name,
            dropped: false,
            lease: self.lease.clone(),
        })
    }
}

async fn admin_connect(spec: &ConnectionSpec) -> Result<PgConnection, SimError> {
    let opts = shadow_connect_options(spec, &spec.database)
        .map_err(|source| SimError::ShadowStart { source })?;
    PgConnection::connect_with(&opts)
        .await
        .map_err(|source| SimError::Shadow {
            url: spec.redacted_url(),
            what: "connect".into(),
            source,
        })
}

pub(crate) async fn server_version(conn: &mut PgConnection) -> Result<u32, sqlx::Error> {
    let v: String = sqlx::query_scalar("SELECT current_setting('server_version_num')")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.trim().parse::<u32>().map(|n| n / 10000).unwrap_or(0))
}

/// A database on the shadow server that is dropped when the rehearsal ends.
pub(crate) struct ShadowDb {
    admin: ConnectionSpec,
    /// The database's own owner role (named like the database) on the ephemeral cluster.
    owner: Option<String>,
    pub name: String,
    dropped: bool,
    /// The run's lease session, released once the database is gone.
    lease: Option<std::sync::Arc<topology::scratch::Lease>>,
}

impl ShadowDb {
    /// Who clones into this database and runs the migration in it: its private owner role
    /// when it has one, else the admin (the `--shadow` URL's role).
    pub fn spec(&self) -> ConnectionSpec {
        let mut spec = self.admin.clone();
        if let Some(owner) = &self.owner {
            spec.user = owner.clone();
        }
        spec
    }

    /// After the clone, before the migration runs: take superuser away from the private owner.
    /// The migration is untrusted input; as a superuser it could run programs as the server's
    /// OS user (`COPY … TO PROGRAM`), read its files and reach every other cluster of that user.
    /// As the owner of the cloned objects it can still change them like the deploy role would.
    pub async fn demote(&self) -> Result<(), SimError> {
        let Some(owner) = &self.owner else {
            return Ok(());
        };
        let mut conn = admin_connect(&self.admin).await?;
        let r = sqlx::raw_sql(AssertSqlSafe(format!(
            "ALTER ROLE {} NOSUPERUSER",
            quote_ident(owner)
        )))
        .execute(&mut conn)
        .await;
        let _ = conn.close().await;
        r.map(|_| ()).map_err(|source| SimError::Shadow {
            url: self.admin.redacted_url(),
            what: format!("demote {owner}"),
            source,
        })
    }

    /// Drop the database (terminating any session still in it), then release its lease.
    pub async fn drop_now(mut self) -> Result<(), SimError> {
        self.dropped = true;
        let r = drop_database(&self.admin, &self.name).await;
        if let (Ok(()), Some(lease)) = (&r, &self.lease) {
            lease.release(&self.name).await;
        }
        if let (Ok(()), Some(owner)) = (&r, &self.owner)
            && let Ok(mut conn) = admin_connect(&self.admin).await
        {
            // Best effort: the ephemeral cluster goes away with the run anyway.
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP ROLE IF EXISTS {}",
                quote_ident(owner)
            )))
            .execute(&mut conn)
            .await;
            let _ = conn.close().await;
        }
        r
    }
}

async fn drop_database(admin: &ConnectionSpec, name: &str) -> Result<(), SimError> {
    let mut conn = admin_connect(admin).await?;
    let r = sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    )))
    .execute(&mut conn)
    .await;
    let _ = conn.close().await;
    r.map(|_| ()).map_err(|source| SimError::Shadow {
        url: admin.redacted_url(),
        what: format!("drop database {name}"),
        source,
    })
}

impl Drop for ShadowDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // The future owning us was abandoned (panic, dropped task): drop the database from a
        // helper thread with its own small runtime, and wait for it.
        let admin = self.admin.clone();
        let name = self.name.clone();
        let h = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(drop_database(&admin, &name));
            }
        });
        let _ = h.join();
    }
}

// ---------------------------------------------------------------------------------------------
// Cloning
// ---------------------------------------------------------------------------------------------

/// Schemas to clone for `schema`: itself, schemas its foreign keys point into, schemas of its
/// column types, and schemas named by the migration, that exist on the source.
pub(crate) async fn schemas_to_clone(
    conn: &mut PgConnection,
    schema: &str,
    named_by_migration: &BTreeSet<String>,
) -> Result<Vec<String>, sqlx::Error> {
    let named: Vec<String> = named_by_migration.iter().cloned().collect();
    let rows = sqlx::query(
        "WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
         SELECT nspname::text FROM (
           SELECT $1::name AS nspname
           UNION SELECT rn.nspname FROM pg_constraint co
             JOIN pg_class c ON c.oid = co.conrelid JOIN pg_class rc ON rc.oid = co.confrelid
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace
            WHERE co.contype = 'f' AND c.relnamespace = (SELECT oid FROM s)
           UNION SELECT tn.nspname FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_namespace tn ON tn.oid = t.typnamespace
            WHERE c.relnamespace = (SELECT oid FROM s) AND a.attnum > 0
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                              AND d.objid = t.oid AND d.deptype = 'e')
           UNION SELECT nspname FROM pg_namespace WHERE nspname = ANY($2)
         ) x
         WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
         ORDER BY 1",
    )
    .bind(schema)
    .bind(&named)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect())
}

/// Extensions of the source database (except plpgsql), with their schema.
async fn extensions(conn: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT e.extname::text, n.nspname::text FROM pg_extension e
           JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
        .collect())
}

/// Clone `schemas` of the source database into the shadow database. Returns psql's error lines.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn clone_schemas(
    bin_dir: &Path,
    source: &ConnectionSpec,
    source_db: &str,
    source_conn: &mut PgConnection,
    schemas: &[String],
    shadow: &ConnectionSpec,
    shadow_db: &str,
    cache: Option<&DumpCache>,
) -> Result<Vec<String>, SimError> {
    // Extensions first (best effort).
    let mut pre = String::new();
    if let Ok(exts) = extensions(source_conn).await {
        for (ext, sch) in exts {
            pre.push_str(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s};\nCREATE EXTENSION IF NOT EXISTS {e} SCHEMA {s};\n",
                s = quote_ident(&sch),
                e = quote_ident(&ext)
            ));
        }
    }
    let dump = match cache {
        Some(c) => c.dump(bin_dir, source, source_db, schemas).await?,
        None => std::sync::Arc::new(dump_schemas(bin_dir, source, source_db, schemas).await?),
    };
    let mut script = pre.into_bytes();
    script.extend_from_slice(&dump);

    let (mut psql, _env) =
        client_command(&bin_dir.join("psql"), shadow, shadow_db).map_err(|e| SimError::PgTool {
            program: "psql".into(),
            message: format!("cannot prepare its environment: {e}"),
        })?;
    psql.arg("-X")
        .arg("-q")
        .arg("-v")
        .arg("ON_ERROR_STOP=0")
        .arg("-f")
        .arg("-");
    psql.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = psql.spawn().map_err(|e| SimError::PgTool {
        program: "psql".into(),
        message: format!("cannot run {}: {e}", bin_dir.join("psql").display()),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&script).await;
        let _ = stdin.shutdown().await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| SimError::PgTool {
            program: "psql".into(),
            message: e.to_string(),
        })?;
    let errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("ERROR:"))
        .map(|l| l.trim().to_string())
        .collect();
    if !out.status.success() && errors.is_empty() {
        return Err(SimError::PgTool {
            program: "psql".into(),
            message: tail(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    Ok(errors)
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(5);
    lines[start..].join(" | ")
}

// ---------------------------------------------------------------------------------------------
// Statement execution
// ---------------------------------------------------------------------------------------------

/// Whether `sql` starts (after comments) with a command that ends or splits a transaction:
/// `COMMIT`, `END`, `ROLLBACK` (but not `ROLLBACK TO`), `ABORT`, `BEGIN`, `START TRANSACTION`,
/// `PREPARE TRANSACTION`, `COMMIT PREPARED`, `ROLLBACK PREPARED`. The in-place rehearsal never
/// sends these to the target, whatever the parser made of them.
pub fn ends_transaction(sql: &str) -> bool {
    let words = leading_words(sql, 2);
    let first = words.first().map(String::as_str).unwrap_or("");
    let second = words.get(1).map(String::as_str).unwrap_or("");
    match first {
        "COMMIT" | "END" | "ABORT" | "BEGIN" => true,
        "ROLLBACK" => second != "TO",
        "START" => second == "TRANSACTION",
        "PREPARE" => second == "TRANSACTION",
        _ => false,
    }
}

pub(crate) use migration_parser::leading_words;

/// Whether PostgreSQL refuses to run the statement inside a transaction block.
pub fn runs_outside_transaction(st: &Statement) -> bool {
    let by_op = st.operations.iter().any(|op| match op {
        Operation::CreateIndex { concurrently, .. }
        | Operation::DropIndex { concurrently, .. }
        | Operation::Reindex { concurrently, .. }
        | Operation::DetachPartition { concurrently, .. } => *concurrently,
        Operation::Maintenance { command, .. } => command.is_vacuum(),
        Operation::DropDatabase { .. } => true,
        _ => false,
    });
    if by_op {
        return true;
    }
    let up = st.sql.trim_start().to_ascii_uppercase();
    let words: Vec<&str> = up.split_whitespace().collect();
    let first2 = words.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    (up.contains("CONCURRENTLY") && !up.starts_with("REFRESH"))
        || up.starts_with("VACUUM")
        || matches!(
            first2.as_str(),
            "CREATE DATABASE"
                | "DROP DATABASE"
                | "ALTER SYSTEM"
                | "CREATE TABLESPACE"
                | "DROP TABLESPACE"
        )
}

pub(crate) fn tx_control(st: &Statement) -> Option<TxControl> {
    st.operations.iter().find_map(|op| match op {
        Operation::Transaction(t) => Some(*t),
        _ => None,
    })
}

fn sets_timeouts(st: &Statement) -> bool {
    st.operations.iter().any(|op| match op {
        Operation::Set { name, .. } | Operation::Reset { name } => {
            matches!(name.as_str(), "lock_timeout" | "statement_timeout" | "all")
        }
        _ => false,
    }) || st.sql.to_ascii_lowercase().contains("_timeout")
}

type LockKey = (u32, String);

#[derive(Debug, Clone)]
struct RelInfo {
    schema: String,
    name: String,
    relkind: String,
    relfilenode: i64,
}

async fn relations(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<HashMap<u32, RelInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, c.relfilenode::int8
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY($1)",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await?;
    let mut m = HashMap::new();
    for r in rows {
        let oid: i64 = r.try_get(0)?;
        m.insert(
            oid as u32,
            RelInfo {
                schema: r.try_get(1)?,
                name: r.try_get(2)?,
                relkind: r.try_get(3)?,
                relfilenode: r.try_get(4)?,
            },
        );
    }
    Ok(m)
}

async fn held_locks(conn: &mut PgConnection) -> Result<Vec<(u32, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT l.relation::int8, l.mode FROM pg_locks l
          WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND l.relation >= 16384",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut v = Vec::new();
    for r in rows {
        let oid: i64 = r.try_get(0)?;
        let mode: String = r.try_get(1)?;
        v.push((oid as u32, mode));
    }
    Ok(v)
}

fn relkind_name(k: &str) -> &'static str {
    match k {
        "r" => "table",
        "p" => "partitioned_table",
        "i" | "I" => "index",
        "S" => "sequence",
        "v" => "view",
        "m" => "materialized_view",
        "f" => "foreign_table",
        "t" => "toast",
        _ => "other",
    }
}

/// The per-connection state of one rehearsal.
struct Engine<'a> {
    conn: &'a mut PgConnection,
    schemas: Vec<String>,
    shard_schema: String,
    version: u32,
    cancel: CancelToken,
    /// Locks held when the current unit (autocommit statement or block) started.
    baseline: BTreeSet<LockKey>,
    /// Relations that existed when the current unit started.
    unit_relations: HashMap<u32, RelInfo>,
    /// In-place: one transaction for everything, so a lock an earlier statement took is not
    /// listed again; knowledge-table locks confirmed by a held lock of equal or stronger mode
    /// on the same relation are added.
    in_place: bool,
}

impl Engine<'_> {
    /// Our own control statements (`BEGIN`, `SAVEPOINT …`, `SET LOCAL …`).
    async fn exec(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
    }

    /// One statement of the migration, over the extended query protocol: the server accepts
    /// exactly one command per message, so a statement whose text the server would read as
    /// several (a split that disagreed with the server's lexer) is an error instead of running
    /// a second, unobserved command.
    async fn exec_user(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::query(AssertSqlSafe(sql.to_string()))
            .persistent(false)
            .execute(&mut *self.conn)
            .await
            .map(|_| ())
    }

    async fn start_unit(&mut self) -> Result<(), sqlx::Error> {
        self.baseline = held_locks(self.conn).await?.into_iter().collect();
        self.unit_relations = relations(self.conn, &self.schemas).await?;
        Ok(())
    }

    /// Run one statement in the current (open) transaction and record locks and rewrites.
    async fn run_observed(
        &mut self,
        st: &Statement,
        in_block: bool,
    ) -> Result<StatementRehearsal, sqlx::Error> {
        let before = relations(self.conn, &self.schemas).await?;
        let t0 = Instant::now();
        let r = self.exec_user(&st.sql).await;
        let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mut rec = StatementRehearsal {
            index: st.index,
            line: st.span.line,
            outcome: StatementOutcome::Succeeded,
            locks: Vec::new(),
            lock_source: LockSource::Observed,
            rewritten: Vec::new(),
            created: Vec::new(),
            in_block,
            duration_ms,
        };
        match r {
            Err(e) => {
                if crate::conn::is_connection_error(&e) {
                    return Err(e);
                }
                let (sqlstate, message) = sqlstate_and_message(&e);
                rec.outcome = StatementOutcome::Failed { sqlstate, message };
                rec.lock_source = LockSource::Unknown;
            }
            Ok(()) => {
                let after = relations(self.conn, &self.schemas).await?;
                let locks_all = held_locks(self.conn).await?;
                let mut out = BTreeSet::new();
                for (oid, mode) in locks_all.iter().cloned() {
                    if self.baseline.contains(&(oid, mode.clone())) {
                        continue;
                    }
                    let Some(info) = after
                        .get(&oid)
                        .or_else(|| before.get(&oid))
                        .or_else(|| self.unit_relations.get(&oid))
                    else {
                        continue;
                    };
                    let Some(m) = LockMode::from_pg_locks_name(&mode) else {
                        continue;
                    };
                    out.insert(ObservedLock {
                        schema: info.schema.clone(),
                        relation: info.name.clone(),
                        relkind: relkind_name(&info.relkind).to_string(),
                        mode: m,
                        created_here: !self.unit_relations.contains_key(&oid),
                    });
                }
                if self.in_place {
                    let held: Vec<(String, String, LockMode)> = locks_all
                        .iter()
                        .filter_map(|(oid, mode)| {
                            let info = after.get(oid).or_else(|| before.get(oid))?;
                            Some((
                                info.schema.clone(),
                                info.name.clone(),
                                LockMode::from_pg_locks_name(mode)?,
                            ))
                        })
                        .collect();
                    for k in knowledge_locks(st, self.version, &self.shard_schema) {
                        let confirmed = held
                            .iter()
                            .any(|(s, n, m)| s == &k.schema && n == &k.relation && *m >= k.mode);
                        if confirmed
                            && !out.iter().any(|l| {
                                l.schema == k.schema && l.relation == k.relation && l.mode >= k.mode
                            })
                        {
                            out.insert(k);
                        }
                    }
                }
                rec.locks = out.into_iter().collect();
                for (oid, a) in &after {
                    match before.get(oid) {
                        Some(b)
                            if b.relfilenode != a.relfilenode
                                && a.relfilenode != 0
                                && b.relfilenode != 0 =>
                        {
                            rec.rewritten.push(format!("{}.{}", a.schema, a.name));
                        }
                        None => rec.created.push(format!("{}.{}", a.schema, a.name)),
                        _ => {}
                    }
                }
                rec.rewritten.sort();
                rec.created.sort();
            }
        }
        Ok(rec)
    }

    /// Run a statement that cannot be in a transaction: bare, locks from the knowledge table.
    async fn run_bare(&mut self, st: &Statement) -> Result<StatementRehearsal, sqlx::Error> {
        let before = relations(self.conn, &self.schemas).await?;
        let t0 = Instant::now();
        let r = self.exec_user(&st.sql).await;
        let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let mut rec = StatementRehearsal {
            index: st.index,
            line: st.span.line,
            outcome: StatementOutcome::Succeeded,
            locks: knowledge_locks(st, self.version, &self.shard_schema),
            lock_source: LockSource::KnowledgeTable,
            rewritten: Vec::new(),
            created: Vec::new(),
            in_block: false,
            duration_ms,
        };
        if let Err(e) = r {
            if crate::conn::is_connection_error(&e) {
                return Err(e);
            }
            let (sqlstate, message) = sqlstate_and_message(&e);
            rec.outcome = StatementOutcome::Failed { sqlstate, message };
        } else {
            let after = relations(self.conn, &self.schemas).await?;
            for (oid, a) in &after {
                match before.get(oid) {
                    Some(b)
                        if b.relfilenode != a.relfilenode
                            && a.relfilenode != 0
                            && b.relfilenode != 0 =>
                    {
                        rec.rewritten.push(format!("{}.{}", a.schema, a.name));
                    }
                    None => rec.created.push(format!("{}.{}", a.schema, a.name)),
                    _ => {}
                }
            }
        }
        Ok(rec)
    }
}

/// Locks from the parser's knowledge table for a statement.
pub(crate) fn knowledge_locks(
    st: &Statement,
    version: u32,
    shard_schema: &str,
) -> Vec<ObservedLock> {
    let mut out = BTreeSet::new();
    for op in &st.operations {
        for f in lock_facts(op, PgVersion(version)) {
            out.insert(ObservedLock {
                schema: f
                    .relation
                    .schema
                    .clone()
                    .unwrap_or_else(|| shard_schema.to_string()),
                relation: f.relation.name.clone(),
                relkind: "table".into(),
                mode: f.mode,
                created_here: false,
            });
        }
    }
    out.into_iter().collect()
}

fn not_run(st: &Statement, reason: NotRunReason, version: u32, schema: &str) -> StatementRehearsal {
    StatementRehearsal {
        index: st.index,
        line: st.span.line,
        outcome: StatementOutcome::NotRun { reason },
        locks: knowledge_locks(st, version, schema),
        lock_source: LockSource::KnowledgeTable,
        rewritten: Vec::new(),
        created: Vec::new(),
        in_block: st.tx.in_block,
        duration_ms: 0.0,
    }
}

fn simple(
    st: &Statement,
    outcome: StatementOutcome,
    in_block: bool,
    ms: f64,
) -> StatementRehearsal {
    StatementRehearsal {
        index: st.index,
        line: st.span.line,
        outcome,
        locks: Vec::new(),
        lock_source: LockSource::Observed,
        rewritten: Vec::new(),
        created: Vec::new(),
        in_block,
        duration_ms: ms,
    }
}

fn failed(e: &sqlx::Error) -> StatementOutcome {
    let (sqlstate, message) = sqlstate_and_message(e);
    StatementOutcome::Failed { sqlstate, message }
}

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
    let mut e = Engine {
        conn,
        schemas,
        shard_schema: shard_schema.to_string(),
        version,
        cancel: cancel.clone(),
        baseline: BTreeSet::new(),
        unit_relations: HashMap::new(),
        in_place: false,
    };
    let mut out = Vec::new();
    let mut open: Option<OpenTx> = None;
    for st in &migration.statements {
        if e.cancel.is_cancelled() {
            out.push(not_run(st, NotRunReason::Cancelled, version, shard_schema));
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
                out.push(not_run(
                    st,
                    NotRunReason::TransactionAborted,
                    version,
                    shard_schema,
                ));
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

fn ms(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64() * 1000.0
}

/// Run the statements on the target itself inside ONE transaction that is always rolled back.
/// The caller has classified them first ([`crate::in_place::classify`]): only a migration with
/// no refused statement comes here. Returns `Err` only when the connection is lost (the server
/// then rolls back).
pub(crate) async fn run_in_place(
    conn: &mut PgConnection,
    migration: &Migration,
    schemas: Vec<String>,
    shard_schema: &str,
    version: u32,
    limits: RehearsalLimits,
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
        let mut e = Engine {
            conn: &mut *conn,
            schemas,
            shard_schema: shard_schema.to_string(),
            version,
            cancel: cancel.clone(),
            baseline: BTreeSet::new(),
            unit_relations: HashMap::new(),
            in_place: true,
        };
        let mut out = Vec::new();
        // Open block: (transaction id, aborted).
        let mut block: Option<(usize, bool)> = None;
        for st in &migration.statements {
            if e.cancel.is_cancelled() {
                out.push(not_run(st, NotRunReason::Cancelled, version, shard_schema));
                continue;
            }
            match tx_control(st) {
                Some(TxControl::Begin) => {
                    if block.is_none() {
                        e.exec("SAVEPOINT deployclaw_block").await?;
                        e.start_unit().await?;
                        block = Some((st.tx.transaction, false));
                    }
                    out.push(not_run(
                        st,
                        NotRunReason::TransactionControl,
                        version,
                        shard_schema,
                    ));
                    continue;
                }
                Some(TxControl::Commit) | Some(TxControl::Rollback) => {
                    if block.take().is_some() {
                        e.exec("RELEASE SAVEPOINT deployclaw_block").await?;
                    }
                    out.push(not_run(
                        st,
                        NotRunReason::TransactionControl,
                        version,
                        shard_schema,
                    ));
                    continue;
                }
                _ => {}
            }
            if ends_transaction(&st.sql) {
                // A transaction-control statement the parser did not classify (`END`,
                // `ABORT`, `PREPARE TRANSACTION`, ...): running it would end the rehearsal's
                // transaction on the target.
                out.push(not_run(
                    st,
                    NotRunReason::TransactionControl,
                    version,
                    shard_schema,
                ));
                continue;
            }
            if runs_outside_transaction(st) {
                out.push(not_run(
                    st,
                    NotRunReason::NotTransactional,
                    version,
                    shard_schema,
                ));
                continue;
            }
            if st.tx.in_block && tx_control(st).is_none() {
                if block.map(|b| b.0) != Some(st.tx.transaction) && block.is_none() {
                    e.exec("SAVEPOINT deployclaw_block").await?;
                    e.start_unit().await?;
                    block = Some((st.tx.transaction, false));
                }
                if block.is_some_and(|b| b.1) {
                    out.push(not_run(
                        st,
                        NotRunReason::TransactionAborted,
                        version,
                        shard_schema,
                    ));
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
            if sets_timeouts(st) {
                // The migration may have changed the timeouts: ours stay in force.
                e.exec(&timeouts).await?;
            }
        }
        Ok::<_, sqlx::Error>(out)
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

/// Prepare a shadow connection to `db` with the given search path and session timeouts.
pub(crate) async fn shadow_connection(
    spec: &ConnectionSpec,
    db: &str,
    shard_schema: &str,
    limits: RehearsalLimits,
) -> Result<PgConnection, SimError> {
    let opts: PgConnectOptions =
        shadow_connect_options(spec, db).map_err(|source| SimError::ShadowStart { source })?;
    let mut conn = PgConnection::connect_with(&opts)
        .await
        .map_err(|source| SimError::Shadow {
            url: redacted(spec, db),
            what: "connect to shadow database".into(),
            source,
        })?;
    let setup = format!(
        "SET statement_timeout = {}; SET lock_timeout = {}",
        limits.statement_timeout.as_millis().max(1),
        limits.lock_timeout.as_millis().max(1)
    );
    let r = async {
        sqlx::raw_sql(AssertSqlSafe(setup))
            .execute(&mut conn)
            .await?;
        sqlx::query("SELECT set_config('search_path', $1, false)")
            .bind(format!("{}, public", quote_ident(shard_schema)))
            .execute(&mut conn)
            .await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    r.map_err(|source| SimError::Shadow {
        url: redacted(spec, db),
        what: "prepare shadow session".into(),
        source,
    })?;
    Ok(conn)
}

/// Schemas a migration names explicitly (qualified names).
pub(crate) fn schemas_named(migration: &Migration) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    let json = serde_json::to_value(&migration.statements).unwrap_or_default();
    collect_schemas(&json, &mut s);
    s
}

fn collect_schemas(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(serde_json::Value::String(schema)), Some(serde_json::Value::String(_))) =
                (m.get("schema"), m.get("name"))
            {
                out.insert(schema.clone());
            }
            for x in m.values() {
                collect_schemas(x, out);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                collect_schemas(x, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::ends_transaction;

    #[test]
    fn transaction_enders_are_recognised_behind_comments() {
        for sql in [
            "COMMIT",
            "end",
            "END TRANSACTION",
            "abort",
            "ROLLBACK",
            "rollback prepared 'x'",
            "COMMIT PREPARED 'x'",
            "PREPARE TRANSACTION 'x'",
            "BEGIN",
            "start transaction read write",
            "-- a comment\nCOMMIT",
            "/* block */ /* two */ END",
        ] {
            assert!(ends_transaction(sql), "{sql}");
        }
        for sql in [
            "ROLLBACK TO SAVEPOINT a",
            "ALTER TABLE t ADD COLUMN c int",
            "DO $$ BEGIN PERFORM 1; END $$",
            "PREPARE q AS SELECT 1",
            "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END",
            "-- COMMIT\nSELECT 1",
            "ENDPOINT",
        ] {
            assert!(!ends_transaction(sql), "{sql}");
        }
    }
}
