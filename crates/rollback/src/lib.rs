//! # rollback
//!
//! Generates the inverse of a PostgreSQL schema migration and *proves* a rollback — generated or
//! hand-written — by running forward → rollback on a shadow database and comparing the catalog
//! with the one before. A gate that says "rollback tested" has run the rollback and seen the
//! schema come back.
//!
//! ## Generating
//!
//! [`generate`] takes the parsed [`Migration`](migration_parser::Migration) and the
//! pre-migration catalog of the shard's schema (a [`topology::catalog::Catalog`], from the one
//! introspection `topology::catalog::introspect_schema_conn`, or [`Shadow::catalog_of`] a
//! setup) and returns a [`Rollback`]: the inverse statements in reverse order, each tagged with the source
//! statement it undoes and a [`Reversibility`], plus the [`Irreversible`] steps (data that a
//! script cannot bring back: dropped columns and tables, `TRUNCATE`, data changes, enum values,
//! procedural code) and the [`NoOp`]s (`SET`, `BEGIN`, `ANALYZE`, ...). Nothing is skipped
//! silently: every source statement appears in at least one of the three lists.
//!
//! | forward | inverse | reversible |
//! |---|---|---|
//! | `ADD COLUMN c` | `DROP COLUMN c` | yes |
//! | `DROP COLUMN c` | `ADD COLUMN c type [DEFAULT] [NOT NULL]` + its constraints, indexes, comment, owned sequence | structure only: `rollback-irreversible` (values lost) |
//! | `CREATE INDEX [CONCURRENTLY] i` (name chosen by PostgreSQL's rules if omitted) | `DROP INDEX CONCURRENTLY i` (outside a transaction) | yes |
//! | `DROP INDEX i` | `pg_get_indexdef` with `CONCURRENTLY` | yes |
//! | `ADD CONSTRAINT` (name explicit or PostgreSQL's default `t_pkey`, `t_c_key`, `t_c_fkey`, `t_c_check`/`t_check`, `t_c_excl`, with the `1, 2, …` suffix on clashes and 63-byte truncation) | `DROP CONSTRAINT` (+ recreate the index a `USING INDEX` took over) | yes |
//! | `DROP CONSTRAINT` | FK/CHECK: `ADD … NOT VALID`, `VALIDATE CONSTRAINT` at the end in its own transaction; PK/UNIQUE: `CREATE UNIQUE INDEX CONCURRENTLY` + `ADD … USING INDEX` | yes |
//! | `VALIDATE CONSTRAINT` of a pre-existing `NOT VALID` one | drop and re-add `NOT VALID` | yes |
//! | `SET NOT NULL` / `DROP NOT NULL` | the opposite | yes (`SET NOT NULL` may fail on new NULLs) |
//! | `SET DEFAULT` / `DROP DEFAULT` | the old default from the catalog, or `DROP DEFAULT` | yes |
//! | `ALTER COLUMN TYPE` | back to the old type (default dropped and restored around it) `USING` the forward mapping turned around when the forward `USING` is a literal `CASE` or `col = 'label'` (`CASE WHEN c::text = 'label' THEN 'old'::old … END`), else `c::text::old` from or to an enum, else `c::old` | flagged: may fail (`bigint`→`integer` overflow) or lose data (`varchar(n)` truncation, numeric rounding, several values mapped to one) |
//! | `RENAME` table / view / column / index / constraint / type, `RENAME VALUE` | rename back | yes |
//! | `CREATE TABLE` / `VIEW` / `SEQUENCE` / `TYPE` / `SCHEMA` / `FUNCTION` / `TRIGGER` / `EXTENSION` / `DOMAIN` / `POLICY` | `DROP …` (`CREATE OR REPLACE` of an existing function or view: the old definition) | yes |
//! | `DROP TABLE` | the structure from the catalog (columns, defaults, identity, constraints, indexes, comments, triggers, owned sequences, CASCADE-dropped foreign keys) | structure only: rows lost |
//! | `DROP VIEW` / `FUNCTION` / `TRIGGER` / `SEQUENCE` / `TYPE` / `DOMAIN` / `EXTENSION` | recreate from the catalog | yes (sequence position lost) |
//! | `DROP … CASCADE` of a view / table / column / function / type, `CREATE OR REPLACE VIEW` | the views of the shard that read the object (found in their definitions), recreated at the end of the rollback in dependency order with their indexes and comments | yes |
//! | the drop of a view / function / trigger / sequence / type created earlier in the same migration | that object's own `CREATE` statement | yes |
//! | `ALTER SEQUENCE` | the old parameters and owner | structure only: a `RESTART` position is not restored |
//! | `ALTER TYPE … ADD VALUE` | none: PostgreSQL cannot drop an enum value | irreversible |
//! | `COMMENT ON` | the old comment (or `IS NULL`) | yes |
//! | `UPDATE` / `DELETE` / `INSERT` / `TRUNCATE` | none (no-op when the table is created by the same migration) | irreversible |
//! | `DO`, function-calling `SELECT`, unparsed statements, `GRANT`/`REVOKE`, other `ALTER TABLE` actions | none | irreversible |
//! | `SET`, `RESET`, `BEGIN`/`COMMIT`, `ANALYZE`, `VACUUM`, `REINDEX`, `LOCK`, `REFRESH` | nothing to undo | no-op |
//!
//! Each family of operations has its inversions in one module of `src/invert/` (tables,
//! columns, constraints, indexes, types, views, functions, sequences, schemas, data, comments,
//! session statements) behind a small trait, and one registry maps every operation to its
//! family; `tests/fixtures/invert/<family>.sql` holds a database-free fixture per family (a
//! pre-migration schema read with [`catalog_after`], the migration, a snapshot of the rollback).
//! [`inversion_family`] names the family of an operation.
//!
//! The script starts with `SET lock_timeout = '5s'`, groups transactional statements in
//! `BEGIN`/`COMMIT`, runs `CONCURRENTLY` statements and constraint validations outside them, and
//! quotes every identifier that needs it. Unqualified names stay unqualified, so the same script
//! runs in every tenant schema under its `search_path`.
//!
//! ## Proving
//!
//! [`prove`] creates a scratch database on a [`Shadow`] (an ephemeral PostgreSQL it starts, or a
//! server URL) and loads the pre-migration structure ([`Setup::Sql`], e.g. `pg_dump --schema-only`
//! output, or [`Setup::Catalog`]: a shard's introspected catalog recreated statement by
//! statement) faithfully: the shard's extensions first when the server has them (the missing
//! ones are named in [`Proof::missing_extensions`]), a dump's `CREATE SCHEMA public` kept as the
//! database's own `public`, materialized views populated. It takes catalog C0, copies the
//! database (`CREATE DATABASE … TEMPLATE`), and proves in two phases. **Structure**: on the
//! empty tables, runs the migration statement by statement with its transaction structure
//! (`CONCURRENTLY` outside transactions), runs the rollback, takes C2 and reports every
//! difference as a [`Mismatch`]. **Data** ([`Proof::data`]): on the copy, seeds a few rows per
//! table (or loads [`ProveOptions::sample_data`]), refreshes the materialized views, and does
//! the same round trip, reporting every column whose values did not survive as a
//! [`ColumnLoss`]; when the rows cannot be loaded or make the forward fail, the structural
//! proof still counts. [`Proof::outcome`] is the one judgement: [`ProofOutcome::Proven`]
//! (structure, and data when it ran), [`ProofOutcome::Mismatch`] (every difference, by phase:
//! the gate's `rollback-mismatch`, red, for a rollback the user supplied; `rollback-unproven`,
//! yellow, for a generated one: a wrong generated rollback is deployclaw's failure, not the
//! migration's), [`ProofOutcome::NotProven`] (the setup did not load, the forward failed on
//! the empty structure: why). Failures carry their SQLSTATE. Every scratch database is dropped.
//! [`prove_history`] does the same for a whole directory of up/down pairs ([`discover`] detects
//! Diesel, sqlx, golang-migrate and dbmate layouts), checking both the project's own down scripts
//! and the generated rollback of every up.
//!
//! A mismatch or an irreversible step is an outcome, never an `Err`; [`RollbackError`] is for
//! when the prover itself cannot work (no shadow, unreadable files).
//!
//! ```no_run
//! use migration_parser::{ParseOptions, parse};
//! use rollback::{Options, ProveOptions, RollbackSource, Setup, Shadow, generate, prove};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let setup = "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);";
//! let migration = parse("v42.sql", "ALTER TABLE users ADD COLUMN bio text;", &ParseOptions::default())?;
//! let shadow = Shadow::ephemeral().await?;
//! let before = shadow.catalog_of(Setup::Sql(setup), "public").await?;
//! let rollback = generate(&migration, &before, &Options::default());
//! println!("{}", rollback.script);
//! let proof = prove(&shadow, Setup::Sql(setup), &migration, RollbackSource::Generated(&rollback),
//!                   &ProveOptions::default()).await?;
//! assert!(proof.tested && proof.restored);
//! # Ok(())
//! # }
//! ```
//!
//! ## Catalog comparison
//!
//! The proof compares with topology's one differ in its exact mode
//! (`topology::catalog::diff_catalogs(.., DiffMode::Exact)`, turned into [`Mismatch`]es by
//! [`mismatches`]): tables (kind, persistence, partitioning, row security, storage parameters,
//! comment), columns (type, nullability, default, collation, identity, generation, comment,
//! order), constraints (definition, validated, comment), indexes (definition, validity,
//! comment), triggers, sequences (parameters, owner, comment), views and materialized views,
//! enum/domain/composite types, functions, procedures and aggregates, extensions and schemas.
//! Not compared: privileges, ownership, policies, rules, statistics targets, sequence
//! positions. A column-order-only difference (a dropped column re-added lands last; PostgreSQL
//! cannot reorder columns) is reported with [`Mismatch::column_order_only`] and does not count
//! against [`Proof::restored`].

