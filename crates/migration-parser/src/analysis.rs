//! Name comparison shared by every consumer of the model. Questions about earlier statements of
//! the same file (a table created earlier is empty and invisible to others, a CHECK added and
//! validated earlier lets `SET NOT NULL` skip its scan, ...) are answered by
//! [`crate::MigrationState`].

use crate::model::QualifiedName;

/// Whether two names denote the same relation as far as the file can tell: equal names, and equal
/// schemas when both are given (an unqualified name matches any schema).
pub fn same_relation(a: &QualifiedName, b: &QualifiedName) -> bool {
    a.name == b.name
        && match (&a.schema, &b.schema) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}
