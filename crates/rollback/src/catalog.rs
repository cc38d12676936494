//! The generator's working copy of one schema, and the proof's mismatches.
//!
//! There is one catalog model, [`topology::catalog::Catalog`], read by one introspection
//! (`topology::catalog::introspect_schema_conn`) and compared by one differ
//! (`topology::catalog::diff_catalogs` in [`DiffMode::Exact`]). [`CatalogSnapshot`] is only the
//! mutable state the generator walks the migration over (with the pre-migration names of
//! renamed objects): [`CatalogSnapshot::from_topology`] builds it from a catalog's
//! [`Catalog::unqualified`] copy, so a generated rollback names the tenant schema's objects
//! unqualified and fans out to every tenant. [`mismatches`] turns the exact differences into
//! the `rollback-mismatch` items users read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use topology::catalog::{
    Catalog, CatalogDifference, DiffMode, ObjectKind, TableKind, diff_catalogs,
};

use crate::names::{quote_ident, quote_literal};

/// One schema's structure, as a rollback must restore it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CatalogSnapshot {
    /// The schema (unqualified names in a migration resolve to it).
    pub schema: String,
    /// Tables and partitioned tables by name.
    pub tables: BTreeMap<String, TableSnap>,
    /// Sequences that are not identity sequences, by name.
    pub sequences: BTreeMap<String, SequenceSnap>,
    /// Views and materialized views by name.
    pub views: BTreeMap<String, ViewSnap>,
    /// Enum, domain and composite types by name.
    pub types: BTreeMap<String, TypeSnap>,
    /// Functions, procedures and (plain) aggregates by `name(identity arguments)`.
    pub functions: BTreeMap<String, FunctionSnap>,
    /// Extensions of the database (name → schema).
    pub extensions: BTreeMap<String, String>,
    /// Non-system schemas of the database.
    pub schemas: BTreeSet<String>,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableSnap {
    /// `r` ordinary or `p` partitioned.
    pub kind: String,
    /// `UNLOGGED`.
    pub unlogged: bool,
    /// Columns in `attnum` order.
    pub columns: Vec<ColumnSnap>,
    /// Constraints by name.
    pub constraints: BTreeMap<String, ConstraintSnap>,
    /// Indexes by name (including those backing constraints).
    pub indexes: BTreeMap<String, IndexSnap>,
    /// Triggers (not internal) by name.
    pub triggers: BTreeMap<String, String>,
    /// `COMMENT ON TABLE`.
    pub comment: Option<String>,
    /// `PARTITION BY` key of a partitioned table.
    pub partition_key: Option<String>,
    /// Parent and bound of a partition.
    pub partition_of: Option<(String, String)>,
    /// Row-level security enabled.
    pub row_security: bool,
    /// Storage parameters (`reloptions`), comma-separated.
    pub options: Option<String>,
    /// Name of this table in the pre-migration catalog (working state only).
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

impl TableSnap {
    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSnap> {
        self.columns.iter().find(|c| c.name == name)
    }
    pub(crate) fn column_mut(&mut self, name: &str) -> Option<&mut ColumnSnap> {
        self.columns.iter_mut().find(|c| c.name == name)
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ColumnSnap {
    /// Name.
    pub name: String,
    /// `format_type` of the column.
    pub data_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
    /// Default expression.
    pub default: Option<String>,
    /// Collation when it differs from the type's.
    pub collation: Option<String>,
    /// `ALWAYS` or `BY DEFAULT` for identity columns.
    pub identity: Option<String>,
    /// Generation expression of a stored generated column.
    pub generated: Option<String>,
    /// `COMMENT ON COLUMN`.
    pub comment: Option<String>,
}

/// A constraint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConstraintSnap {
    /// `p`, `u`, `f`, `c` or `x`.
    pub kind: String,
    /// `pg_get_constraintdef(oid, true)`.
    pub definition: String,
    /// `convalidated`.
    pub validated: bool,
    /// Constrained columns.
    pub columns: Vec<String>,
    /// Referenced table of a foreign key (unqualified when in the schema).
    pub ref_table: Option<String>,
    /// Index a foreign key depends on (the referenced unique index) or that backs the constraint.
    pub index: Option<String>,
    /// `COMMENT ON CONSTRAINT`.
    pub comment: Option<String>,
    /// Inherited from a parent (partition), not defined locally.
    pub inherited: bool,
    /// Name in the pre-migration catalog (working state only).
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

/// An index.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IndexSnap {
    /// `pg_get_indexdef(oid, 0, true)`.
    pub definition: String,
    /// Backs a primary key, unique or exclusion constraint.
    pub constraint: bool,
    /// `indisvalid`.
    pub valid: bool,
    /// Columns the index depends on (keys, expressions, predicate).
    pub columns: Vec<String>,
    /// `COMMENT ON INDEX`.
    pub comment: Option<String>,
    /// Existed before the migration (working state only).
    #[serde(skip)]
    pub(crate) origin: Option<String>,
}

/// A sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SequenceSnap {
    /// `AS type`.
    pub data_type: String,
    /// `START`.
    pub start: i64,
    /// `INCREMENT`.
    pub increment: i64,
    /// `MINVALUE`.
    pub min: i64,
    /// `MAXVALUE`.
    pub max: i64,
    /// `CACHE`.
    pub cache: i64,
    /// `CYCLE`.
    pub cycle: bool,
    /// `OWNED BY table.column`.
    pub owned_by: Option<(String, String)>,
    /// `COMMENT ON SEQUENCE`.
    pub comment: Option<String>,
}

/// A view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ViewSnap {
    /// Materialized view.
    pub materialized: bool,
    /// `pg_get_viewdef(oid, true)`.
    pub definition: String,
    /// Indexes of a materialized view by name.
    pub indexes: BTreeMap<String, IndexSnap>,
    /// `COMMENT ON VIEW`.
    pub comment: Option<String>,
}

