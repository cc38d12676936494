//! Catalog introspection: what a tenant schema looks like — the one model of a shard's
//! structure, deep enough for an exact round trip (the rollback proof) and cheap enough for a
//! fleet of thousands of tenants (drift, fingerprints).
//!
//! [`introspect_schemas`] reads the catalogs of *all* requested schemas of one database in
//! set-based `pg_catalog` queries — one per object class (schemas, tables, columns,
//! constraints, indexes, sequences, enums, domains and composite types, functions, triggers,
//! extensions; plus one for the column names of referenced tables outside the set) inside one
//! `REPEATABLE READ READ ONLY` transaction — the number of round trips does not grow with the
//! number of tenants. It never uses the `information_schema` constraint views (tens of seconds
//! on large fleets). Objects that belong to an extension are left out.
//!
//! Definitions (`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_viewdef`,
//! `pg_get_triggerdef`, `pg_get_functiondef`, `pg_get_expr`, `format_type`) are read pretty-printed
//! with an empty `search_path`, so every user object in them is schema-qualified
//! (`tenant_0001.accounts`, `shared.plans`) while built-in types stay bare (`integer`, `jsonb`).
//! [`Catalog`] keeps them exactly as PostgreSQL printed them; the differ ([`diff_catalogs`],
//! in both [`DiffMode`]s) strips the catalog's *own* schema qualifier, so identical tenants
//! compare equal while a reference to another schema (`shared.plans`) stays qualified.
//! [`Catalog::unqualified`] gives the same definitions as a copy, for SQL that must run in
//! every tenant schema under its `search_path` (a generated rollback).
//!
//! The model uses `BTreeMap`s keyed by name everywhere, so iteration and serialization are
//! deterministic.

mod diff;
mod difference;
mod fkgraph;
mod introspect;
mod shape;
mod sql;
mod stats;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use diff::{
    CatalogDifference, DiffMode, DriftReport, DriftedShard, ObjectKind, ObjectRef, ShapeGroup,
    detect_drift, diff, diff_catalogs,
};
pub use fkgraph::{CascadeReach, FkEdge, FkGraph, FkReference, fk_graph, fk_graph_of};
pub use introspect::{
    introspect_schema, introspect_schema_conn, introspect_schema_in_transaction,
    introspect_schemas, introspect_schemas_conn,
};
pub use shape::Fingerprint;
pub use stats::{MAX_HINTS_PER_COLUMN, value_hints};

pub use evidence::TableName;

pub use migration_parser::pg_quote::{
    quote_ident as quote_ident_always, quote_ident_minimal as quote_ident,
};

/// One schema's catalog.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// The schema these objects live in.
    pub schema: String,
    /// Tables, partitioned tables, foreign tables, views and materialized views, by name.
    pub tables: BTreeMap<String, Table>,
    /// Sequences (including identity and serial sequences), by name.
    pub sequences: BTreeMap<String, Sequence>,
    /// Enum types, by name.
    pub enums: BTreeMap<String, EnumType>,
    /// Domains, by name.
    #[serde(default)]
    pub domains: BTreeMap<String, Domain>,
    /// Composite types (`CREATE TYPE t AS (...)`), by name.
    #[serde(default)]
    pub composites: BTreeMap<String, CompositeType>,
    /// Functions, procedures and plain aggregates, by `name(identity arguments)` as
    /// `pg_get_function_identity_arguments` prints them.
    #[serde(default)]
    pub functions: BTreeMap<String, Function>,
    /// Extensions installed in the database (name → schema), `plpgsql` left out. Database-wide:
    /// every catalog of one database carries the same map.
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
    /// Non-system schemas of the database. Read only by [`introspect_schema_conn`] (one schema,
    /// an exact round trip); empty in fleet catalogs, where it would repeat thousands of names in
    /// every tenant's catalog.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub schemas: BTreeSet<String>,
}

