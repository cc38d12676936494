//! Catalog vocabulary shared by the fleet model and the rules: resolved table names, foreign-key
//! actions, and the differences between two catalogs (drift).

use migration_parser::pg_quote::quote_ident_minimal as quote_ident;
use serde::{Deserialize, Serialize};

/// A relation's name as a catalog resolved it: its schema is always known. (A name as a
/// migration wrote it, schema optional, is `migration_parser::QualifiedName`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    /// Schema.
    pub schema: String,
    /// Object name within the schema.
    pub name: String,
}

impl TableName {
    /// Build a qualified name.
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for TableName {
    /// `schema.name`, each part quoted only when PostgreSQL would need it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.name)
        )
    }
}

/// `ON DELETE` / `ON UPDATE` action of a foreign key: the parser's one type, read from a
/// catalog with [`FkAction::from_code`].
pub use migration_parser::FkAction;

/// The class of an object that [`CatalogDifference::MissingObject`] and its siblings name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ObjectKind {
    /// A function, procedure or aggregate (`name(arguments)`).
    Function,
    /// A trigger (with its table).
    Trigger,
    /// A domain.
    Domain,
    /// A composite or enum type.
    Type,
    /// An extension.
    Extension,
    /// A schema of the database.
    Schema,
    /// An index (with its table).
    Index,
    /// A sequence.
    Sequence,
}

impl ObjectKind {
    /// The word a message uses (`function`, `trigger`, ...).
    pub fn word(self) -> &'static str {
        match self {
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Domain => "domain",
            ObjectKind::Type => "type",
            ObjectKind::Extension => "extension",
            ObjectKind::Schema => "schema",
            ObjectKind::Index => "index",
            ObjectKind::Sequence => "sequence",
        }
    }
}

/// An object named in a [`CatalogDifference`]: its class, name and, for triggers and indexes,
/// its table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Class.
    pub kind: ObjectKind,
    /// Name (`f(integer)` for a function).
    pub name: String,
    /// The table of a trigger or index.
    pub table: Option<String>,
}

impl ObjectRef {
    /// An object that belongs to no table.
    pub fn new(kind: ObjectKind, name: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            name: name.into(),
            table: None,
        }
    }

    /// An object of `table` (a trigger, an index).
    pub fn on(kind: ObjectKind, name: impl Into<String>, table: impl Into<String>) -> ObjectRef {
        ObjectRef {
            kind,
            name: name.into(),
            table: Some(table.into()),
        }
    }
}

impl std::fmt::Display for ObjectRef {
    /// `function f(integer)`, `trigger audit on users`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.word(), self.name)?;
        match &self.table {
            Some(t) if self.kind == ObjectKind::Trigger => write!(f, " on {t}"),
            _ => Ok(()),
        }
    }
}

