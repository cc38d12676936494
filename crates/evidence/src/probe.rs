//! What the read-only probes found on a shard: one [`ProbeResult`] per probe, [`TableStats`]
//! per table the migration touches.

use serde::{Deserialize, Serialize};

use crate::ProbeKind;

/// Maximum number of sample rows/keys a probe returns.
pub const MAX_SAMPLES: usize = 5;

/// An error a probe query raised (it is an outcome, not a failure of the run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProbeError {
    /// SQLSTATE, e.g. `57014` for a statement timeout, `42703` for an undefined column.
    pub sqlstate: Option<String>,
    /// The server's message.
    pub message: String,
}

/// The typed result of one probe on one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Shard id.
    pub shard: String,
    /// What was checked.
    pub kind: ProbeKind,
    /// The migration statement (0-based index) the probe is for; `None` for table sizes.
    pub statement_index: Option<usize>,
    /// Schema of the table probed (on the shard).
    pub schema: String,
    /// Table probed (its name on the shard, before any rename by the migration).
    pub table: String,
    /// Column, when the probe is about one.
    pub column: Option<String>,
    /// Constraint or index name, when known.
    pub constraint: Option<String>,
    /// Rows (or duplicate groups, for [`ProbeKind::UniqueViolations`]; rows in the table for
    /// [`ProbeKind::TableSize`]) found. 0 when the probe was skipped or failed.
    pub count: u64,
    /// `false` when `count` is only a lower bound (cast failures found without a per-row check,
    /// row counts capped) or an estimate (table sizes).
    pub exact: bool,
    /// Up to [`MAX_SAMPLES`] examples: offending key values, primary keys of offending rows
    /// (`ctid` when the table has no primary key), or the server's error message.
    pub samples: Vec<String>,
    /// Whether what was found makes the migration statement fail on this shard.
    pub would_fail: bool,
    /// Total size in bytes (table, indexes, TOAST) for [`ProbeKind::TableSize`].
    pub bytes: Option<i64>,
    /// Why the probe did not run (e.g. the table is created by the migration itself).
    pub skipped: Option<String>,
    /// Additional context (e.g. "column backfilled by statement 3: count is before the backfill").
    pub note: Option<String>,
    /// The query raised an error (timeout, bad expression).
    pub error: Option<ProbeError>,
    /// The SQL that ran (schema-qualified, quoted). Empty when skipped.
    pub sql: String,
    /// Wall time of the query.
    pub duration_ms: u64,
}

/// Size facts about one table of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TableStats {
    /// Schema.
    pub schema: String,
    /// Table.
    pub table: String,
    /// The table exists on the shard.
    pub exists: bool,
    /// Heap size in bytes (summed over partitions).
    pub heap_bytes: i64,
    /// Heap + indexes + TOAST in bytes (summed over partitions).
    pub total_bytes: i64,
    /// Indexes only, in bytes.
    pub index_bytes: i64,
    /// `pg_class.reltuples` (summed over partitions); `None` if never analyzed.
    pub row_estimate: Option<i64>,
}