impl Catalog {
    /// The table (or view) called `name`, if any.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// Every foreign key of this schema as (referencing table, constraint).
    pub fn foreign_keys(&self) -> impl Iterator<Item = (&Table, &Constraint)> {
        self.tables.values().flat_map(|t| {
            t.constraints
                .values()
                .filter(|c| c.foreign_key.is_some())
                .map(move |c| (t, &**c))
        })
    }

    /// Sum of [`Table::total_bytes`] over all tables.
    pub fn total_bytes(&self) -> i64 {
        self.tables.values().map(|t| t.total_bytes).sum()
    }
}

/// What kind of relation a [`Table`] is (`pg_class.relkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// `r`: ordinary table (including a partition).
    Ordinary,
    /// `p`: partitioned table.
    Partitioned,
    /// `f`: foreign table.
    Foreign,
    /// `v`: view.
    View,
    /// `m`: materialized view.
    MaterializedView,
}

impl TableKind {
    pub(crate) fn from_relkind(k: &str) -> TableKind {
        match k {
            "p" => TableKind::Partitioned,
            "f" => TableKind::Foreign,
            "v" => TableKind::View,
            "m" => TableKind::MaterializedView,
            _ => TableKind::Ordinary,
        }
    }
}

/// `pg_class.relpersistence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// `p`: WAL-logged.
    Permanent,
    /// `u`: `UNLOGGED`.
    Unlogged,
    /// `t`: temporary.
    Temporary,
}

/// A table (or view) with its columns, constraints and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// Name within the schema.
    pub name: String,
    /// `pg_class.oid`.
    pub oid: u32,
    /// `pg_class.relfilenode` (changes when the table is rewritten).
    pub relfilenode: u32,
    /// Relation kind.
    pub kind: TableKind,
    /// Persistence.
    pub persistence: Persistence,
    /// `PARTITION BY ...` key (`pg_get_partkeydef`) of a partitioned table.
    pub partition_key: Option<String>,
    /// Parent of a partition.
    pub partition_of: Option<TableName>,
    /// Partition bound (`FOR VALUES ...`) of a partition.
    pub partition_bound: Option<String>,
    /// Definition of a view or materialized view (`pg_get_viewdef`).
    pub view_definition: Option<String>,
    /// Columns by name. The values of the three per-table maps are boxed: a fleet run holds
    /// one catalog per shard, and a B-tree node holds room for 11 values however few there
    /// are — unboxed, ~2 KB per map and table, a third of a small tenant's catalog (peak memory
    /// of a 2,000-shard run 243 → 183 MiB, BENCHMARKS.md).
    pub columns: BTreeMap<String, Box<Column>>,
    /// Constraints by name (primary key, unique, foreign key, check, exclusion).
    pub constraints: BTreeMap<String, Box<Constraint>>,
    /// Indexes by name.
    pub indexes: BTreeMap<String, Box<Index>>,
    /// Heap, indexes and TOAST, bytes: `relpages` × block size of the heap, the indexes and the
    /// TOAST table (as of their last vacuum/analyze or index build; read from `pg_class`, which
    /// takes no lock, so a locked tenant table never blocks the fleet scan — the simulator
    /// measures exact sizes of the tables a migration touches, under `lock_timeout`). Leaves out the small free-space and visibility-map forks. This approximates
    /// `pg_total_relation_size` without opening every index and TOAST relation, which made
    /// introspecting large fleets several times slower (see BENCHMARKS.md).
    pub total_bytes: i64,
    /// `relpages` × block size of the heap (main fork), bytes; 0 for views and partitioned tables.
    pub table_bytes: i64,
    /// `pg_class.reltuples`; `None` when the table was never vacuumed or analyzed.
    pub row_estimate: Option<i64>,
    /// `COMMENT ON TABLE`.
    pub comment: Option<String>,
    /// Triggers (not internal ones such as foreign-key triggers), by name.
    #[serde(default)]
    pub triggers: BTreeMap<String, Trigger>,
    /// `ENABLE ROW LEVEL SECURITY`.
    #[serde(default)]
    pub row_security: bool,
    /// Storage parameters (`reloptions`), comma-separated (`fillfactor=70`).
    #[serde(default)]
    pub options: Option<String>,
}

