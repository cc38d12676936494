//! The typed model of a migration: statements, spans, operations and transaction structure.
//!
//! This is the contract every other deployclaw crate codes against. Names are normalised the way
//! PostgreSQL folds them: unquoted identifiers are lower-cased, quoted ones are kept verbatim.

use serde::{Deserialize, Serialize};

pub use crate::names::QualifiedName;

use crate::actions::{
    AlterTableAction, MaintenanceCommand, ReindexTarget, SequenceOwnedBy, TypeRepresentation,
};

/// A PostgreSQL major version (11–17 are known to the lock table; others clamp to the nearest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PgVersion(pub u32);

impl PgVersion {
    /// The oldest major version the knowledge table describes.
    pub const MIN: PgVersion = PgVersion(11);
    /// The newest major version the knowledge table describes.
    pub const MAX: PgVersion = PgVersion(17);
    /// The default when nothing is configured.
    pub const DEFAULT: PgVersion = PgVersion(15);

    /// The version clamped into the range the knowledge table describes.
    pub fn clamped(self) -> PgVersion {
        PgVersion(self.0.clamp(Self::MIN.0, Self::MAX.0))
    }
}

impl Default for PgVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl std::fmt::Display for PgVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How the runner executes the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TransactionMode {
    /// As `psql -f`: each statement outside an explicit BEGIN/COMMIT autocommits on its own.
    #[default]
    Autocommit,
    /// As `psql -1`, Diesel, sqlx, golang-migrate, Flyway by default: the whole file runs in one
    /// transaction. As on the server, an explicit `BEGIN` inside it is a warning-only no-op, but
    /// an explicit `COMMIT`/`ROLLBACK` really ends the wrapping transaction: the statements after
    /// it autocommit (`in_block = false`) until the next `BEGIN`.
    WrapFile,
}

/// Options for [`crate::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ParseOptions {
    /// Which lock table to use.
    pub pg_version: PgVersion,
    /// How the runner wraps the file in transactions.
    pub transaction_mode: TransactionMode,
}

/// A location in the source file. Lines and columns are 1-based; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Span {
    /// Line of the first character of the statement.
    pub line: u32,
    /// Column of the first character of the statement.
    pub column: u32,
    /// Line of the last character of the statement (the `;` if present).
    pub end_line: u32,
    /// Column of the last character of the statement.
    pub end_column: u32,
    /// Byte offset of the first character in the source.
    pub start: usize,
    /// Byte offset one past the last character in the source.
    pub end: usize,
}

/// Volatility of a default or expression, as PostgreSQL classifies functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Volatility {
    /// A literal or immutable expression: `ADD COLUMN ... DEFAULT` needs no rewrite on PG 11+.
    Immutable,
    /// Evaluated once per statement (`now()`, `current_timestamp`): also no rewrite on PG 11+.
    Stable,
    /// Evaluated per row (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval()`):
    /// `ADD COLUMN ... DEFAULT` rewrites the whole table.
    Volatile,
}

/// An expression as SQL text, with its volatility.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expr {
    /// The expression as written (normalised by sqlparser's printer).
    pub sql: String,
    /// How PostgreSQL would evaluate it.
    pub volatility: Volatility,
}

/// `ON DELETE` / `ON UPDATE` action of a foreign key — as written in a migration and as read
/// from a catalog (`topology::catalog` uses this type too).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FkAction {
    /// `NO ACTION` (the default).
    #[default]
    NoAction,
    /// `RESTRICT`.
    Restrict,
    /// `CASCADE`.
    Cascade,
    /// `SET NULL`.
    SetNull,
    /// `SET DEFAULT`.
    SetDefault,
}

impl FkAction {
    /// The action for a `pg_constraint.confdeltype` / `confupdtype` code (`a`, `r`, `c`, `n`,
    /// `d`); anything else is [`FkAction::NoAction`].
    pub fn from_code(c: &str) -> FkAction {
        match c {
            "r" => FkAction::Restrict,
            "c" => FkAction::Cascade,
            "n" => FkAction::SetNull,
            "d" => FkAction::SetDefault,
            _ => FkAction::NoAction,
        }
    }
}