mod catalog;
mod clone;
mod error;
mod exec;
mod generate;
mod generator;
mod invert;
mod layout;
pub mod names;
mod prove;
mod sample;

// The generator's working state (built from a topology catalog, or database-free by
// `catalog_after`), public for the database-free inversion fixtures.
pub use catalog::{
    CatalogSnapshot, ColumnSnap, ConstraintSnap, FunctionSnap, IndexSnap, Mismatch, SequenceSnap,
    TableSnap, TypeSnap, ViewSnap, mismatches,
};
pub use error::RollbackError;
pub use exec::{SqlFailure, execute_migration, execute_rollback, execute_steps};
pub use generate::{PreMigrationCatalog, catalog_after, generate};
pub use layout::{Layout, MigrationPair, discover};
pub use prove::{
    ColumnLoss, DataPhase, HistoryEntry, HistoryOptions, HistoryReport, Proof, ProofOutcome,
    ProveOptions, RollbackSource, Setup, Shadow, prove, prove_history,
};
pub use sample::{ColumnFallback, SeedReport, ValueHints, seed_rows};

use serde::{Deserialize, Serialize};

/// Options for [`generate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// `lock_timeout` set at the top of the script; `None` leaves it out.
    pub lock_timeout: Option<String>,
    /// Build and drop indexes `CONCURRENTLY` (outside transactions) where PostgreSQL allows it.
    pub concurrently: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_timeout: Some("5s".into()),
            concurrently: true,
        }
    }
}