/// A user-defined type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypeSnap {
    /// An enum with its labels in order.
    Enum {
        /// Labels.
        labels: Vec<String>,
        /// Comment.
        comment: Option<String>,
    },
    /// A domain: `AS base [DEFAULT] [NOT NULL] [constraints]`, as one clause text.
    Domain {
        /// The clause after `CREATE DOMAIN name`.
        definition: String,
        /// Comment.
        comment: Option<String>,
    },
    /// A composite type: `(attr type, ...)`.
    Composite {
        /// The attribute list.
        definition: String,
        /// Comment.
        comment: Option<String>,
    },
}

/// A function or procedure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunctionSnap {
    /// The function's name (unquoted; the catalog key `name(arguments)` cannot be split back
    /// when the name holds a parenthesis).
    #[serde(default)]
    pub name: String,
    /// `pg_get_function_identity_arguments`, without the parentheses.
    #[serde(default)]
    pub arguments: String,
    /// `pg_get_functiondef` (a `CREATE OR REPLACE ...` statement).
    pub definition: String,
    /// `COMMENT ON FUNCTION`.
    pub comment: Option<String>,
}

impl FunctionSnap {
    /// `name(arguments)` as SQL names the function in `COMMENT ON FUNCTION`: the name quoted
    /// (a hostile name stays one name), the server-deparsed identity arguments as they are.
    pub(crate) fn object_sql(&self) -> String {
        format!("{}({})", quote_ident(&self.name), self.arguments)
    }
}

/// A difference between two snapshots (a `rollback-mismatch` item).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Mismatch {
    /// The object, e.g. `table users`, `index users_email_idx`, `function f(integer)`.
    pub object: String,
    /// What differs, e.g. `missing after`, `column email: type`.
    pub what: String,
    /// The value before (pre-migration), if any.
    pub before: Option<String>,
    /// The value after the round trip, if any.
    pub after: Option<String>,
    /// Only the order of columns differs (a dropped column re-added lands at the end; PostgreSQL
    /// cannot reorder columns). Reported, but not counted against a restored catalog.
    pub column_order_only: bool,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.what)?;
        match (&self.before, &self.after) {
            (Some(b), Some(a)) => write!(f, " (before: {b}; after: {a})"),
            (Some(b), None) => write!(f, " (before: {b})"),
            (None, Some(a)) => write!(f, " (after: {a})"),
            (None, None) => Ok(()),
        }
    }
}

