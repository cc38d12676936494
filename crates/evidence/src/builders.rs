//! Small constructors so a rule author builds evidence in a test without a database (every
//! field stays public: set anything else directly).

use crate::{
    LockEstimate, ProbeError, ProbeKind, ProbeResult, RehearsalMode, RehearsalResult,
    ShardEvidence, SimulationResult, StatementEstimate, StatementOutcome, StatementRehearsal,
    TableStats,
};

impl ShardEvidence {
    /// Evidence for shard `shard` whose tables live in `schema`, with nothing found yet
    /// (reachable, no probes, no tables).
    pub fn new(shard: impl Into<String>, schema: impl Into<String>) -> ShardEvidence {
        ShardEvidence {
            shard: shard.into(),
            schema: schema.into(),
            ..ShardEvidence::default()
        }
    }

    /// The same evidence with one more probe result.
    #[must_use]
    pub fn with_probe(mut self, probe: ProbeResult) -> ShardEvidence {
        self.probes.push(probe);
        self
    }

    /// The same evidence with the sizes of one more table.
    #[must_use]
    pub fn with_table(mut self, table: TableStats) -> ShardEvidence {
        self.tables.push(table);
        self
    }

    /// The same evidence with a lock-time estimate (and its total as
    /// [`estimated_lock_ms`](ShardEvidence::estimated_lock_ms)).
    #[must_use]
    pub fn with_estimate(mut self, estimate: LockEstimate) -> ShardEvidence {
        self.estimated_lock_ms = estimate.total_lock_ms;
        self.estimate = Some(estimate);
        self
    }

    /// The same evidence for a shard that could not be reached (`reason` says why).
    #[must_use]
    pub fn unreachable(mut self, reason: impl Into<String>) -> ShardEvidence {
        self.unreachable = Some(reason.into());
        self
    }
}

impl ProbeResult {
    /// A probe of `kind` on `schema.table` of `shard` that ran and found nothing (count 0,
    /// exact); set what it found with [`with_count`](Self::with_count).
    pub fn new(
        shard: impl Into<String>,
        kind: ProbeKind,
        schema: impl Into<String>,
        table: impl Into<String>,
    ) -> ProbeResult {
        ProbeResult {
            shard: shard.into(),
            kind,
            statement_index: None,
            schema: schema.into(),
            table: table.into(),
            column: None,
            constraint: None,
            count: 0,
            exact: true,
            samples: Vec::new(),
            would_fail: false,
            bytes: None,
            skipped: None,
            note: None,
            error: None,
            sql: String::new(),
            duration_ms: 0,
        }
    }

    /// The same probe about migration statement `index` (0-based).
    #[must_use]
    pub fn for_statement(mut self, index: usize) -> ProbeResult {
        self.statement_index = Some(index);
        self
    }

    /// The same probe about `column`.
    #[must_use]
    pub fn on_column(mut self, column: impl Into<String>) -> ProbeResult {
        self.column = Some(column.into());
        self
    }

    /// The same probe, failed with `error`: nothing was counted (count 0, not exact).
    #[must_use]
    pub fn with_error(mut self, error: ProbeError) -> ProbeResult {
        self.error = Some(error);
        self.exact = false;
        self
    }

    /// The same probe having found `count` rows (`exact`: not a lower bound or estimate); a
    /// data probe that finds rows makes its statement fail ([`would_fail`](Self::would_fail)).
    #[must_use]
    pub fn with_count(mut self, count: u64, exact: bool) -> ProbeResult {
        self.count = count;
        self.exact = exact;
        self.would_fail = count > 0 && kind_fails_on_rows(self.kind);
        self
    }
}

/// Whether rows found by a probe of `kind` make the statement fail: the kind predicts a
/// SQLSTATE ([`ProbeKind::sqlstate`]).
fn kind_fails_on_rows(kind: ProbeKind) -> bool {
    !kind.sqlstate().0.is_empty()
}

impl TableStats {
    /// A table that exists on the shard, empty until [`with_bytes`](Self::with_bytes).
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> TableStats {
        TableStats {
            schema: schema.into(),
            table: table.into(),
            exists: true,
            ..TableStats::default()
        }
    }

    /// The same table with `total_bytes` in all (heap, indexes, TOAST) and `heap_bytes` of heap;
    /// the difference counts as indexes.
    #[must_use]
    pub fn with_bytes(mut self, total_bytes: i64, heap_bytes: i64) -> TableStats {
        self.total_bytes = total_bytes;
        self.heap_bytes = heap_bytes;
        self.index_bytes = (total_bytes - heap_bytes).max(0);
        self
    }

    /// The same table with this row estimate.
    #[must_use]
    pub fn with_rows(mut self, rows: i64) -> TableStats {
        self.row_estimate = Some(rows);
        self
    }
}

impl RehearsalResult {
    /// A rehearsal of shard `shard` (schema `schema`) on a shadow with no statement recorded
    /// yet; add them with [`with_statement`](Self::with_statement).
    pub fn new(shard: impl Into<String>, schema: impl Into<String>) -> RehearsalResult {
        RehearsalResult {
            shard: shard.into(),
            schema: schema.into(),
            mode: RehearsalMode::Shadow,
            ..RehearsalResult::default()
        }
    }

    /// The same rehearsal with one more statement record.
    #[must_use]
    pub fn with_statement(mut self, statement: StatementRehearsal) -> RehearsalResult {
        self.statements.push(statement);
        self
    }
}

impl StatementRehearsal {
    /// The record of statement `index` (0-based) at `line` with this outcome, no locks known.
    pub fn new(index: usize, line: u32, outcome: StatementOutcome) -> StatementRehearsal {
        StatementRehearsal {
            index,
            line,
            outcome,
            ..StatementRehearsal::default()
        }
    }
}

impl StatementOutcome {
    /// A failure with this SQLSTATE and message.
    pub fn failed(sqlstate: impl Into<String>, message: impl Into<String>) -> StatementOutcome {
        StatementOutcome::Failed {
            sqlstate: Some(sqlstate.into()),
            message: message.into(),
        }
    }
}

impl LockEstimate {
    /// An estimate made of these per-statement estimates (totals summed up, default
    /// throughput).
    pub fn of(statements: Vec<StatementEstimate>) -> LockEstimate {
        let total: f64 = statements.iter().map(|s| s.estimated_lock_ms).sum();
        let max = statements
            .iter()
            .map(|s| s.estimated_lock_ms)
            .fold(0.0_f64, f64::max);
        let run: f64 = statements.iter().map(|s| s.estimated_ms).sum();
        LockEstimate {
            statements,
            total_lock_ms: total.round() as u64,
            max_statement_lock_ms: max.round() as u64,
            total_ms: run.round() as u64,
            ..LockEstimate::default()
        }
    }
}

impl StatementEstimate {
    /// Statement `index` (0-based) holding a blocking lock for `lock_ms` milliseconds (and
    /// running that long).
    pub fn new(index: usize, lock_ms: f64) -> StatementEstimate {
        StatementEstimate {
            index,
            estimated_ms: lock_ms,
            estimated_lock_ms: lock_ms,
            ..StatementEstimate::default()
        }
    }
}

impl SimulationResult {
    /// A simulation of these shards and no rehearsal.
    pub fn of(shards: Vec<ShardEvidence>) -> SimulationResult {
        SimulationResult {
            shards,
            ..SimulationResult::default()
        }
    }
}