/// One difference between an expected catalog (`a`, the reference) and an actual one (`b`).
/// "Missing" means in the reference but not in the actual catalog; "extra" the opposite.
/// Definitions are shown without the schemas' own qualifier, so they compare across tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CatalogDifference {
    /// A table (or view) of the reference is absent.
    MissingTable {
        /// Table.
        table: String,
    },
    /// A table (or view) not in the reference.
    ExtraTable {
        /// Table.
        table: String,
    },
    /// Relation kind, persistence, partitioning or view definition differ.
    TableDiffers {
        /// Table.
        table: String,
        /// What differs (`kind`, `persistence`, `partitioning`, `view definition`).
        aspect: String,
        /// Reference value.
        expected: String,
        /// Actual value.
        actual: String,
    },
    /// A column of the reference is absent.
    MissingColumn {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Its type in the reference.
        data_type: String,
    },
    /// A column not in the reference.
    ExtraColumn {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Its type.
        data_type: String,
    },
    /// Column types differ.
    ColumnTypeDiffers {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Reference type.
        expected: String,
        /// Actual type.
        actual: String,
    },
    /// `NOT NULL` differs.
    NullabilityDiffers {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Reference is `NOT NULL`.
        expected_not_null: bool,
        /// Actual is `NOT NULL`.
        actual_not_null: bool,
    },
    /// Defaults differ.
    DefaultDiffers {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Reference default.
        expected: Option<String>,
        /// Actual default.
        actual: Option<String>,
    },
    /// Another column property differs (collation, identity, generation expression, comment).
    ColumnDiffers {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// What differs.
        aspect: String,
        /// Reference value (`none` when unset).
        expected: String,
        /// Actual value.
        actual: String,
    },
    /// A constraint of the reference is absent.
    MissingConstraint {
        /// Table.
        table: String,
        /// Constraint.
        constraint: String,
        /// Its definition in the reference.
        definition: String,
    },
    /// A constraint not in the reference.
    ExtraConstraint {
        /// Table.
        table: String,
        /// Constraint.
        constraint: String,
        /// Its definition.
        definition: String,
    },
    /// Constraint definitions (or deferrability) differ.
    ConstraintDefinitionDiffers {
        /// Table.
        table: String,
        /// Constraint.
        constraint: String,
        /// Reference definition.
        expected: String,
        /// Actual definition.
        actual: String,
    },
    /// One side is `NOT VALID`.
    ConstraintValidatedDiffers {
        /// Table.
        table: String,
        /// Constraint.
        constraint: String,
        /// Reference is validated.
        expected: bool,
        /// Actual is validated.
        actual: bool,
    },
    /// An index of the reference is absent.
    MissingIndex {
        /// Table.
        table: String,
        /// Index.
        index: String,
        /// Its definition in the reference.
        definition: String,
    },
    /// An index not in the reference.
    ExtraIndex {
        /// Table.
        table: String,
        /// Index.
        index: String,
        /// Its definition.
        definition: String,
    },
    /// Index definitions differ.
    IndexDefinitionDiffers {
        /// Table.
        table: String,
        /// Index.
        index: String,
        /// Reference definition.
        expected: String,
        /// Actual definition.
        actual: String,
    },
    /// One side's index is invalid (a failed `CREATE INDEX CONCURRENTLY`).
    IndexValidDiffers {
        /// Table.
        table: String,
        /// Index.
        index: String,
        /// Reference is valid.
        expected: bool,
        /// Actual is valid.
        actual: bool,
    },
    /// A sequence of the reference is absent.
    MissingSequence {
        /// Sequence.
        sequence: String,
    },
    /// A sequence not in the reference.
    ExtraSequence {
        /// Sequence.
        sequence: String,
    },
    /// Sequence parameters differ.
    SequenceDiffers {
        /// Sequence.
        sequence: String,
        /// Reference parameters.
        expected: String,
        /// Actual parameters.
        actual: String,
    },
    /// An enum type of the reference is absent.
    MissingEnum {
        /// Type.
        name: String,
    },
    /// An enum type not in the reference.
    ExtraEnum {
        /// Type.
        name: String,
    },
    /// Enum labels (or their order) differ.
    EnumLabelsDiffer {
        /// Type.
        name: String,
        /// Reference labels.
        expected: Vec<String>,
        /// Actual labels.
        actual: Vec<String>,
    },
    /// A table comment differs.
    CommentDiffers {
        /// Table.
        table: String,
        /// Reference comment.
        expected: Option<String>,
        /// Actual comment.
        actual: Option<String>,
    },
    /// The order of the columns both sides have differs (the exact mode only; a column
    /// dropped and re-added lands last, and PostgreSQL cannot reorder columns).
    ColumnOrderDiffers {
        /// Table.
        table: String,
        /// Reference order (columns present on both sides).
        expected: Vec<String>,
        /// Actual order.
        actual: Vec<String>,
    },
    /// A function, trigger, domain, type, extension or schema of the reference is absent
    /// (the exact mode only).
    MissingObject {
        /// The object.
        object: ObjectRef,
        /// Its definition in the reference.
        definition: String,
    },
    /// A function, trigger, domain, type, extension or schema not in the reference
    /// (the exact mode only).
    ExtraObject {
        /// The object.
        object: ObjectRef,
        /// Its definition.
        definition: String,
    },
    /// A definition or comment of such an object (or of an index, a sequence or a type)
    /// differs (the exact mode only).
    ObjectDiffers {
        /// The object.
        object: ObjectRef,
        /// What differs (`definition`, `comment`).
        aspect: String,
        /// Reference value (`none` when unset).
        expected: String,
        /// Actual value.
        actual: String,
    },
}

/// How a [`CatalogDifference`] shows an optional value: the value, or `none`.
pub fn opt(v: &Option<String>) -> String {
    v.as_deref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| "none".to_string())
}