impl CatalogSnapshot {
    /// The generator's working copy of `cat`: its [`Catalog::unqualified`] definitions, with
    /// tables and views apart, identity sequences left to their columns and string codes for
    /// kinds. Foreign tables are left out (a rollback never recreates them).
    pub fn from_topology(cat: &Catalog) -> CatalogSnapshot {
        let cat = cat.unqualified();
        let mut snap = CatalogSnapshot {
            schema: cat.schema.clone(),
            extensions: cat.extensions.clone(),
            schemas: cat.schemas.clone(),
            ..Default::default()
        };
        snap.schemas.insert(cat.schema.clone());
        for (name, t) in &cat.tables {
            let indexes: BTreeMap<String, IndexSnap> = t
                .indexes
                .iter()
                .map(|(n, i)| (n.clone(), index_snap(n, i)))
                .collect();
            match t.kind {
                TableKind::View | TableKind::MaterializedView => {
                    let v = ViewSnap {
                        materialized: t.kind == TableKind::MaterializedView,
                        definition: t.view_definition.clone().unwrap_or_default(),
                        indexes,
                        comment: t.comment.clone(),
                    };
                    snap.views.insert(name.clone(), v);
                }
                TableKind::Foreign => {}
                TableKind::Ordinary | TableKind::Partitioned => {
                    let mut ts = table_snap(name, t, &cat.schema);
                    ts.indexes = indexes;
                    snap.tables.insert(name.clone(), ts);
                }
            }
        }
        for (name, s) in cat.sequences.iter().filter(|(_, s)| !s.identity) {
            let q = SequenceSnap {
                data_type: s.data_type.clone(),
                start: s.start,
                increment: s.increment,
                min: s.min,
                max: s.max,
                cache: s.cache,
                cycle: s.cycle,
                owned_by: s.owned_by.clone(),
                comment: s.comment.clone(),
            };
            snap.sequences.insert(name.clone(), q);
        }
        for (name, e) in &cat.enums {
            let labels = e.labels.clone();
            let comment = e.comment.clone();
            snap.types
                .insert(name.clone(), TypeSnap::Enum { labels, comment });
        }
        for (name, d) in &cat.domains {
            let (definition, comment) = (d.definition.clone(), d.comment.clone());
            snap.types.insert(
                name.clone(),
                TypeSnap::Domain {
                    definition,
                    comment,
                },
            );
        }
        for (name, c) in &cat.composites {
            let (definition, comment) = (c.definition.clone(), c.comment.clone());
            snap.types.insert(
                name.clone(),
                TypeSnap::Composite {
                    definition,
                    comment,
                },
            );
        }
        for (sig, f) in &cat.functions {
            let fs = FunctionSnap {
                name: f.name.clone(),
                arguments: f.arguments.clone(),
                definition: f.definition.clone(),
                comment: f.comment.clone(),
            };
            snap.functions.insert(sig.clone(), fs);
        }
        snap
    }
}

/// A referenced or parent table, relative to `own` schema: bare (quoted when needed) in it.
fn relative(q: &topology::catalog::TableName, own: &str) -> String {
    if q.schema == own {
        quote_ident(&q.name)
    } else {
        q.to_string()
    }
}

fn index_snap(name: &str, i: &topology::catalog::Index) -> IndexSnap {
    IndexSnap {
        definition: i.definition.clone(),
        constraint: i.constraint.is_some(),
        valid: i.valid,
        columns: i.depends_on.clone(),
        comment: i.comment.clone(),
        origin: Some(name.to_string()),
    }
}