impl Table {
    /// Columns in table order (`attnum`).
    pub fn columns_in_order(&self) -> Vec<&Column> {
        let mut v: Vec<&Column> = self.columns.values().map(|c| &**c).collect();
        v.sort_by_key(|c| c.position);
        v
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.get(name).map(|c| &**c)
    }

    /// The primary key constraint, if any.
    pub fn primary_key(&self) -> Option<&Constraint> {
        self.constraints
            .values()
            .find(|c| c.kind == ConstraintType::PrimaryKey)
            .map(|c| &**c)
    }
}

/// Identity column kind (`pg_attribute.attidentity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// `GENERATED ALWAYS AS IDENTITY`.
    Always,
    /// `GENERATED BY DEFAULT AS IDENTITY`.
    ByDefault,
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Name.
    pub name: String,
    /// 1-based position among the live columns, in `attnum` order.
    pub position: i32,
    /// Type as `format_type` prints it (`integer`, `character varying(255)`, `tenant_0001.status`).
    pub data_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Default expression (`pg_get_expr`), not set for generated columns.
    pub default: Option<String>,
    /// Collation, when it differs from the type's default.
    pub collation: Option<String>,
    /// Identity column.
    pub identity: Option<Identity>,
    /// Generation expression of a `GENERATED ALWAYS AS (...) STORED` column.
    pub generated: Option<String>,
    /// `COMMENT ON COLUMN`.
    pub comment: Option<String>,
}

/// Kind of constraint: the parser's one fieldless [`ConstraintType`] (`pg_constraint.contype`,
/// read with `constraint_type_from_contype`).
pub use migration_parser::ConstraintType;

/// The constraint type of a `pg_constraint.contype` code.
pub(crate) fn constraint_type_from_contype(t: &str) -> Option<ConstraintType> {
    Some(match t {
        "p" => ConstraintType::PrimaryKey,
        "u" => ConstraintType::Unique,
        "f" => ConstraintType::ForeignKey,
        "c" => ConstraintType::Check,
        "x" => ConstraintType::Exclusion,
        "t" => ConstraintType::Trigger,
        _ => return None,
    })
}

/// Referential action of a foreign key (`confdeltype` / `confupdtype`).
pub use evidence::FkAction;
/// The foreign-key part of a [`Constraint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The referenced table, with its schema (it may be another schema, e.g. `shared`).
    pub references: TableName,
    /// Referenced columns, in key order.
    pub referenced_columns: Vec<String>,
    /// `ON DELETE`.
    pub on_delete: FkAction,
    /// `ON UPDATE`.
    pub on_update: FkAction,
    /// The unique index of the referenced table the key depends on (dropping it needs
    /// `CASCADE`).
    #[serde(default)]
    pub index: Option<String>,
}

/// A table constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ConstraintType,
    /// `pg_get_constraintdef` (e.g. `FOREIGN KEY (account_id) REFERENCES tenant_0001.accounts(id) ON DELETE CASCADE`).
    pub definition: String,
    /// `convalidated` (false after `ADD CONSTRAINT ... NOT VALID` until `VALIDATE CONSTRAINT`).
    pub validated: bool,
    /// `DEFERRABLE`.
    pub deferrable: bool,
    /// `INITIALLY DEFERRED`.
    pub deferred: bool,
    /// Constrained columns, in key order (empty for table-level CHECKs without columns).
    pub columns: Vec<String>,
    /// Set for foreign keys.
    pub foreign_key: Option<ForeignKey>,
    /// Name of the index backing a primary key, unique or exclusion constraint.
    pub index: Option<String>,
    /// `COMMENT ON CONSTRAINT`.
    pub comment: Option<String>,
    /// Inherited from a parent table (a partition's copy), not defined locally.
    #[serde(default)]
    pub inherited: bool,
}

