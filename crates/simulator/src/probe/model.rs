//! The probe plan as data: what [`super::plan`] yields and [`super::run`] executes.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use migration_parser::QualifiedName;
use serde::{Deserialize, Serialize};

use super::kind::ProbeKind;
use super::result::{ProbeError, ProbeResult, TableStats};

/// A name an expression of the migration reads that the shard's table does not have under that
/// name at this point of the migration: a column added earlier (its one value in every existing
/// row) or renamed earlier (the shard's column). The probe binds it in a lateral subquery beside
/// the table's row `x` (`probe/sql.rs::bound_sql`), so the expression runs as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bound {
    /// The name as the expression reads it (quoted when bound).
    pub name: String,
    /// Its value: `x."shard name"`, or the added column's `((default)::type)`.
    pub sql: String,
    /// Whether `sql` is the migration's code (a default), checked as its expressions are.
    pub migration_code: bool,
}

/// A data probe before it is bound to a shard.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    Orphans {
        columns: Vec<String>,
        ref_table: QualifiedName,
        ref_columns: Vec<String>,
        ref_created: bool,
        /// `MATCH FULL` (a row with some key columns NULL and some not is an orphan).
        match_full: bool,
    },
    /// `VALIDATE CONSTRAINT name` of a constraint that exists on the shard: definition looked up.
    ValidateExisting {
        name: String,
    },
    Nulls {
        column: String,
    },
    AllRowsNull {
        column: String,
    },
    Duplicates {
        keys: Vec<String>,
        predicate: Option<String>,
        nulls_not_distinct: bool,
        /// Names the key expressions and the predicate read that the table lacks on the shard.
        bound: Vec<Bound>,
    },
    Expression {
        expr: String,
        /// Names the expression reads that the table lacks on the shard.
        bound: Vec<Bound>,
    },
    Cast {
        column: String,
        new_type: String,
        using: Option<String>,
        /// Names the `USING` expression reads that the table lacks on the shard.
        bound: Vec<Bound>,
    },
    /// A cast to a domain the migration creates over a type of the shard: rows whose value,
    /// converted to the base type, breaks one of the domain's `CHECK`s (`VALUE` in a check
    /// reads the converted value), or, with `null_breaks` (a `NOT NULL` domain and a `USING`
    /// expression), is NULL.
    DomainChecks {
        column: String,
        /// The domain's base type.
        base: String,
        using: Option<String>,
        /// Its `CHECK` expressions.
        checks: Vec<String>,
        null_breaks: bool,
        /// Names the `USING` expression reads that the table lacks on the shard.
        bound: Vec<Bound>,
    },
    /// A cast to an enum the migration creates (or extends): values that are none of its
    /// labels (nor, for an enum of the shard, of the labels it has there).
    Labels {
        column: String,
        labels: Vec<String>,
        /// The enum's name (quoted), when it is the shard's (extended by `ADD VALUE`).
        shard_enum: Option<String>,
    },
    /// The rows an unbatched `UPDATE` / `DELETE` touches (`row_estimate`).
    RowEstimate {
        filter: migration_parser::RowFilter,
    },
}

/// One planned data probe.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedProbe {
    pub statement_index: usize,
    pub kind: ProbeKind,
    /// The table's name on the shard (renames undone).
    pub table: QualifiedName,
    pub column: Option<String>,
    pub constraint: Option<String>,
    pub check: Check,
    pub would_fail: bool,
    pub skipped: Option<String>,
    pub note: Option<String>,
}

/// What an existence reference expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum ObjKind {
    Table,
    Column,
    Constraint,
    /// Any relation name in the schema (index names share the relation namespace).
    Relation,
    Index,
}

impl ObjKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ObjKind::Table => "table",
            ObjKind::Column => "column",
            ObjKind::Constraint => "constraint",
            ObjKind::Relation => "relation",
            ObjKind::Index => "index",
        }
    }
}

/// A reference to a catalog object the statement needs to exist (or not to exist).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ObjRef {
    pub statement_index: usize,
    pub kind: ObjKind,
    /// Table (for tables, columns, constraints) or the schema-carrying name (relations, indexes).
    pub table: QualifiedName,
    /// Column, constraint or index name (empty for tables).
    pub name: String,
    pub must_exist: bool,
}

/// The probes a migration needs, independent of any shard.
#[derive(Debug, Clone, Default)]
pub struct ProbePlan {
    pub(crate) probes: Vec<PlannedProbe>,
    pub(crate) refs: Vec<ObjRef>,
    /// Tables (as named on the shard) whose sizes are wanted.
    pub(crate) tables: BTreeSet<QualifiedName>,
    /// Tables (as named on the shard) with a must-exist reference in `refs` already.
    pub(crate) required_tables: BTreeSet<QualifiedName>,
}