fn table_snap(name: &str, t: &topology::catalog::Table, schema: &str) -> TableSnap {
    use topology::catalog::{ConstraintType as K, Identity};
    let mut ts = TableSnap {
        kind: if t.kind == TableKind::Partitioned {
            "p".into()
        } else {
            "r".into()
        },
        unlogged: t.persistence == topology::catalog::Persistence::Unlogged,
        comment: t.comment.clone(),
        partition_key: t.partition_key.clone(),
        partition_of: match (&t.partition_of, &t.partition_bound) {
            (Some(p), Some(b)) => Some((relative(p, schema), b.clone())),
            _ => None,
        },
        row_security: t.row_security,
        options: t.options.clone(),
        origin: Some(name.to_string()),
        ..Default::default()
    };
    for c in t.columns_in_order() {
        ts.columns.push(ColumnSnap {
            name: c.name.clone(),
            data_type: c.data_type.clone(),
            not_null: c.not_null,
            default: c.default.clone(),
            collation: c.collation.clone(),
            identity: c.identity.map(|i| match i {
                Identity::Always => "ALWAYS".to_string(),
                Identity::ByDefault => "BY DEFAULT".to_string(),
            }),
            generated: c.generated.clone(),
            comment: c.comment.clone(),
        });
    }
    for (cn, c) in &t.constraints {
        let kind = match c.kind {
            K::PrimaryKey => "p",
            K::Unique => "u",
            K::ForeignKey => "f",
            K::Check => "c",
            K::Exclusion => "x",
            K::Trigger => continue,
        };
        let fk = c.foreign_key.as_ref();
        let con = ConstraintSnap {
            kind: kind.into(),
            definition: c.definition.clone(),
            validated: c.validated,
            columns: c.columns.clone(),
            ref_table: fk.map(|fk| relative(&fk.references, schema)),
            index: c
                .index
                .clone()
                .or_else(|| fk.and_then(|fk| fk.index.clone())),
            comment: c.comment.clone(),
            inherited: c.inherited,
            origin: Some(cn.clone()),
        };
        ts.constraints.insert(cn.clone(), con);
    }
    for (tn, tr) in &t.triggers {
        ts.triggers.insert(tn.clone(), tr.definition.clone());
    }
    ts
}

/// Every difference between the catalog before the migration and after the round trip
/// (topology's differ in [`DiffMode::Exact`]), as the `rollback-mismatch` items users read,
/// sorted. Empty means the two schemas are structurally identical for everything the catalog
/// covers (not compared: privileges, ownership, policies, rules, statistics targets, sequence
/// positions).
pub fn mismatches(before: &Catalog, after: &Catalog) -> Vec<Mismatch> {
    let differences = diff_catalogs(before, after, DiffMode::Exact);
    if differences.is_empty() {
        return Vec::new();
    }
    // Values are shown as the rollback would write them: unqualified.
    let (before, after) = (before.unqualified(), after.unqualified());
    let mut out: Vec<Mismatch> = differences
        .iter()
        .map(|d| mismatch_of(d, &before, &after))
        .collect();
    out.sort();
    out
}

const MISSING: &str = "missing after the round trip";
const EXTRA: &str = "extra after the round trip";

fn mismatch(object: String, what: &str, before: Option<String>, after: Option<String>) -> Mismatch {
    Mismatch {
        object,
        what: what.to_string(),
        before,
        after,
        column_order_only: false,
    }
}

/// `table t`, or `view t` for a view or materialized view, with what a message shows of it.
fn relation(cat: &Catalog, table: &str) -> (String, String) {
    match cat.table(table) {
        Some(t) if matches!(t.kind, TableKind::View | TableKind::MaterializedView) => {
            let def = t.view_definition.clone().unwrap_or_default();
            let shown = if t.kind == TableKind::MaterializedView {
                format!("materialized: {def}")
            } else {
                def
            };
            (format!("view {table}"), shown)
        }
        _ => (format!("table {table}"), "exists".to_string()),
    }
}

fn constraint_of(cat: &Catalog, table: &str, name: &str) -> Option<String> {
    let c = cat.table(table)?.constraints.get(name)?;
    Some(c.definition.clone())
}