/// How completely a rollback statement undoes its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reversibility {
    /// Restores exactly what was there.
    Exact,
    /// Restores the structure; the data it held is gone (see [`Rollback::irreversible`]).
    DataLoss,
    /// Restores the structure but may silently change values (truncation, rounding).
    MayLoseData,
    /// Correct, but fails on data written after the migration (e.g. overflow, new NULLs).
    MayFail,
}

/// Where a rollback statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Inside a `BEGIN`/`COMMIT` group with its neighbours.
    Transaction,
    /// Alone, outside any transaction (`CONCURRENTLY`).
    NoTransaction,
    /// In a transaction of its own after everything else (`VALIDATE CONSTRAINT`).
    OwnTransaction,
}

/// One statement of a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackStatement {
    /// The SQL, without a trailing `;`.
    pub sql: String,
    /// Index of the migration statement it undoes.
    pub source_statement: usize,
    /// Line of that statement.
    pub line: u32,
    /// How complete the undo is.
    pub reversible: Reversibility,
    /// Why it is not [`Reversibility::Exact`], or what it is for.
    pub note: Option<String>,
    /// Transaction placement.
    pub placement: Placement,
}

/// A migration statement a rollback cannot fully undo (`rollback-irreversible`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Irreversible {
    /// Index of the statement.
    pub statement: usize,
    /// Its line.
    pub line: u32,
    /// Its column.
    pub column: u32,
    /// Its first line of SQL.
    pub sql: String,
    /// Why.
    pub reason: String,
}