impl std::fmt::Display for CatalogDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use CatalogDifference as D;
        match self {
            D::MissingTable { table } => write!(f, "missing table {table}"),
            D::ExtraTable { table } => write!(f, "extra table {table}"),
            D::TableDiffers {
                table,
                aspect,
                expected,
                actual,
            } => write!(
                f,
                "table {table}: {aspect} differs: expected {expected}, found {actual}"
            ),
            D::MissingColumn {
                table,
                column,
                data_type,
            } => write!(f, "table {table}: missing column {column} ({data_type})"),
            D::ExtraColumn {
                table,
                column,
                data_type,
            } => write!(f, "table {table}: extra column {column} ({data_type})"),
            D::ColumnTypeDiffers {
                table,
                column,
                expected,
                actual,
            } => write!(
                f,
                "column {table}.{column}: type differs: expected {expected}, found {actual}"
            ),
            D::NullabilityDiffers {
                table,
                column,
                expected_not_null,
                ..
            } => {
                if *expected_not_null {
                    write!(
                        f,
                        "column {table}.{column}: expected NOT NULL, found nullable"
                    )
                } else {
                    write!(
                        f,
                        "column {table}.{column}: expected nullable, found NOT NULL"
                    )
                }
            }
            D::DefaultDiffers {
                table,
                column,
                expected,
                actual,
            } => write!(
                f,
                "column {table}.{column}: default differs: expected {}, found {}",
                opt(expected),
                opt(actual)
            ),
            D::ColumnDiffers {
                table,
                column,
                aspect,
                expected,
                actual,
            } => write!(
                f,
                "column {table}.{column}: {aspect} differs: expected {expected}, found {actual}"
            ),
            D::MissingConstraint {
                table,
                constraint,
                definition,
            } => write!(
                f,
                "table {table}: missing constraint {constraint}: {definition}"
            ),
            D::ExtraConstraint {
                table,
                constraint,
                definition,
            } => write!(
                f,
                "table {table}: extra constraint {constraint}: {definition}"
            ),
            D::ConstraintDefinitionDiffers {
                table,
                constraint,
                expected,
                actual,
            } => write!(
                f,
                "table {table}: constraint {constraint} definition differs: expected {expected}, found {actual}"
            ),
            D::ConstraintValidatedDiffers {
                table,
                constraint,
                expected,
                ..
            } => {
                if *expected {
                    write!(
                        f,
                        "table {table}: constraint {constraint} is NOT VALID (expected validated)"
                    )
                } else {
                    write!(
                        f,
                        "table {table}: constraint {constraint} is validated (expected NOT VALID)"
                    )
                }
            }
            other => other.fmt_objects(f),
        }
    }
}

impl CatalogDifference {
    /// [`std::fmt::Display`] of the index, sequence, enum and exact-mode variants.
    fn fmt_objects(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use CatalogDifference as D;
        match self {
            D::MissingIndex {
                table,
                index,
                definition,
            } => {
                write!(f, "table {table}: missing index {index}: {definition}")
            }
            D::ExtraIndex {
                table,
                index,
                definition,
            } => write!(f, "table {table}: extra index {index}: {definition}"),
            D::IndexDefinitionDiffers {
                table,
                index,
                expected,
                actual,
            } => write!(
                f,
                "table {table}: index {index} definition differs: expected {expected}, found {actual}"
            ),
            D::IndexValidDiffers {
                table,
                index,
                expected,
                ..
            } => {
                if *expected {
                    write!(
                        f,
                        "table {table}: index {index} is INVALID (expected valid)"
                    )
                } else {
                    write!(
                        f,
                        "table {table}: index {index} is valid (expected INVALID)"
                    )
                }
            }
            D::MissingSequence { sequence } => write!(f, "missing sequence {sequence}"),
            D::ExtraSequence { sequence } => write!(f, "extra sequence {sequence}"),
            D::SequenceDiffers {
                sequence,
                expected,
                actual,
            } => write!(
                f,
                "sequence {sequence} differs: expected {expected}, found {actual}"
            ),
            D::MissingEnum { name } => write!(f, "missing enum type {name}"),
            D::ExtraEnum { name } => write!(f, "extra enum type {name}"),
            D::EnumLabelsDiffer {
                name,
                expected,
                actual,
            } => write!(
                f,
                "enum type {name}: labels differ: expected ({}), found ({})",
                expected.join(", "),
                actual.join(", ")
            ),
            D::CommentDiffers {
                table,
                expected,
                actual,
            } => write!(
                f,
                "table {table}: comment differs: expected {}, found {}",
                opt(expected),
                opt(actual)
            ),
            D::ColumnOrderDiffers {
                table,
                expected,
                actual,
            } => write!(
                f,
                "table {table}: column order differs: expected ({}), found ({})",
                expected.join(", "),
                actual.join(", ")
            ),
            D::MissingObject { object, definition } => {
                write!(f, "missing {object}: {definition}")
            }
            D::ExtraObject { object, definition } => write!(f, "extra {object}: {definition}"),
            D::ObjectDiffers {
                object,
                aspect,
                expected,
                actual,
            } => write!(
                f,
                "{object}: {aspect} differs: expected {expected}, found {actual}"
            ),
            // The table, column and constraint variants are written by `fmt`.
            _ => Ok(()),
        }
    }
}