/// A sequence's parameters as SQL: `AS integer INCREMENT 1 ... OWNED BY t.c`.
fn sequence_of(cat: &Catalog, name: &str) -> Option<String> {
    let v = cat.sequences.get(name)?;
    Some(format!(
        "AS {} INCREMENT {} MINVALUE {} MAXVALUE {} START {} CACHE {}{}{}",
        v.data_type,
        v.increment,
        v.min,
        v.max,
        v.start,
        v.cache,
        if v.cycle { " CYCLE" } else { "" },
        v.owned_by
            .as_ref()
            .map(|(t, c)| format!(" OWNED BY {t}.{c}"))
            .unwrap_or_default()
    ))
}

fn enum_sql(labels: &[String]) -> String {
    let labels: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
    format!("ENUM ({})", labels.join(", "))
}

fn enum_of(cat: &Catalog, name: &str) -> Option<String> {
    cat.enums.get(name).map(|e| enum_sql(&e.labels))
}

fn mismatch_of(d: &CatalogDifference, before: &Catalog, after: &Catalog) -> Mismatch {
    use CatalogDifference as D;
    let col = |t: &str, c: &str| format!("column {t}.{c}");
    let con = |c: &str, t: &str| format!("constraint {c} on {t}");
    let show = |v: &Option<String>| v.clone();
    match d {
        D::MissingTable { table } => {
            let (object, shown) = relation(before, table);
            mismatch(object, MISSING, Some(shown), None)
        }
        D::ExtraTable { table } => {
            let (object, shown) = relation(after, table);
            mismatch(object, EXTRA, None, Some(shown))
        }
        D::TableDiffers {
            table,
            aspect,
            expected,
            actual,
        } if aspect == "view definition" => mismatch(
            format!("view {table}"),
            "definition",
            Some(expected.clone()),
            Some(actual.clone()),
        ),
        D::TableDiffers {
            table,
            aspect,
            expected,
            actual,
        } => mismatch(
            format!("table {table}"),
            aspect,
            Some(expected.clone()),
            Some(actual.clone()),
        ),
        D::CommentDiffers {
            table,
            expected,
            actual,
        } => mismatch(
            relation(before, table).0,
            "comment",
            show(expected),
            show(actual),
        ),
        D::MissingColumn {
            table,
            column,
            data_type,
        } => mismatch(col(table, column), MISSING, Some(data_type.clone()), None),
        D::ExtraColumn {
            table,
            column,
            data_type,
        } => mismatch(col(table, column), EXTRA, None, Some(data_type.clone())),
        D::ColumnTypeDiffers {
            table,
            column,
            expected,
            actual,
        } => mismatch(
            col(table, column),
            "type",
            Some(expected.clone()),
            Some(actual.clone()),
        ),
        D::NullabilityDiffers {
            table,
            column,
            expected_not_null,
            actual_not_null,
        } => mismatch(
            col(table, column),
            "not null",
            Some(expected_not_null.to_string()),
            Some(actual_not_null.to_string()),
        ),
        D::DefaultDiffers {
            table,
            column,
            expected,
            actual,
        } => mismatch(col(table, column), "default", show(expected), show(actual)),
        D::ColumnDiffers {
            table,
            column,
            aspect,
            expected,
            actual,
        } => {
            // A constraint's comment comes as the pseudo-column `(constraint name)`.
            let object = match column
                .strip_prefix("(constraint ")
                .and_then(|c| c.strip_suffix(')'))
            {
                Some(c) => con(c, table),
                None => col(table, column),
            };
            mismatch(object, aspect, Some(expected.clone()), Some(actual.clone()))
        }
        D::ColumnOrderDiffers {
            table,
            expected,
            actual,
        } => Mismatch {
            column_order_only: true,
            ..mismatch(
                format!("table {table}"),
                "column order",
                Some(expected.join(", ")),
                Some(actual.join(", ")),
            )
        },
        other => mismatch_of_key(other, before, after),
    }
}

