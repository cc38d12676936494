//! Rehearsal: run the migration statement by statement on a copy of one shard's structure (or,
//! opt-in, on the target inside one transaction that is always rolled back) and record what
//! PostgreSQL actually did: outcome with SQLSTATE, relation locks held (`pg_locks`), relations
//! rewritten (`relfilenode` changed), duration.
//!
//! ## Shadow
//!
//! The shadow server is an [`EphemeralPg`](topology::ephemeral::EphemeralPg) started for the run (default) or a scratch server
//! given by URL. For every schema shape a fresh database `deployclaw_shadow_<random>` is created
//! there and dropped at the end — on success, error and cancellation (a [`Drop`] fallback drops
//! it from a helper thread if the future was abandoned). The ephemeral cluster listens on its
//! private Unix socket only ([`EphemeralOptions::shadow`](topology::ephemeral::EphemeralOptions::shadow)). On a scratch server the run holds a
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
//! Statements run with the file's real transaction structure ([`TxContext`](migration_parser::TxContext)): explicit
//! `BEGIN … COMMIT` blocks (or the whole file under `TransactionMode::WrapFile`) run as one
//! transaction; an autocommit statement runs inside a `BEGIN … COMMIT` wrapper so its locks can be
//! read from `pg_locks` before they are released — except statements that cannot run in a
//! transaction (`… CONCURRENTLY`, `VACUUM`), which run bare and whose locks come from the
//! parser's knowledge table ([`LockSource::KnowledgeTable`]). After a failing statement inside a
//! block, the rest of the block is [`NotRunReason::TransactionAborted`].

//!
//! ## Files
//!
//! This file holds the result types. `server` is the shadow server and its databases, `clone`
//! copies a shard's structure into one, [`tx`] classifies statements by what they do to the
//! transaction, `engine` runs one statement and observes it, `execute` runs a whole migration
//! on the shadow or in place.

use std::time::Duration;

use migration_parser::LockMode;
use serde::{Deserialize, Serialize};

use crate::in_place::InPlaceRefusal;

pub(crate) mod clone;
pub(crate) mod engine;
pub(crate) mod execute;
pub(crate) mod server;
pub mod tx;

pub use tx::{ends_transaction, runs_outside_transaction};

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
