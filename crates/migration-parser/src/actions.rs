//! The typed parts of [`crate::Operation`] that used to be strings: the `ALTER TABLE` actions
//! without an operation of their own ([`AlterTableAction`]), maintenance commands
//! ([`MaintenanceCommand`]), what a `REINDEX` rebuilds ([`ReindexTarget`]), what a `CREATE TYPE`
//! defines ([`TypeRepresentation`]) and what an `ALTER SEQUENCE` does to the sequence's owner
//! ([`SequenceOwnedBy`]).
//!
//! Each `Display`s as the lower-case words a message uses (`set unlogged`, `vacuum full`,
//! `index`), the same text the string fields held before they were typed.

use serde::{Deserialize, Serialize};

use crate::names::QualifiedName;

/// An `ALTER TABLE` action that has no [`crate::Operation`] of its own
/// ([`crate::Operation::AlterTableOther`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AlterTableAction {
    /// `SET LOGGED`: rewrites the table into the WAL.
    SetLogged,
    /// `SET UNLOGGED`: rewrites the table out of the WAL.
    SetUnlogged,
    /// `SET TABLESPACE name`: moves the data files.
    SetTablespace {
        /// The new tablespace.
        tablespace: String,
    },
    /// `SET SCHEMA name`: the table (and its indexes, sequences, constraints) move.
    SetSchema {
        /// The new schema.
        schema: String,
    },
    /// `SET ACCESS METHOD name` (PG 15+): rewrites the table.
    SetAccessMethod,
    /// `SET (storage_parameter = value, ...)`.
    SetStorageParameters,
    /// `RESET (storage_parameter, ...)`.
    ResetStorageParameters,
    /// `CLUSTER ON index`.
    ClusterOn {
        /// The index the table is to be clustered on.
        index: String,
    },
    /// `SET WITHOUT CLUSTER`.
    SetWithoutCluster,
    /// `SET WITHOUT OIDS` (a no-op since PG 12).
    SetWithoutOids,
    /// `ALTER [COLUMN] c SET STATISTICS n`.
    SetStatistics {
        /// The column.
        column: String,
    },
    /// `ALTER [COLUMN] c SET STORAGE {PLAIN | EXTERNAL | EXTENDED | MAIN}`.
    SetStorage {
        /// The column.
        column: String,
    },
    /// `ALTER [COLUMN] c SET COMPRESSION method` (PG 14+).
    SetCompression {
        /// The column.
        column: String,
    },
    /// `ALTER [COLUMN] c SET ( attribute_option = value )` / `RESET ( ... )`.
    SetAttributeOptions {
        /// The column.
        column: String,
    },
    /// `ALTER [COLUMN] c ADD GENERATED { ALWAYS | BY DEFAULT } AS IDENTITY`.
    AddIdentity {
        /// The column.
        column: String,
    },
    /// `ALTER [COLUMN] c OPTIONS ( ... )` (foreign tables).
    ColumnOptions {
        /// The column.
        column: String,
    },
    /// `REPLICA IDENTITY { DEFAULT | USING INDEX i | FULL | NOTHING }`.
    ReplicaIdentity,
    /// `ENABLE [ALWAYS | REPLICA] TRIGGER name | ALL | USER`.
    EnableTrigger {
        /// The trigger named (`all` / `user` for those forms).
        trigger: String,
    },
    /// `DISABLE TRIGGER name | ALL | USER`.
    DisableTrigger {
        /// The trigger named (`all` / `user` for those forms).
        trigger: String,
    },
    /// `ENABLE [ALWAYS | REPLICA] RULE name`.
    EnableRule,
    /// `DISABLE RULE name`.
    DisableRule,
    /// `ENABLE ROW LEVEL SECURITY`.
    EnableRowLevelSecurity,
    /// `DISABLE ROW LEVEL SECURITY`.
    DisableRowLevelSecurity,
    /// `FORCE ROW LEVEL SECURITY`.
    ForceRowLevelSecurity,
    /// `NO FORCE ROW LEVEL SECURITY`.
    NoForceRowLevelSecurity,
    /// `OWNER TO role`.
    OwnerTo,
    /// `INHERIT parent`.
    Inherit {
        /// The new parent.
        parent: QualifiedName,
    },
    /// `NO INHERIT parent`.
    NoInherit {
        /// The parent removed.
        parent: QualifiedName,
    },
    /// `OF type_name`: the table becomes a typed table.
    OfType,
    /// `NOT OF`: the table stops being a typed table.
    NotOfType,
    /// Anything else: the first words of the action, lower-cased.
    Other {
        /// E.g. `alter column ...`.
        description: String,
    },
}

impl AlterTableAction {
    /// The action's words, lower-cased, as messages print them (`set unlogged`,
    /// `alter column set statistics`, `enable trigger`).
    pub fn words(&self) -> &str {
        use AlterTableAction as A;
        match self {
            A::SetLogged => "set logged",
            A::SetUnlogged => "set unlogged",
            A::SetTablespace { .. } => "set tablespace",
            A::SetSchema { .. } => "set schema",
            A::SetAccessMethod => "set access method",
            A::SetStorageParameters => "set storage parameters",
            A::ResetStorageParameters => "reset storage parameters",
            A::ClusterOn { .. } => "cluster on",
            A::SetWithoutCluster => "set without cluster",
            A::SetWithoutOids => "set without oids",
            A::SetStatistics { .. } => "alter column set statistics",
            A::SetStorage { .. } => "alter column set storage",
            A::SetCompression { .. } => "alter column set compression",
            A::SetAttributeOptions { .. } => "alter column set attribute options",
            A::AddIdentity { .. } => "alter column add generated",
            A::ColumnOptions { .. } => "alter column options",
            A::ReplicaIdentity => "replica identity",
            A::EnableTrigger { .. } => "enable trigger",
            A::DisableTrigger { .. } => "disable trigger",
            A::EnableRule => "enable rule",
            A::DisableRule => "disable rule",
            A::EnableRowLevelSecurity => "enable row level security",
            A::DisableRowLevelSecurity => "disable row level security",
            A::ForceRowLevelSecurity => "force row level security",
            A::NoForceRowLevelSecurity => "no force row level security",
            A::OwnerTo => "owner to",
            A::Inherit { .. } => "inherit",
            A::NoInherit { .. } => "no inherit",
            A::OfType => "of type",
            A::NotOfType => "not of",
            A::Other { description } => description,
        }
    }

