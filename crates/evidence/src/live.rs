//! What the live workload of a shard looked like while the gate read it (issue 16): sessions
//! holding or waiting for locks on the relations the migration locks ([`LockHolder`]), the
//! write/read rate of those relations ([`TableTraffic`]), the application's own queries that
//! use what the migration drops, renames or converts ([`QueryUse`]), and the read replica the
//! data probes ran on ([`ReplicaRead`]). All read-only, from the statistics views; never a
//! literal of a user's query text.

use serde::{Deserialize, Serialize};

/// Whether one live read ran. A read that could not run is said, never silently empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LiveStatus {
    /// Not attempted (disabled, or the shard was unreachable).
    #[default]
    NotRun,
    /// Read; the findings are in the matching list (empty = nothing found).
    Read,
    /// Could not be read (missing privilege, extension not installed, view absent); why.
    Unavailable {
        /// Why, in words (e.g. `pg_stat_statements is not installed: …`).
        reason: String,
    },
}

impl LiveStatus {
    /// True for [`LiveStatus::NotRun`].
    pub fn is_not_run(&self) -> bool {
        matches!(self, LiveStatus::NotRun)
    }
}

/// The live workload of one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LiveEvidence {
    /// The lock/activity read (`pg_stat_activity` × `pg_locks`).
    #[serde(default)]
    pub locks: LiveStatus,
    /// Sessions that hold or wait for a lock conflicting with the migration's, on a relation of
    /// this shard the migration locks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lock_holders: Vec<LockHolder>,
    /// The traffic read (`pg_stat_user_tables` sampled twice, or `pg_stat_statements`).
    #[serde(default)]
    pub traffic: LiveStatus,
    /// Rates per relation the migration locks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub table_traffic: Vec<TableTraffic>,
    /// Per statement holding a blocking lock: what the traffic would queue behind it
    /// ([`QueuedEstimate`]); filled only when the traffic was read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued: Vec<QueuedEstimate>,
    /// The application-query read (`pg_stat_statements`).
    #[serde(default)]
    pub statements: LiveStatus,
    /// Normalised application queries using what the migration drops, renames or converts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_uses: Vec<QueryUse>,
    /// Query texts of the shard's database that name a table the migration changes but could
    /// not be parsed: skipped, never guessed (counted so a reader knows what was not checked).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub queries_skipped: u64,
    /// The read replica the data probes ran on (`--probe-on replica`); `None` = the writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaRead>,
}

impl LiveEvidence {
    /// Nothing was attempted (the JSON then omits the section).
    pub fn is_empty(&self) -> bool {
        self.locks.is_not_run()
            && self.traffic.is_not_run()
            && self.statements.is_not_run()
            && self.replica.is_none()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A session holding or waiting for a lock the migration's lock would queue behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LockHolder {
    /// Backend pid.
    pub pid: i32,
    /// `application_name` (may be empty).
    pub application_name: String,
    /// `state` (`active`, `idle in transaction`, …).
    pub state: String,
    /// Age of the session's transaction, ms (`now() - xact_start`); `None` outside a transaction.
    pub xact_age_ms: Option<u64>,
    /// Time in the current state, ms (`now() - state_change`).
    pub state_age_ms: Option<u64>,
    /// The relation (`schema.name`).
    pub relation: String,
    /// The lock mode the session holds or waits for (`RowExclusiveLock`, …, pg_locks spelling).
    pub mode: String,
    /// Granted (holds it) or waiting.
    pub granted: bool,
    /// The migration's lock that conflicts (`AccessExclusiveLock`, …) and the 0-based statement.
    pub blocks_mode: String,
    /// 0-based index of the migration statement whose lock conflicts.
    pub blocks_statement: usize,
    /// The session's query, normalised (literals replaced by `$n`, truncated): never a value.
    pub query: Option<String>,
}

/// Traffic on one relation the migration locks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TableTraffic {
    /// The relation (`schema.name`).
    pub relation: String,
    /// Where the rate comes from (`pg_stat_user_tables over 2000 ms`, `pg_stat_statements`).
    pub source: String,
    /// Length of the sampling window, ms.
    pub window_ms: u64,
    /// Rows inserted + updated + deleted per second.
    pub writes_per_s: f64,
    /// Scans (sequential + index) per second.
    pub reads_per_s: f64,
}

/// What would queue behind one statement's blocking lock on one shard: the rates of the
/// relations it blocks ([`TableTraffic`]) times its estimated lock time — only the kinds the
/// lock blocks (`ACCESS EXCLUSIVE`: reads and writes; `SHARE`, `SHARE ROW EXCLUSIVE`,
/// `EXCLUSIVE`: writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueuedEstimate {
    /// 0-based index of the migration statement.
    pub statement: usize,
    /// The statement's estimated blocking-lock time, ms.
    pub lock_ms: f64,
    /// Row writes (inserts + updates + deletes) that would queue; `None` when the lock lets
    /// writes through.
    pub writes: Option<f64>,
    /// Reads (sequential + index scans) that would queue; `None` when the lock lets reads
    /// through.
    pub reads: Option<f64>,
    /// The blocked relations whose rates were summed (`schema.name`).
    pub relations: Vec<String>,
    /// Blocked relations without a rate (not in `pg_stat_user_tables` when sampled, e.g.
    /// created by the migration): nothing is claimed for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_rate: Vec<String>,
}

/// A normalised application query that uses what the migration drops, renames or converts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct QueryUse {
    /// `pg_stat_statements.queryid`.
    pub queryid: i64,
    /// The normalised query text (parameters as `$n`), truncated.
    pub query: String,
    /// Calls since the last statistics reset.
    pub calls: i64,
    /// What it uses (`schema.table.column` or `schema.table`).
    pub uses: String,
    /// What the migration does to it (`drops`, `renames`, `changes the type of`).
    pub change: String,
    /// The details of the change where known: the new name (`to purchases`) or the types
    /// (`integer → text`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// 0-based index of the migration statement.
    pub statement: usize,
    /// When the statistics were last reset (RFC 3339), where known.
    pub stats_since: Option<String>,
    /// Run by the role the gate connects as: deployclaw's own probes of an earlier run, or an
    /// application sharing the gate's role — the two cannot be told apart (informational).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_gate_role: bool,
}

/// The read replica the data probes of a shard ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ReplicaRead {
    /// The replica's instance name.
    pub instance: String,
    /// Replay lag measured before probing, ms (`now() - pg_last_xact_replay_timestamp()`).
    pub lag_ms: Option<u64>,
    /// The replica was refused (lag over the bound, not in recovery, unreachable) and the
    /// probes ran on the writer instead; why.
    pub refused: Option<String>,
}