/// Constraints and indexes.
fn mismatch_of_key(d: &CatalogDifference, before: &Catalog, after: &Catalog) -> Mismatch {
    use CatalogDifference as D;
    let con = |c: &str, t: &str| format!("constraint {c} on {t}");
    match d {
        // The definitions as PostgreSQL prints them (with `NOT VALID`).
        D::MissingConstraint {
            table, constraint, ..
        } => mismatch(
            con(constraint, table),
            MISSING,
            constraint_of(before, table, constraint),
            None,
        ),
        D::ExtraConstraint {
            table, constraint, ..
        } => mismatch(
            con(constraint, table),
            EXTRA,
            None,
            constraint_of(after, table, constraint),
        ),
        D::ConstraintDefinitionDiffers {
            table,
            constraint,
            expected,
            actual,
        } => mismatch(
            con(constraint, table),
            "definition",
            Some(expected.clone()),
            Some(actual.clone()),
        ),
        D::ConstraintValidatedDiffers {
            table,
            constraint,
            expected,
            actual,
        } => mismatch(
            con(constraint, table),
            "validated",
            Some(expected.to_string()),
            Some(actual.to_string()),
        ),
        D::MissingIndex {
            index, definition, ..
        } => mismatch(
            format!("index {index}"),
            MISSING,
            Some(definition.clone()),
            None,
        ),
        D::ExtraIndex {
            index, definition, ..
        } => mismatch(
            format!("index {index}"),
            EXTRA,
            None,
            Some(definition.clone()),
        ),
        D::IndexDefinitionDiffers {
            index,
            expected,
            actual,
            ..
        } => mismatch(
            format!("index {index}"),
            "definition",
            Some(expected.clone()),
            Some(actual.clone()),
        ),
        D::IndexValidDiffers {
            index,
            expected,
            actual,
            ..
        } => mismatch(
            format!("index {index}"),
            "valid",
            Some(expected.to_string()),
            Some(actual.to_string()),
        ),
        other => mismatch_of_object(other, before, after),
    }
}

/// Sequences, enum types and the objects only the exact mode compares.
fn mismatch_of_object(d: &CatalogDifference, before: &Catalog, after: &Catalog) -> Mismatch {
    use CatalogDifference as D;
    match d {
        D::MissingSequence { sequence } => mismatch(
            format!("sequence {sequence}"),
            MISSING,
            sequence_of(before, sequence),
            None,
        ),
        D::ExtraSequence { sequence } => mismatch(
            format!("sequence {sequence}"),
            EXTRA,
            None,
            sequence_of(after, sequence),
        ),
        D::SequenceDiffers { sequence, .. } => mismatch(
            format!("sequence {sequence}"),
            "definition",
            sequence_of(before, sequence),
            sequence_of(after, sequence),
        ),
        D::MissingEnum { name } => {
            mismatch(format!("type {name}"), MISSING, enum_of(before, name), None)
        }
        D::ExtraEnum { name } => {
            mismatch(format!("type {name}"), EXTRA, None, enum_of(after, name))
        }
        D::EnumLabelsDiffer {
            name,
            expected,
            actual,
        } => mismatch(
            format!("type {name}"),
            "definition",
            Some(enum_sql(expected)),
            Some(enum_sql(actual)),
        ),
        D::MissingObject { object, definition } => {
            mismatch(object.to_string(), MISSING, Some(definition.clone()), None)
        }
        D::ExtraObject { object, definition } => {
            mismatch(object.to_string(), EXTRA, None, Some(definition.clone()))
        }
        D::ObjectDiffers {
            object,
            aspect,
            expected,
            actual,
        } => {
            // `none` is how the differ shows an unset comment.
            let v = |s: &String| {
                (s != "none" || object.kind == ObjectKind::Extension).then(|| s.clone())
            };
            mismatch(object.to_string(), aspect, v(expected), v(actual))
        }
        other => mismatch("catalog".into(), &other.to_string(), None, None),
    }
}
