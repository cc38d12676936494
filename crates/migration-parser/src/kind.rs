//! [`OperationKind`]: the fieldless twin of [`Operation`], one variant per operation variant,
//! with a stable snake_case name (what a custom statement rule's `operation` names).
//!
//! Consumers that must handle every operation (lock knowledge, rules, probes, rollback
//! inversions) walk [`OperationKind::ALL`] in a coverage test, so a new operation cannot fall
//! through a `_ =>` arm unnoticed.

use crate::model::Operation;

macro_rules! operation_kinds {
    ($($variant:ident => $name:literal,)+) => {
        /// The kind of an [`Operation`], without its fields. See [`Operation::kind`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum OperationKind {
            $(
                #[doc = concat!("[`Operation::", stringify!($variant), "`] (`", $name, "`).")]
                $variant,
            )+
        }

        impl OperationKind {
            /// Every kind, in the order of [`Operation`]'s variants.
            pub const ALL: &'static [OperationKind] = &[$(OperationKind::$variant,)+];

            /// The stable snake_case name (`drop_column`): the variant name of [`Operation`]
            /// in snake_case, as custom rules name it. Never changes once released.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(OperationKind::$variant => $name,)+
                }
            }
        }

        impl Operation {
            /// The kind of this operation.
            pub fn kind(&self) -> OperationKind {
                match self {
                    $(Operation::$variant { .. } => OperationKind::$variant,)+
                }
            }
        }
    };
}

operation_kinds! {
    CreateTable => "create_table",
    DropTable => "drop_table",
    RenameTable => "rename_table",
    AddColumn => "add_column",
    DropColumn => "drop_column",
    RenameColumn => "rename_column",
    AlterColumnType => "alter_column_type",
    SetNotNull => "set_not_null",
    DropNotNull => "drop_not_null",
    SetDefault => "set_default",
    DropDefault => "drop_default",
    AddConstraint => "add_constraint",
    ValidateConstraint => "validate_constraint",
    DropConstraint => "drop_constraint",
    RenameConstraint => "rename_constraint",
    CreateIndex => "create_index",
    DropIndex => "drop_index",
    RenameIndex => "rename_index",
    Reindex => "reindex",
    CreateEnum => "create_enum",
    AddEnumValue => "add_enum_value",
    RenameEnumValue => "rename_enum_value",
    DropType => "drop_type",
    Truncate => "truncate",
    CreateSchema => "create_schema",
    DropSchema => "drop_schema",
    DropDatabase => "drop_database",
    Update => "update",
    Delete => "delete",
    Insert => "insert",
    CreateView => "create_view",
    DropView => "drop_view",
    RefreshMaterializedView => "refresh_materialized_view",
    LockTable => "lock_table",
    Maintenance => "maintenance",
    AlterTableOther => "alter_table_other",
    AttachPartition => "attach_partition",
    DetachPartition => "detach_partition",
    Set => "set",
    Reset => "reset",
    Transaction => "transaction",
    Do => "do",
    CreateSequence => "create_sequence",
    CreateExtension => "create_extension",
    CreateFunction => "create_function",
    CreateTrigger => "create_trigger",
    Comment => "comment",
    CreateDatabase => "create_database",
    AttachIndexPartition => "attach_index_partition",
    AlterSystem => "alter_system",
    DropFunction => "drop_function",
    DropTrigger => "drop_trigger",
    CreateType => "create_type",
    RenameType => "rename_type",
    CreateDomain => "create_domain",
    DropDomain => "drop_domain",
    RenameView => "rename_view",
    DropSequence => "drop_sequence",
    AlterSequence => "alter_sequence",
    RenameSequence => "rename_sequence",
    DropExtension => "drop_extension",
    Other => "other",
}

impl OperationKind {
    /// The names of [`OperationKind::ALL`], in the same order (for messages that list them).
    pub const NAMES: [&'static str; OperationKind::ALL.len()] = {
        let mut out = [""; OperationKind::ALL.len()];
        let mut i = 0;
        while i < out.len() {
            out[i] = OperationKind::ALL[i].as_str();
            i += 1;
        }
        out
    };
}

impl std::fmt::Display for OperationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`OperationKind::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation kind `{0}`")]
pub struct UnknownOperationKind(pub String);

impl std::str::FromStr for OperationKind {
    type Err = UnknownOperationKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OperationKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownOperationKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names are the snake_case of the variant names (what custom rules matched before
    /// the kinds were typed), unique, and round-trip through `FromStr`.
    #[test]
    fn names_are_snake_case_variant_names_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for k in OperationKind::ALL {
            let variant = format!("{k:?}");
            let mut snake = String::new();
            for (i, c) in variant.chars().enumerate() {
                if c.is_ascii_uppercase() {
                    if i > 0 {
                        snake.push('_');
                    }
                    snake.push(c.to_ascii_lowercase());
                } else {
                    snake.push(c);
                }
            }
            assert_eq!(k.as_str(), snake);
            assert!(seen.insert(k.as_str()), "duplicate {k}");
            assert_eq!(k.as_str().parse::<OperationKind>(), Ok(*k));
        }
        assert_eq!(OperationKind::NAMES.len(), OperationKind::ALL.len());
        assert!("any".parse::<OperationKind>().is_err());
    }
}
