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
//! created first (best effort). No rows are copied by default (opt-in: [`sample`]): data questions are answered by the
//! probes on the real shard, and lock *duration* is estimated from the real shard's sizes
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
//! on the shadow or in place, [`sample`] (with `sample_read`) copies real rows for
//! `--shadow-data sample`.

use std::time::Duration;

pub(crate) mod clone;
pub(crate) mod engine;
pub(crate) mod execute;
pub mod sample;
mod sample_read;
pub(crate) mod server;
pub mod tx;

pub use tx::{ends_transaction, runs_outside_transaction};

pub use evidence::{
    FleetRerun, LockSource, NotRunReason, ObservedLock, RehearsalMode, RehearsalResult,
    StatementOutcome, StatementRehearsal,
};

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
