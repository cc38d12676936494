//! What the rehearsal of the migration on a copy of a shard's structure recorded, statement by
//! statement.

use migration_parser::LockMode;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LockSource {
    /// Read from `pg_locks` for the session while the statement's transaction was open.
    Observed,
    /// From the parser's knowledge table (statement ran outside a transaction, or was not run).
    KnowledgeTable,
    /// None known (statement failed before locks could be read).
    #[default]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StatementOutcome {
    /// It ran without error.
    #[default]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
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
    /// rollback does not undo (`simulator::in_place`). When there are any, nothing ran on the
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

/// The per-fleet proof of a shard that shares its database with another shard: the migration
/// was rehearsed for `first_shard` and then for this shard, in sequence, on one shadow database
/// holding both schemas (each run with its own `search_path`), as a per-tenant rollout runs it.
/// A statement that fails here but not in the shard's own rehearsal fails because of what the
/// first run left behind: a non-tenant object (`CREATE SCHEMA utils`, a function in `public`, an
/// extension) that exists only once per database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FleetRerun {
    /// The database both shards live in.
    pub database: String,
    /// The shard whose run came first.
    pub first_shard: String,
    /// The shadow could not be prepared or the first run could not be completed.
    pub setup_error: Option<String>,
    /// This shard's run, statement by statement.
    pub statements: Vec<StatementRehearsal>,
}

/// A statement the in-place rehearsal would not run on the target, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InPlaceRefusal {
    /// 0-based statement index in the migration.
    pub index: usize,
    /// 1-based line of the statement in the file.
    pub line: u32,
    /// The statement's first words (at most 60 characters, on one line).
    pub statement: String,
    /// Why it was not proven free of effects that outlive the rollback (at least one).
    pub reasons: Vec<String>,
}
