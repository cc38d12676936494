//! What the migration will ask of the rows already there, read from its typed operations with
//! [`MigrationState`] (names resolved back to the shard's, through renames): new CHECKs, `SET
//! NOT NULL`, new unique indexes and keys, new foreign keys (also `NOT VALID` then `VALIDATE`)
//! become temporary constraints on the shadow while rows are seeded (a `NOT VALID` constraint
//! checks every new row, so the server itself rejects a row the migration would reject); a
//! column whose type changes gets values that cast to the new type.

use std::collections::BTreeMap;

use migration_parser::state::ColumnResolved;
use migration_parser::{ConstraintKind, Migration, MigrationState, Operation, QualifiedName, Step};
use topology::catalog::Catalog;

use crate::names::quote_ident;

/// A temporary object: how to create it and how to drop it again.
#[derive(Debug, Clone)]
pub(super) struct Temp {
    /// Creating statement.
    pub create: String,
    /// Dropping statement.
    pub drop: String,
}

/// What the migration needs of the seeded rows.
#[derive(Debug, Default)]
pub(super) struct Needs {
    /// Temporary constraints and indexes, in migration order.
    pub temps: Vec<Temp>,
    /// `(table, column)` → types the column's values must cast to.
    pub casts: BTreeMap<(String, String), Vec<String>>,
}

struct Cx<'a> {
    state: MigrationState,
    cat: &'a Catalog,
}

impl Cx<'_> {
    /// The shard table (in the catalog's schema) `name` denotes at `at`.
    fn table(&self, name: &QualifiedName, at: Step) -> Option<String> {
        let r = self.state.relation(name, at);
        let n = r.on_shard()?;
        let in_schema = n.schema.as_deref().is_none_or(|s| s == self.cat.schema);
        (in_schema && self.cat.tables.contains_key(&n.name)).then(|| n.name.clone())
    }

    /// The shard column `column` of `table` denotes at `at`.
    fn column(&self, table: &QualifiedName, column: &str, at: Step) -> Option<String> {
        match self.state.column(table, column, at) {
            ColumnResolved::Tracked(r) => r.shard_name().map(str::to_string),
            ColumnResolved::Shard { column, .. } => Some(column),
            _ => None,
        }
    }

    fn columns(&self, table: &QualifiedName, cols: &[String], at: Step) -> Option<Vec<String>> {
        cols.iter()
            .map(|c| self.column(table, c, at).map(|c| quote_ident(&c)))
            .collect()
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.cat.schema), quote_ident(table))
    }
}

/// A plain identifier of an index key (`email`, `"Email"`), unquoted; `None` for expressions.
fn key_identifier(key: &str) -> Option<String> {
    let k = key.trim();
    if let Some(inner) = k.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        return (!inner.contains('"')).then(|| inner.to_string());
    }
    let plain = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        && !k.starts_with(|c: char| c.is_ascii_digit());
    plain.then(|| k.to_ascii_lowercase())
}

/// What `migration` needs of rows of the tables of `cat`.
pub(super) fn derive(migration: &Migration, cat: &Catalog) -> Needs {
    let cx = Cx {
        state: MigrationState::new(migration),
        cat,
    };
    let mut needs = Needs::default();
    for s in &migration.statements {
        for (j, op) in s.operations.iter().enumerate() {
            let at = Step {
                statement: s.index,
                op: j,
            };
            needs_of(&cx, op, at, &mut needs);
        }
    }
    needs
}