impl ProbePlan {
    /// Number of data probes (orphans, NULLs, duplicates, checks, casts) in the plan.
    pub fn data_probe_count(&self) -> usize {
        self.probes.len()
    }
    /// Number of existence checks.
    pub fn reference_count(&self) -> usize {
        self.refs.len()
    }
    /// Tables whose size is measured, as named on the shard (unqualified = the shard's schema).
    pub fn tables(&self) -> Vec<String> {
        self.tables.iter().map(|t| t.to_string()).collect()
    }
}

/// Limits for a probe transaction.
#[derive(Debug, Clone, Copy)]
pub struct ProbeLimits {
    /// `statement_timeout` for every probe query.
    pub statement_timeout: Duration,
    /// `lock_timeout` for every probe query (probes take only ACCESS SHARE locks, which wait
    /// behind an ACCESS EXCLUSIVE holder).
    pub lock_timeout: Duration,
    /// Server major version (12+: `plan_cache_mode` is set for the probes' transaction).
    pub server_version: u32,
}

/// Outcome of probing one shard.
#[derive(Debug, Clone, Default)]
pub struct ShardProbes {
    /// Every probe result, in plan order (existence failures, then data probes, then sizes).
    pub results: Vec<ProbeResult>,
    /// Sizes of the touched tables.
    pub tables: Vec<TableStats>,
    /// Results of the custom probes, by name.
    pub custom: std::collections::BTreeMap<String, crate::custom::CustomProbeRows>,
}

/// `(schema, table)` of a planned name on the shard whose schema is `shard_schema`.
pub(crate) fn resolve(q: &QualifiedName, shard_schema: &str) -> (String, String) {
    (
        q.schema.clone().unwrap_or_else(|| shard_schema.to_string()),
        q.name.clone(),
    )
}

/// [`resolve`] for a relation a statement needs (it must exist): an unqualified name the shard's
/// schema lacks (`missing`) is the shared schema's, as the shard's search path resolves it.
pub(crate) fn resolve_needed(
    q: &QualifiedName,
    shard_schema: &str,
    missing: impl Fn(&str, &str) -> bool,
) -> (String, String) {
    let (s, t) = resolve(q, shard_schema);
    if q.schema.is_none() && missing(&s, &t) {
        (crate::safety::SHARED_SCHEMA.to_string(), t)
    } else {
        (s, t)
    }
}

/// The catalog answers of one shard's probe plan, read for its whole database at once
/// (`batch.rs`) before the shard's own transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardCatalog {
    /// `(index in the plan's refs, exists)` of every existence check.
    pub(crate) refs: Vec<(usize, Option<bool>)>,
    /// The sizes of the plan's tables, in the plan's order.
    pub(crate) sizes: Vec<TableStats>,
    /// Primary-key columns of the tables the data probes sample.
    pub(crate) pks: HashMap<(String, String), Vec<String>>,
    /// The operators of the orphan probes, by probe index (`kinds/fk_orphans.rs`).
    pub(crate) fk_joins: HashMap<usize, PreparedFk>,
    /// How long the database's batch took (the duration of each of these answers).
    pub(crate) duration_ms: u64,
}

/// How PostgreSQL's own check of a foreign key (`RI_Initial_Check`, run by `ADD FOREIGN KEY`
/// and `VALIDATE CONSTRAINT`) joins the two tables: per column pair the equality operator of
/// the referenced key's unique index's operator family — named with its schema, the operands
/// cast to the operator's input types where they differ, the referenced column's collation
/// where the two differ — and `ONLY` on each side unless it is partitioned (the rows of
/// inheritance children are neither checked nor matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FkJoin {
    /// `FROM ONLY` the referencing table.
    pub fk_only: bool,
    /// `FROM ONLY` the referenced table.
    pub pk_only: bool,
    /// One operator per column pair, in the foreign key's order.
    pub ops: Vec<PairOp>,
}

/// The comparison of one column pair, as [`FkJoin`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PairOp {
    /// The operator, `schema.name` for `OPERATOR(…)` (the name quoted, the symbol checked).
    pub operator: String,
    /// The referenced column's cast, `::schema.type`, when its type is not the operator's left.
    pub left_cast: String,
    /// The referencing column's cast when its type is not the operator's right.
    pub right_cast: String,
    /// ` COLLATE schema.name` of the referenced column when the two columns' collations differ.
    pub collate: String,
}

/// An orphan probe's referenced table (quoted, qualified), its key columns and the operators,
/// looked up by a database's batch for one shard.
pub(crate) type PreparedFk = (String, Vec<String>, Result<FkJoin, ProbeError>);
