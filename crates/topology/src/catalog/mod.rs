//! Catalog introspection: what a tenant schema looks like.
//!
//! [`introspect_schemas`] reads the catalogs of *all* requested schemas of one database in seven
//! set-based `pg_catalog` queries (schemas, tables, columns, constraints, indexes, sequences,
//! enums; plus one for the column names of referenced tables outside the set) inside one `REPEATABLE READ READ ONLY` transaction — the number of round trips does
//! not grow with the number of tenants. It never uses the `information_schema` constraint
//! views (tens of seconds on large fleets).
//!
//! Definitions (`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_expr`, `format_type`) are
//! read with an empty `search_path`, so every user object in them is schema-qualified
//! (`tenant_0001.accounts`, `shared.plans`) while built-in types stay bare (`integer`, `jsonb`).
//! [`Catalog`] keeps them exactly as PostgreSQL printed them; the shape used by
//! [`Catalog::fingerprint`] and [`diff`] strips the catalog's *own* schema qualifier, so
//! identical tenants compare equal while a reference to another schema (`shared.plans`) stays
//! qualified.
//!
//! The model uses `BTreeMap`s keyed by name everywhere, so iteration and serialization are
//! deterministic.

mod diff;
mod fkgraph;
mod introspect;
mod shape;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use diff::{CatalogDifference, DriftReport, DriftedShard, ShapeGroup, detect_drift, diff};
pub use fkgraph::{CascadeReach, FkEdge, FkGraph, FkReference, fk_graph, fk_graph_of};
pub use introspect::{introspect_schema, introspect_schemas, introspect_schemas_conn};
pub use shape::Fingerprint;

pub use evidence::QualifiedName;

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
                .map(move |c| (t, c))
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
    pub partition_of: Option<QualifiedName>,
    /// Partition bound (`FOR VALUES ...`) of a partition.
    pub partition_bound: Option<String>,
    /// Definition of a view or materialized view (`pg_get_viewdef`).
    pub view_definition: Option<String>,
    /// Columns by name.
    pub columns: BTreeMap<String, Column>,
    /// Constraints by name (primary key, unique, foreign key, check, exclusion).
    pub constraints: BTreeMap<String, Constraint>,
    /// Indexes by name.
    pub indexes: BTreeMap<String, Index>,
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
}

impl Table {
    /// Columns in table order (`attnum`).
    pub fn columns_in_order(&self) -> Vec<&Column> {
        let mut v: Vec<&Column> = self.columns.values().collect();
        v.sort_by_key(|c| c.position);
        v
    }

    /// The primary key constraint, if any.
    pub fn primary_key(&self) -> Option<&Constraint> {
        self.constraints
            .values()
            .find(|c| c.kind == ConstraintKind::PrimaryKey)
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

/// Kind of constraint (`pg_constraint.contype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
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
    /// `t` (constraint trigger).
    Trigger,
}

impl ConstraintKind {
    pub(crate) fn from_contype(t: &str) -> Option<ConstraintKind> {
        Some(match t {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            "c" => ConstraintKind::Check,
            "x" => ConstraintKind::Exclusion,
            "t" => ConstraintKind::Trigger,
            _ => return None,
        })
    }
}

pub use evidence::FkAction;
/// The foreign-key part of a [`Constraint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    /// The referenced table, with its schema (it may be another schema, e.g. `shared`).
    pub references: QualifiedName,
    /// Referenced columns, in key order.
    pub referenced_columns: Vec<String>,
    /// `ON DELETE`.
    pub on_delete: FkAction,
    /// `ON UPDATE`.
    pub on_update: FkAction,
}

/// A table constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ConstraintKind,
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
}

/// An enum type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    /// Name.
    pub name: String,
    /// Labels in sort order.
    pub labels: Vec<String>,
}