fn needs_of(cx: &Cx<'_>, op: &Operation, at: Step, needs: &mut Needs) {
    let name = format!("deployclaw_seed_{}", needs.temps.len() + 1);
    match op {
        Operation::AlterColumnType {
            table,
            column,
            new_type,
            ..
        } => {
            if let (Some(t), Some(c)) = (cx.table(table, at), cx.column(table, column, at)) {
                needs
                    .casts
                    .entry((t, c))
                    .or_default()
                    .push(new_type.clone());
            }
        }
        Operation::SetNotNull { table, column } => {
            if let (Some(t), Some(c)) = (cx.table(table, at), cx.column(table, column, at)) {
                needs.temps.push(check(
                    cx,
                    &t,
                    &name,
                    &format!("{} IS NOT NULL", quote_ident(&c)),
                ));
            }
        }
        Operation::AddConstraint { table, constraint } => {
            let Some(t) = cx.table(table, at) else { return };
            constraint_needs(cx, table, &t, &constraint.kind, at, needs);
        }
        Operation::CreateIndex {
            table,
            columns,
            unique: true,
            ..
        } => {
            let Some(t) = cx.table(table, at) else { return };
            let keys: Option<Vec<String>> = columns
                .iter()
                .map(|k| match key_identifier(k) {
                    Some(id) => cx.column(table, &id, at).map(|c| quote_ident(&c)),
                    None => Some(k.clone()),
                })
                .collect();
            if let Some(keys) = keys {
                needs.temps.push(unique(cx, &t, &name, &keys));
            }
        }
        _ => {}
    }
}

fn constraint_needs(
    cx: &Cx<'_>,
    table: &QualifiedName,
    t: &str,
    kind: &ConstraintKind,
    at: Step,
    needs: &mut Needs,
) {
    let name = format!("deployclaw_seed_{}", needs.temps.len() + 1);
    match kind {
        ConstraintKind::Check { expr } => needs.temps.push(check(cx, t, &name, expr)),
        ConstraintKind::PrimaryKey { columns, .. } | ConstraintKind::Unique { columns, .. }
            if !columns.is_empty() =>
        {
            if let Some(cols) = cx.columns(table, columns, at) {
                if matches!(kind, ConstraintKind::PrimaryKey { .. }) {
                    let nn: Vec<String> = cols.iter().map(|c| format!("{c} IS NOT NULL")).collect();
                    needs.temps.push(check(cx, t, &name, &nn.join(" AND ")));
                }
                let name = format!("deployclaw_seed_{}", needs.temps.len() + 1);
                needs.temps.push(unique(cx, t, &name, &cols));
            }
        }
        ConstraintKind::ForeignKey {
            columns,
            ref_table,
            ref_columns,
            ..
        } => {
            let (Some(cols), Some(rt)) = (cx.columns(table, columns, at), cx.table(ref_table, at))
            else {
                return;
            };
            let refs = if ref_columns.is_empty() {
                String::new()
            } else {
                match cx.columns(ref_table, ref_columns, at) {
                    Some(r) => format!(" ({})", r.join(", ")),
                    None => return,
                }
            };
            needs.temps.push(Temp {
                create: format!(
                    "ALTER TABLE {} ADD CONSTRAINT {name} FOREIGN KEY ({}) REFERENCES {}{refs} NOT VALID",
                    cx.qualified(t),
                    cols.join(", "),
                    cx.qualified(&rt)
                ),
                drop: format!("ALTER TABLE {} DROP CONSTRAINT {name}", cx.qualified(t)),
            });
        }
        _ => {}
    }
}

fn check(cx: &Cx<'_>, t: &str, name: &str, expr: &str) -> Temp {
    Temp {
        create: format!(
            "ALTER TABLE {} ADD CONSTRAINT {name} CHECK ({expr}) NOT VALID",
            cx.qualified(t)
        ),
        drop: format!("ALTER TABLE {} DROP CONSTRAINT {name}", cx.qualified(t)),
    }
}

fn unique(cx: &Cx<'_>, t: &str, name: &str, keys: &[String]) -> Temp {
    Temp {
        create: format!(
            "CREATE UNIQUE INDEX {name} ON {} ({})",
            cx.qualified(t),
            keys.join(", ")
        ),
        drop: format!("DROP INDEX {}.{name}", quote_ident(&cx.cat.schema)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_that_are_plain_names() {
        assert_eq!(key_identifier("email").as_deref(), Some("email"));
        assert_eq!(key_identifier("\"Email\"").as_deref(), Some("Email"));
        assert_eq!(key_identifier("lower(email)"), None);
        assert_eq!(key_identifier("email DESC"), None);
    }
}