impl std::fmt::Display for FkAction {
    /// The SQL words: `NO ACTION`, `CASCADE`, ...
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        })
    }
}

/// The class of a constraint without its details: what a catalog records
/// (`pg_constraint.contype`), and [`ConstraintKind::constraint_type`] of a constraint as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintType {
    /// `p`.
    PrimaryKey,
    /// `u`.
    Unique,
    /// `f`.
    ForeignKey,
    /// `c`.
    Check,
    /// `x`.
    Exclusion,
    /// `t` (constraint trigger; never written as a table constraint).
    Trigger,
}

/// The kind of a table constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConstraintKind {
    /// `PRIMARY KEY (cols)` or `PRIMARY KEY USING INDEX idx`.
    PrimaryKey {
        /// Key columns (empty when `using_index` is set).
        columns: Vec<String>,
        /// `USING INDEX name`.
        using_index: Option<String>,
    },
    /// `UNIQUE (cols)` or `UNIQUE USING INDEX idx`.
    Unique {
        /// Key columns (empty when `using_index` is set).
        columns: Vec<String>,
        /// `USING INDEX name`.
        using_index: Option<String>,
        /// `NULLS NOT DISTINCT` (PG 15+).
        nulls_not_distinct: bool,
    },
    /// `FOREIGN KEY (cols) REFERENCES t (cols)`.
    ForeignKey {
        /// Referencing columns.
        columns: Vec<String>,
        /// Referenced table.
        ref_table: QualifiedName,
        /// Referenced columns (empty = the referenced table's primary key).
        ref_columns: Vec<String>,
        /// `ON DELETE` action.
        on_delete: FkAction,
        /// `ON UPDATE` action.
        on_update: FkAction,
        /// `MATCH FULL`: a row with some but not all key columns NULL is a violation (the
        /// default, `MATCH SIMPLE`, skips any row with a NULL key column).
        match_full: bool,
    },
    /// `CHECK (expr)`.
    Check {
        /// The check expression.
        expr: String,
    },
    /// `EXCLUDE USING method (...)`.
    Exclusion {
        /// The constraint body as SQL.
        sql: String,
    },
}

impl ConstraintKind {
    /// The class of this constraint, as a catalog records it.
    pub fn constraint_type(&self) -> ConstraintType {
        match self {
            ConstraintKind::PrimaryKey { .. } => ConstraintType::PrimaryKey,
            ConstraintKind::Unique { .. } => ConstraintType::Unique,
            ConstraintKind::ForeignKey { .. } => ConstraintType::ForeignKey,
            ConstraintKind::Check { .. } => ConstraintType::Check,
            ConstraintKind::Exclusion { .. } => ConstraintType::Exclusion,
        }
    }
}

/// A table constraint as written in `CREATE TABLE` or `ALTER TABLE ... ADD CONSTRAINT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintDef {
    /// The constraint name, if given.
    pub name: Option<String>,
    /// What it constrains.
    pub kind: ConstraintKind,
    /// `NOT VALID`: existing rows are not checked (FK and CHECK only).
    pub not_valid: bool,
}

/// A column definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name.
    pub name: String,
    /// Data type as SQL text, lower-cased (`bigint`, `varchar(20)`, `timestamp with time zone`).
    pub data_type: String,
    /// `NOT NULL` (also implied by `PRIMARY KEY`).
    pub not_null: bool,
    /// `DEFAULT expr`.
    pub default: Option<Expr>,
    /// `PRIMARY KEY` on the column.
    pub primary_key: bool,
    /// `UNIQUE` on the column.
    pub unique: bool,
    /// `REFERENCES t (c)` on the column.
    pub references: Option<ConstraintKind>,
    /// `CHECK (expr)` on the column.
    pub check: Option<String>,
    /// `serial`, `bigserial`, `smallserial` pseudo-type.
    pub serial: bool,
    /// `GENERATED ... AS IDENTITY`.
    pub identity: bool,
    /// `GENERATED ALWAYS AS (expr) STORED`: computed for every row, so a rewrite.
    pub generated_stored: bool,
    /// `COLLATE name`.
    pub collation: Option<String>,
}