/// A migration statement with nothing to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoOp {
    /// Index of the statement.
    pub statement: usize,
    /// Its line.
    pub line: u32,
    /// Its first line of SQL.
    pub sql: String,
    /// Why there is nothing to undo.
    pub reason: String,
}

/// A generated rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollback {
    /// The script as a person reads and runs it (`psql -f`).
    pub script: String,
    /// The inverse statements in execution order (without the `SET`/`BEGIN`/`COMMIT` framing).
    pub statements: Vec<RollbackStatement>,
    /// Statements that cannot be (fully) undone.
    pub irreversible: Vec<Irreversible>,
    /// Statements with nothing to undo.
    pub no_ops: Vec<NoOp>,
    /// The script as single statements to send one by one (with the framing).
    pub steps: Vec<String>,
}

impl Rollback {
    /// True when every statement is undone exactly.
    pub fn is_exact(&self) -> bool {
        self.irreversible.is_empty()
            && self
                .statements
                .iter()
                .all(|s| s.reversible == Reversibility::Exact)
    }
}

pub(crate) fn assemble(
    file: &str,
    statements: Vec<RollbackStatement>,
    irreversible: Vec<Irreversible>,
    no_ops: Vec<NoOp>,
    opts: &Options,
) -> Rollback {
    let mut script = String::new();
    let mut steps: Vec<String> = Vec::new();
    script.push_str(&format!(
        "-- Rollback of {file}, generated by deployclaw (statements in reverse order).\n"
    ));
    if !irreversible.is_empty() {
        script.push_str("--\n-- IRREVERSIBLE (rollback-irreversible):\n");
        for i in &irreversible {
            script.push_str(&format!(
                "--   statement {} (line {}): {}\n--     {}\n",
                i.statement + 1,
                i.line,
                i.sql,
                i.reason
            ));
        }
    }
    if let Some(t) = &opts.lock_timeout {
        let s = format!("SET lock_timeout = {}", names::quote_literal(t));
        script.push_str(&format!("\n{s};\n"));
        steps.push(s);
    }
    let mut in_tx = false;
    let mut last_source: Option<usize> = None;
    for s in &statements {
        let wants_tx = s.placement == Placement::Transaction;
        if in_tx && !wants_tx {
            script.push_str("COMMIT;\n");
            steps.push("COMMIT".into());
            in_tx = false;
        }
        if !in_tx && wants_tx {
            script.push_str("\nBEGIN;\n");
            steps.push("BEGIN".into());
            in_tx = true;
        }
        if !wants_tx {
            script.push('\n');
        }
        if last_source != Some(s.source_statement) || !wants_tx {
            if s.placement == Placement::OwnTransaction {
                script.push_str("-- validate a constraint re-added NOT VALID above\n");
            } else {
                script.push_str(&format!(
                    "-- undo statement {} (line {})\n",
                    s.source_statement + 1,
                    s.line
                ));
            }
            last_source = Some(s.source_statement);
        }
        if s.reversible != Reversibility::Exact
            && let Some(n) = &s.note
        {
            script.push_str(&format!("-- {}: {n}\n", reversibility_label(s.reversible)));
        }
        script.push_str(&s.sql);
        script.push_str(";\n");
        steps.push(s.sql.clone());
    }
    if in_tx {
        script.push_str("COMMIT;\n");
        steps.push("COMMIT".into());
    }
    if statements.is_empty() {
        script.push_str("\n-- nothing to undo\n");
    }
    Rollback {
        script,
        statements,
        irreversible,
        no_ops,
        steps,
    }
}

fn reversibility_label(r: Reversibility) -> &'static str {
    match r {
        Reversibility::Exact => "exact",
        Reversibility::DataLoss => "data loss",
        Reversibility::MayLoseData => "may lose data",
        Reversibility::MayFail => "may fail",
    }
}

/// The family of inversions (`src/invert/<family>.rs`) that undoes operations of `kind`, as
/// the fixtures under `tests/fixtures/invert/` are named; `"unknown"` for a kind the generator
/// does not know yet (such an operation is reported irreversible, never skipped).
pub fn inversion_family(kind: migration_parser::OperationKind) -> &'static str {
    invert::family_of(kind).family()
}