/// An index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Name.
    pub name: String,
    /// `pg_class.oid` of the index.
    pub oid: u32,
    /// `relfilenode` of the index.
    pub relfilenode: u32,
    /// `pg_get_indexdef` (`CREATE UNIQUE INDEX ... ON tenant_0001.users USING btree (email)`).
    pub definition: String,
    /// `indisunique`.
    pub unique: bool,
    /// `indisprimary`.
    pub primary: bool,
    /// `indisvalid` (false after a failed `CREATE INDEX CONCURRENTLY`).
    pub valid: bool,
    /// Key columns in order; an expression column is `(expression)`.
    pub columns: Vec<String>,
    /// Constraint that owns this index (primary key, unique, exclusion), if any.
    pub constraint: Option<String>,
    /// Size of the index, bytes: `relpages` × block size, as of the index's creation or last
    /// vacuum/analyze (an estimate; reading exact sizes opens every index, see BENCHMARKS.md).
    pub bytes: i64,
    /// Every column the index depends on (keys, `INCLUDE` columns, columns in expressions and
    /// in the predicate), sorted: dropping any of them drops the index.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// `COMMENT ON INDEX`.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    /// Name.
    pub name: String,
    /// `smallint`, `integer` or `bigint`.
    pub data_type: String,
    /// `START WITH`.
    pub start: i64,
    /// `INCREMENT BY`.
    pub increment: i64,
    /// `MINVALUE`.
    pub min: i64,
    /// `MAXVALUE`.
    pub max: i64,
    /// `CACHE`.
    pub cache: i64,
    /// `CYCLE`.
    pub cycle: bool,
    /// `OWNED BY` table and column (serial or identity column).
    pub owned_by: Option<(String, String)>,
    /// True for the implicit sequence of an identity column.
    pub identity: bool,
    /// `COMMENT ON SEQUENCE`.
    #[serde(default)]
    pub comment: Option<String>,
}

/// An enum type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    /// Name.
    pub name: String,
    /// Labels in sort order.
    pub labels: Vec<String>,
    /// `COMMENT ON TYPE`.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Name.
    pub name: String,
    /// The clause after `CREATE DOMAIN name`: `AS base [COLLATE c] [DEFAULT e] [NOT NULL]
    /// [CONSTRAINT n CHECK (...)]...`.
    pub definition: String,
    /// `COMMENT ON DOMAIN`.
    pub comment: Option<String>,
}

/// A composite type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompositeType {
    /// Name.
    pub name: String,
    /// The attribute list, `(a integer, b text)`, in attribute order.
    pub definition: String,
    /// `COMMENT ON TYPE`.
    pub comment: Option<String>,
}

/// What kind of routine a [`Function`] is (`pg_proc.prokind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionKind {
    /// `f`: a function.
    Function,
    /// `p`: a procedure.
    Procedure,
    /// `a`: a plain aggregate.
    Aggregate,
}

/// A function, procedure or plain aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// Name (without arguments).
    pub name: String,
    /// Identity arguments (`pg_get_function_identity_arguments`), e.g. `a integer, b text`.
    pub arguments: String,
    /// Kind.
    pub kind: FunctionKind,
    /// The whole `CREATE OR REPLACE FUNCTION ...` statement (`pg_get_functiondef`), or a
    /// `CREATE AGGREGATE ...` statement for an aggregate.
    pub definition: String,
    /// `COMMENT ON FUNCTION`.
    pub comment: Option<String>,
}

impl Function {
    /// The key of the function in [`Catalog::functions`]: `name(identity arguments)`.
    pub fn signature(&self) -> String {
        format!("{}({})", self.name, self.arguments)
    }
}

/// A trigger on a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// Name.
    pub name: String,
    /// `pg_get_triggerdef` (`CREATE TRIGGER ... EXECUTE FUNCTION ...`).
    pub definition: String,
    /// `tgenabled` is not `D` (disabled).
    pub enabled: bool,
}