/// Transaction control statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxControl {
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`.
    Savepoint,
}

/// A typed operation. One statement yields zero or more operations (a multi-action
/// `ALTER TABLE` yields one per action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Operation {
    /// `CREATE TABLE`.
    CreateTable {
        /// The new table.
        table: QualifiedName,
        /// Its columns.
        columns: Vec<ColumnDef>,
        /// Table constraints.
        constraints: Vec<ConstraintDef>,
        /// `PARTITION OF parent`.
        partition_of: Option<QualifiedName>,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// `CREATE TABLE ... AS SELECT` (data copy).
        as_select: bool,
    },
    /// `DROP TABLE`.
    DropTable {
        /// One operation per table named.
        table: QualifiedName,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `ALTER TABLE t RENAME TO n`.
    RenameTable {
        /// Old name.
        table: QualifiedName,
        /// New name (unqualified).
        new_name: String,
    },
    /// `ALTER TABLE t ADD COLUMN`.
    AddColumn {
        /// Table.
        table: QualifiedName,
        /// The column.
        column: ColumnDef,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `ALTER TABLE t DROP COLUMN`.
    DropColumn {
        /// Table.
        table: QualifiedName,
        /// Column.
        column: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `ALTER TABLE t RENAME COLUMN c TO n`.
    RenameColumn {
        /// Table.
        table: QualifiedName,
        /// Old column name.
        column: String,
        /// New column name.
        new_name: String,
    },
    /// `ALTER TABLE t ALTER COLUMN c [SET DATA] TYPE ty [COLLATE x] [USING expr]`.
    AlterColumnType {
        /// Table.
        table: QualifiedName,
        /// Column.
        column: String,
        /// New type, lower-cased SQL.
        new_type: String,
        /// `COLLATE name`.
        collation: Option<String>,
        /// `USING expr`.
        using: Option<String>,
    },
    /// `ALTER COLUMN c SET NOT NULL`.
    SetNotNull {
        /// Table.
        table: QualifiedName,
        /// Column.
        column: String,
    },
    /// `ALTER COLUMN c DROP NOT NULL`.
    DropNotNull {
        /// Table.
        table: QualifiedName,
        /// Column.
        column: String,
    },
    /// `ALTER COLUMN c SET DEFAULT expr`.
    SetDefault {
        /// Table.
        table: QualifiedName,
        /// Column.
        column: String,
        /// The default.
        default: Expr,
    },
    /// `ALTER COLUMN c DROP DEFAULT`.
    DropDefault {
        /// Table.
        table: QualifiedName,
        /// Column.
        column: String,
    },
    /// `ALTER TABLE t ADD [CONSTRAINT n] ...`.
    AddConstraint {
        /// Table.
        table: QualifiedName,
        /// The constraint.
        constraint: ConstraintDef,
    },
    /// `ALTER TABLE t VALIDATE CONSTRAINT n`.
    ValidateConstraint {
        /// Table.
        table: QualifiedName,
        /// Constraint name.
        name: String,
    },
    /// `ALTER TABLE t DROP CONSTRAINT n`.
    DropConstraint {
        /// Table.
        table: QualifiedName,
        /// Constraint name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `ALTER TABLE t RENAME CONSTRAINT a TO b`.
    RenameConstraint {
        /// Table.
        table: QualifiedName,
        /// Old name.
        name: String,
        /// New name.
        new_name: String,
    },
    /// `CREATE [UNIQUE] INDEX [CONCURRENTLY] ...`.
    CreateIndex {
        /// Index name, if given.
        name: Option<String>,
        /// Indexed table.
        table: QualifiedName,
        /// Key columns or expressions as SQL.
        columns: Vec<String>,
        /// `UNIQUE`.
        unique: bool,
        /// `CONCURRENTLY`.
        concurrently: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
        /// `USING method`.
        method: Option<String>,
        /// `WHERE predicate`.
        predicate: Option<String>,
        /// `ON ONLY` (partitioned parent only).
        only: bool,
        /// Some key names an operator class (`code text_pattern_ops`): its equality may not be
        /// the type's default one.
        opclass: bool,
    },
    /// `DROP INDEX [CONCURRENTLY]`.
    DropIndex {
        /// One operation per index named.
        name: QualifiedName,
        /// `CONCURRENTLY`.
        concurrently: bool,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `ALTER INDEX a RENAME TO b`.
    RenameIndex {
        /// Old name.
        name: QualifiedName,
        /// New name.
        new_name: String,
    },
    /// `REINDEX [ (opts) ] {INDEX|TABLE|SCHEMA|DATABASE} [CONCURRENTLY] name`.
    Reindex {
        /// What is reindexed.
        target_kind: ReindexTarget,
        /// Its name.
        name: QualifiedName,
        /// `CONCURRENTLY`.
        concurrently: bool,
    },
    /// `CREATE TYPE t AS ENUM (...)`.
    CreateEnum {
        /// Type name.
        name: QualifiedName,
        /// Labels.
        values: Vec<String>,
    },
    /// `ALTER TYPE t ADD VALUE [IF NOT EXISTS] 'v' [BEFORE|AFTER 'x']`.
    AddEnumValue {
        /// Type name.
        name: QualifiedName,
        /// The new label.
        value: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `ALTER TYPE t RENAME VALUE 'a' TO 'b'`.
    RenameEnumValue {
        /// Type name.
        name: QualifiedName,
        /// Old label.
        value: String,
        /// New label.
        new_value: String,
    },
    /// `DROP TYPE`.
    DropType {
        /// Type name.
        name: QualifiedName,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `TRUNCATE`.
    Truncate {
        /// Tables truncated.
        tables: Vec<QualifiedName>,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `CREATE SCHEMA`.
    CreateSchema {
        /// Schema name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `DROP SCHEMA`.
    DropSchema {
        /// One operation per schema named.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `DROP DATABASE`.
    DropDatabase {
        /// Database name.
        name: String,
        /// `WITH (FORCE)` (PostgreSQL 13+): terminates every session connected to it first.
        force: bool,
    },
    /// `UPDATE t SET ... [WHERE ...]`.
    Update {
        /// Table.
        table: QualifiedName,
        /// A WHERE clause is present.
        has_where: bool,
        /// Columns assigned.
        columns: Vec<String>,
        /// The rows it touches, as SQL, when it has a WHERE clause.
        filter: Option<crate::row_filter::RowFilter>,
    },
    /// `DELETE FROM t [WHERE ...]`.
    Delete {
        /// Table.
        table: QualifiedName,
        /// A WHERE clause is present.
        has_where: bool,
        /// The rows it touches, as SQL, when it has a WHERE clause.
        filter: Option<crate::row_filter::RowFilter>,
    },
    /// `INSERT INTO t ...`.
    Insert {
        /// Table.
        table: QualifiedName,
        /// `INSERT ... SELECT` (copies rows) rather than `VALUES`.
        from_select: bool,
    },
    /// `CREATE MATERIALIZED VIEW` / `CREATE VIEW`.
    CreateView {
        /// View name.
        name: QualifiedName,
        /// Materialized.
        materialized: bool,
        /// `OR REPLACE`.
        or_replace: bool,
        /// The column names given after the view name (empty: the query's own names).
        columns: Vec<String>,
        /// The relations the view's query reads (tables, views, sequences; CTE names
        /// excluded), in order of first mention, each once.
        depends_on: Vec<QualifiedName>,
    },
    /// `DROP VIEW` / `DROP MATERIALIZED VIEW`.
    DropView {
        /// View name.
        name: QualifiedName,
        /// Materialized.
        materialized: bool,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`: dependent views (and other objects) are dropped too.
        cascade: bool,
    },
    /// `REFRESH MATERIALIZED VIEW [CONCURRENTLY]`.
    RefreshMaterializedView {
        /// View name.
        name: QualifiedName,
        /// `CONCURRENTLY`.
        concurrently: bool,
    },
    /// `LOCK TABLE t IN mode MODE`.
    LockTable {
        /// Tables locked.
        tables: Vec<QualifiedName>,
        /// The lock mode requested.
        mode: crate::LockMode,
    },
    /// `VACUUM [FULL]`, `ANALYZE`, `CLUSTER`: maintenance that may rewrite.
    Maintenance {
        /// Which command.
        command: MaintenanceCommand,
        /// Tables named (empty = whole database).
        tables: Vec<QualifiedName>,
    },
    /// `ALTER TABLE t SET LOGGED|UNLOGGED|TABLESPACE|SCHEMA`, `SET (storage params)`,
    /// `ALTER COLUMN c SET STATISTICS|STORAGE`, `REPLICA IDENTITY`, `ENABLE/DISABLE TRIGGER|RLS`:
    /// the `ALTER TABLE` actions without an operation of their own.
    AlterTableOther {
        /// Table.
        table: QualifiedName,
        /// The action.
        action: AlterTableAction,
    },
    /// `ALTER TABLE parent ATTACH PARTITION child ...`.
    AttachPartition {
        /// Parent table.
        table: QualifiedName,
        /// Partition attached.
        partition: QualifiedName,
    },
    /// `ALTER TABLE parent DETACH PARTITION child [CONCURRENTLY]`.
    DetachPartition {
        /// Parent table.
        table: QualifiedName,
        /// Partition detached.
        partition: QualifiedName,
        /// `CONCURRENTLY` (PG 14+).
        concurrently: bool,
    },
    /// `SET [LOCAL|SESSION] name = value`.
    Set {
        /// Setting name, lower-cased.
        name: String,
        /// Value as written (quotes stripped).
        value: String,
        /// `SET LOCAL`.
        local: bool,
    },
    /// `RESET name`.
    Reset {
        /// Setting name (`all` for RESET ALL).
        name: String,
    },
    /// BEGIN / COMMIT / ROLLBACK / SAVEPOINT.
    Transaction(TxControl),
    /// `DO $$ ... $$`: procedural code, opaque.
    Do {
        /// The body.
        body: String,
    },
    /// `CREATE SEQUENCE`.
    CreateSequence {
        /// Sequence name.
        name: QualifiedName,
    },
    /// `CREATE EXTENSION`.
    CreateExtension {
        /// Extension name.
        name: String,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    CreateFunction {
        /// Function name.
        name: QualifiedName,
        /// The types of its identity arguments (`IN`, `INOUT`, `VARIADIC`; not `OUT`),
        /// lower-cased SQL, as `DROP FUNCTION name(args)` names them.
        args: Vec<String>,
        /// `OR REPLACE`.
        or_replace: bool,
        /// `PROCEDURE` rather than `FUNCTION`.
        procedure: bool,
    },
    /// `CREATE TRIGGER name ... ON table`.
    CreateTrigger {
        /// Trigger name.
        name: String,
        /// Table.
        table: QualifiedName,
    },
    /// `COMMENT ON ...`.
    Comment {
        /// Object kind (`table`, `column`, `index`, ...).
        object_kind: String,
        /// Object name as written (`t`, `t.c`).
        object: String,
        /// The new comment, `None` for `IS NULL`.
        text: Option<String>,
    },
    /// `CREATE DATABASE` (cannot run inside a transaction block).
    CreateDatabase {
        /// Database name.
        name: String,
    },
    /// `ALTER INDEX parent_idx ATTACH PARTITION child_idx` (partitioned indexes).
    AttachIndexPartition {
        /// The partitioned (parent) index.
        index: QualifiedName,
        /// The partition's index attached to it.
        partition: QualifiedName,
    },
    /// `ALTER SYSTEM SET|RESET ...` (cannot run inside a transaction block).
    AlterSystem {
        /// The setting changed, lower-cased (`all` for `RESET ALL`).
        name: String,
    },
    /// `DROP FUNCTION|PROCEDURE`: one operation per routine named.
    DropFunction {
        /// Function name.
        name: QualifiedName,
        /// The argument types given (`DROP FUNCTION f(int, text)`), lower-cased SQL; `None`
        /// when no list was written (the name must then be unique).
        args: Option<Vec<String>>,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
        /// `PROCEDURE` rather than `FUNCTION`.
        procedure: bool,
    },
    /// `DROP TRIGGER name ON table`.
    DropTrigger {
        /// Trigger name.
        name: String,
        /// The table (PostgreSQL requires it; `None` only for input PostgreSQL rejects).
        table: Option<QualifiedName>,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `CREATE TYPE` other than an enum (composite, range, base, shell).
    CreateType {
        /// Type name.
        name: QualifiedName,
        /// What it defines.
        representation: TypeRepresentation,
    },
    /// `ALTER TYPE t RENAME TO n`.
    RenameType {
        /// Old name.
        name: QualifiedName,
        /// New name (unqualified).
        new_name: String,
    },
    /// `CREATE DOMAIN d [AS] type [COLLATE c] [DEFAULT e] [constraints]`.
    CreateDomain {
        /// Domain name.
        name: QualifiedName,
        /// Base type, lower-cased SQL.
        data_type: String,
        /// `DEFAULT expr`.
        default: Option<Expr>,
        /// `NOT NULL` among the constraints.
        not_null: bool,
        /// The `CHECK` expressions, in order.
        checks: Vec<String>,
    },
    /// `DROP DOMAIN`: one operation per domain named.
    DropDomain {
        /// Domain name.
        name: QualifiedName,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `ALTER [MATERIALIZED] VIEW v RENAME TO n`.
    RenameView {
        /// Old name.
        name: QualifiedName,
        /// New name (unqualified).
        new_name: String,
        /// Materialized.
        materialized: bool,
    },
    /// `DROP SEQUENCE`: one operation per sequence named.
    DropSequence {
        /// Sequence name.
        name: QualifiedName,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// `ALTER SEQUENCE s RENAME TO t`.
    RenameSequence {
        /// Sequence name.
        name: QualifiedName,
        /// The new name (same schema).
        new_name: String,
    },
    /// `ALTER SEQUENCE s [options] [OWNED BY t.c | NONE]`.
    AlterSequence {
        /// Sequence name.
        name: QualifiedName,
        /// What happens to the owning column.
        owned_by: SequenceOwnedBy,
    },
    /// `DROP EXTENSION`: one operation per extension named.
    DropExtension {
        /// Extension name.
        name: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// `CASCADE`.
        cascade: bool,
    },
    /// Anything else that parsed: GRANT, CREATE POLICY, ALTER DOMAIN, ...
    Other {
        /// A short description, e.g. `GRANT`, `CREATE POLICY`.
        description: String,
    },
}

/// What a statement is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StatementKind {
    /// Understood (by sqlparser, or from tokens for the forms sqlparser rejects); operations are
    /// in [`Statement::operations`] (never empty).
    Parsed,
    /// Nothing understood it: neither sqlparser nor the token-level recognisers (statements
    /// recognised from tokens, e.g. `DROP INDEX CONCURRENTLY` or `DO`, are [`StatementKind::Parsed`]
    /// with their operations). Operations is empty.
    Unparsed {
        /// sqlparser's error message, or, for a statement over the size the parser analyses,
        /// a message starting with [`StatementKind::TOO_LARGE`].
        error: String,
        /// Line of the error inside the file (1-based), when sqlparser gave one.
        line: u32,
        /// Column of the error inside the file (1-based).
        column: u32,
    },
}

impl StatementKind {
    /// How the error of an [`StatementKind::Unparsed`] statement starts when the statement was
    /// not analysed because of its size (more than half a million tokens: their memory alone
    /// would be a hundred times the statement's).
    pub const TOO_LARGE: &'static str = "too large to analyse";

    /// Whether this is a statement left unanalysed because of its size.
    pub fn is_too_large(&self) -> bool {
        matches!(self, StatementKind::Unparsed { error, .. } if error.starts_with(Self::TOO_LARGE))
    }
}

/// Session settings in effect when a statement runs, tracked through SET / SET LOCAL / RESET
/// and transaction ends.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionSettings {
    /// `lock_timeout` in milliseconds, if set to a non-zero value.
    pub lock_timeout_ms: Option<u64>,
    /// `statement_timeout` in milliseconds, if set to a non-zero value.
    pub statement_timeout_ms: Option<u64>,
    /// `search_path`, if set.
    pub search_path: Option<Vec<String>>,
    /// `TimeZone`, if set (`SET TIME ZONE 'UTC'`, `SET timezone = 'UTC'`), as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

impl SessionSettings {
    /// The session `TimeZone` is known to have a fixed zero offset (`UTC`, `Etc/UTC`, `GMT`,
    /// `Zulu`, `+00:00`, …): PostgreSQL 12+ then converts `timestamp` ↔ `timestamptz` without a
    /// rewrite. A zone with daylight saving time (`Europe/London`) or an unset one is not.
    pub fn timezone_is_utc(&self) -> bool {
        self.timezone.as_deref().is_some_and(|z| {
            let z = z.trim().trim_matches('\'').to_ascii_lowercase();
            let z = z.strip_prefix("etc/").unwrap_or(&z);
            matches!(
                z,
                "utc"
                    | "uct"
                    | "gmt"
                    | "zulu"
                    | "universal"
                    | "greenwich"
                    | "z"
                    | "0"
                    | "+0"
                    | "-0"
                    | "+00"
                    | "-00"
                    | "+00:00"
                    | "-00:00"
                    | "00:00"
                    | "gmt0"
                    | "utc0"
            )
        })
    }
}

/// Where a statement runs, transaction-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxContext {
    /// Identifier of the transaction the statement runs in. Statements that autocommit get a
    /// transaction of their own. BEGIN/COMMIT statements carry the id of the block they open/close.
    pub transaction: usize,
    /// The statement runs inside a multi-statement transaction (explicit BEGIN block, or the
    /// whole file under [`TransactionMode::WrapFile`]); `CONCURRENTLY` fails there.
    pub in_block: bool,
}

/// One SQL statement of a migration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// 0-based position in the file.
    pub index: usize,
    /// Where it is.
    pub span: Span,
    /// The statement text exactly as in the file (without the trailing `;` and surrounding
    /// whitespace/comments).
    pub sql: String,
    /// Parsed or not.
    pub kind: StatementKind,
    /// The typed operations.
    pub operations: Vec<Operation>,
    /// Transaction placement.
    pub tx: TxContext,
    /// Session settings in effect when this statement starts.
    pub settings: SessionSettings,
    /// Rule names (or codes) silenced for this statement by `-- deployclaw:ignore RULE[, RULE]`
    /// comments on the line(s) directly before it or at the end of its first line. `all` silences all.
    pub ignored_rules: Vec<String>,
}

/// A parsed migration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// The file name as given by the caller (`-` for stdin), for messages.
    pub file: String,
    /// The full source text.
    pub source: String,
    /// Statements in file order.
    pub statements: Vec<Statement>,
    /// The options it was parsed with.
    pub options: ParseOptions,
    /// Rules silenced for the whole file by `-- deployclaw:ignore-file RULE`.
    pub file_ignored_rules: Vec<String>,
}