    /// Whether the action enables code that runs on later writes (a trigger or a rule) or
    /// row-level security policies.
    pub fn enables_code(&self) -> bool {
        matches!(
            self,
            AlterTableAction::EnableTrigger { .. }
                | AlterTableAction::EnableRule
                | AlterTableAction::EnableRowLevelSecurity
        )
    }
}

impl std::fmt::Display for AlterTableAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words())
    }
}

/// A maintenance command ([`crate::Operation::Maintenance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MaintenanceCommand {
    /// `VACUUM` (also `VACUUM FREEZE`, `VACUUM VERBOSE`).
    Vacuum,
    /// `VACUUM ANALYZE` / `VACUUM (ANALYZE)`.
    VacuumAnalyze,
    /// `VACUUM FULL`: writes a new copy of each table under ACCESS EXCLUSIVE.
    VacuumFull,
    /// `ANALYZE`.
    Analyze,
    /// `CLUSTER`: rewrites each table in index order under ACCESS EXCLUSIVE.
    Cluster,
}

impl MaintenanceCommand {
    /// The command as lower-case SQL keywords (`vacuum full`).
    pub fn words(self) -> &'static str {
        match self {
            MaintenanceCommand::Vacuum => "vacuum",
            MaintenanceCommand::VacuumAnalyze => "vacuum analyze",
            MaintenanceCommand::VacuumFull => "vacuum full",
            MaintenanceCommand::Analyze => "analyze",
            MaintenanceCommand::Cluster => "cluster",
        }
    }

    /// Any form of `VACUUM` (none may run inside a transaction block).
    pub fn is_vacuum(self) -> bool {
        matches!(
            self,
            MaintenanceCommand::Vacuum
                | MaintenanceCommand::VacuumAnalyze
                | MaintenanceCommand::VacuumFull
        )
    }

    /// Whether the command writes a new copy of each table (`VACUUM FULL`, `CLUSTER`).
    pub fn rewrites(self) -> bool {
        matches!(
            self,
            MaintenanceCommand::VacuumFull | MaintenanceCommand::Cluster
        )
    }
}

impl std::fmt::Display for MaintenanceCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words())
    }
}

/// What a `REINDEX` names ([`crate::Operation::Reindex`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReindexTarget {
    /// `REINDEX INDEX i`.
    Index,
    /// `REINDEX TABLE t`: every index of the table.
    Table,
    /// `REINDEX SCHEMA s`.
    Schema,
    /// `REINDEX DATABASE d`.
    Database,
    /// `REINDEX SYSTEM d`.
    System,
}

impl ReindexTarget {
    /// The keyword as written in SQL (`INDEX`, `TABLE`, ...).
    pub fn keyword(self) -> &'static str {
        match self {
            ReindexTarget::Index => "INDEX",
            ReindexTarget::Table => "TABLE",
            ReindexTarget::Schema => "SCHEMA",
            ReindexTarget::Database => "DATABASE",
            ReindexTarget::System => "SYSTEM",
        }
    }

    /// All targets, in the order of the `REINDEX` grammar.
    pub const ALL: [ReindexTarget; 5] = [
        ReindexTarget::Index,
        ReindexTarget::Table,
        ReindexTarget::Schema,
        ReindexTarget::Database,
        ReindexTarget::System,
    ];

    /// Whether the target covers a whole schema or database (never inside a transaction).
    pub fn is_wide(self) -> bool {
        matches!(
            self,
            ReindexTarget::Schema | ReindexTarget::Database | ReindexTarget::System
        )
    }
}

impl std::fmt::Display for ReindexTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.keyword().to_ascii_lowercase())
    }
}

/// One attribute of a composite type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeAttribute {
    /// Attribute name.
    pub name: String,
    /// Data type as lower-cased SQL.
    pub data_type: String,
}

/// What a `CREATE TYPE` other than an enum defines ([`crate::Operation::CreateType`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TypeRepresentation {
    /// `CREATE TYPE t AS (a int, b text)`.
    Composite {
        /// The attributes, in order.
        attributes: Vec<TypeAttribute>,
    },
    /// `CREATE TYPE t AS RANGE (SUBTYPE = ..., ...)`.
    Range {
        /// The `SUBTYPE`, lower-cased, when given.
        subtype: Option<String>,
    },
    /// `CREATE TYPE t (INPUT = ..., OUTPUT = ...)`: a base type.
    Base,
    /// `CREATE TYPE t`: a shell type, to be completed later.
    Shell,
}

/// What an `ALTER SEQUENCE` does to the sequence's owning column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SequenceOwnedBy {
    /// No `OWNED BY`: the owner is unchanged.
    #[default]
    Unchanged,
    /// `OWNED BY NONE`.
    Nobody,
    /// `OWNED BY table.column`.
    Column {
        /// The table.
        table: QualifiedName,
        /// The column.
        column: String,
    },
}
