//! Value hints for the rollback proof: the shard columns whose values decide whether the
//! migration runs on sample rows (a type change's `USING`, a new CHECK, NOT NULL, UNIQUE or
//! foreign key), and their values from the shard's `pg_stats` (`topology::catalog::value_hints`,
//! read-only). The values are real: they go to the shadow only, never to a report or a log.

use std::collections::BTreeSet;

use migration_parser::state::ColumnResolved;
use migration_parser::{ConstraintKind, Migration, MigrationState, Operation, QualifiedName, Step};
use rollback::ValueHints;
use topology::ConnectionSpec;

/// How long the `pg_stats` read may take on a shard.
const HINTS_TIMEOUT: &str = "5s";

/// The `(table, column)` pairs of the shard (names as on the shard, before the migration) that
/// the migration changes in a way sample values must satisfy: `ALTER COLUMN … TYPE`, `SET NOT
/// NULL`, the columns of a new PRIMARY KEY / UNIQUE / FOREIGN KEY constraint (and the
/// referenced columns), of a unique index, and every column of a table given a new CHECK.
/// Columns the migration creates have no statistics and are left out.
pub(crate) fn hint_columns(migration: &Migration) -> Vec<(String, String)> {
    let state = MigrationState::new(migration);
    let mut out: BTreeSet<(String, String)> = BTreeSet::new();
    for st in &migration.statements {
        for (k, op) in st.operations.iter().enumerate() {
            let at = Step {
                statement: st.index,
                op: k,
            };
            for (table, column) in changed_columns(op) {
                if let Some(pair) = shard_column(&state, table, &column, at) {
                    out.insert(pair);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The columns one operation constrains or converts, as the migration names them.
fn changed_columns(op: &Operation) -> Vec<(&QualifiedName, String)> {
    let plain = |cols: &[String]| -> Vec<String> {
        cols.iter()
            .filter(|c| c.chars().all(|ch| ch.is_alphanumeric() || ch == '_'))
            .cloned()
            .collect()
    };
    match op {
        Operation::AlterColumnType { table, column, .. }
        | Operation::SetNotNull { table, column } => vec![(table, column.clone())],
        Operation::AddConstraint { table, constraint } => match &constraint.kind {
            ConstraintKind::PrimaryKey { columns, .. } | ConstraintKind::Unique { columns, .. } => {
                plain(columns).into_iter().map(|c| (table, c)).collect()
            }
            ConstraintKind::ForeignKey {
                columns,
                ref_table,
                ref_columns,
                ..
            } => plain(columns)
                .into_iter()
                .map(|c| (table, c))
                .chain(plain(ref_columns).into_iter().map(|c| (ref_table, c)))
                .collect(),
            _ => Vec::new(),
        },
        Operation::CreateIndex {
            table,
            columns,
            unique: true,
            ..
        } => plain(columns).into_iter().map(|c| (table, c)).collect(),
        _ => Vec::new(),
    }
}

/// The shard's name of `table.column` as the migration names it at `at`, when it is a column
/// of the shard (not one the migration created).
fn shard_column(
    state: &MigrationState,
    table: &QualifiedName,
    column: &str,
    at: Step,
) -> Option<(String, String)> {
    let column = column.trim_matches('"');
    match state.column(table, column, at) {
        ColumnResolved::Shard { table, column } => Some((table.name, column)),
        ColumnResolved::Tracked(rec) => {
            let col = rec.shard_name()?;
            let t = state.object(rec.table).shard_name()?;
            Some((t.name.clone(), col.to_owned()))
        }
        _ => None,
    }
}

/// The hints of `columns` on one shard, read-only; empty when the shard cannot be read (the
/// proof then falls back to synthetic values).
pub(crate) async fn read_hints(
    conn: &ConnectionSpec,
    instance: &str,
    database: &str,
    schema: &str,
    columns: &[(String, String)],
) -> ValueHints {
    if columns.is_empty() {
        return ValueHints::new();
    }
    let mut spec = conn.clone();
    spec.database = database.to_owned();
    let Ok(mut c) = spec.connect(instance).await else {
        return ValueHints::new();
    };
    let hints = topology::catalog::value_hints(&mut c, schema, columns, HINTS_TIMEOUT)
        .await
        .unwrap_or_default();
    let _ = sqlx::Connection::close(c).await;
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of the issue-14 migration: the type change, SET NOT NULL, the unique index
    /// and both ends of the foreign key; a column the migration adds is left out.
    #[test]
    fn hint_columns_are_the_shard_columns_the_migration_constrains() {
        let sql = "ALTER TABLE orders ADD COLUMN note text;\n\
                   ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n\
                   ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;\n\
                   ALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n\
                   CREATE UNIQUE INDEX orders_ref_key ON orders (ref);\n\
                   ALTER TABLE orders RENAME COLUMN qty_text TO qty;\n\
                   ALTER TABLE orders ALTER COLUMN qty TYPE integer USING qty::integer;\n\
                   ALTER TABLE orders ALTER COLUMN note SET NOT NULL;";
        let m = migration_parser::parse("m.sql", sql, &Default::default()).expect("parses");
        let cols = hint_columns(&m);
        let pairs: Vec<(&str, &str)> = cols.iter().map(|(t, c)| (t.as_str(), c.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("customers", "id"),
                ("orders", "customer_id"),
                ("orders", "qty_text"),
                ("orders", "ref"),
                ("orders", "status"),
            ]
        );
    }
}
