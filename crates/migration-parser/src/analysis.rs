//! Questions about earlier statements of the same file, for rules that need more than one
//! statement (a table created earlier in the file is empty and invisible to others, a CHECK added
//! and validated earlier lets `SET NOT NULL` skip its scan, ...).

use crate::model::{ConstraintDef, ConstraintKind, Migration, Operation, QualifiedName};

/// Whether two names denote the same relation as far as the file can tell: equal names, and equal
/// schemas when both are given (an unqualified name matches any schema).
pub fn same_relation(a: &QualifiedName, b: &QualifiedName) -> bool {
    a.name == b.name
        && match (&a.schema, &b.schema) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

impl Migration {
    /// Operations of the statements before statement `index` (in file order).
    fn ops_before(&self, index: usize) -> impl Iterator<Item = &Operation> {
        self.statements
            .iter()
            .take(index)
            .flat_map(|s| s.operations.iter())
    }

    /// Whether `table` is created by a `CREATE TABLE` in a statement before `index` (and not
    /// dropped again in between). Such a table is new: nobody else uses it yet, so its locks,
    /// scans and rewrites cost nothing. Renames are followed (`ALTER TABLE new RENAME TO x`).
    pub fn table_created_before(&self, table: &QualifiedName, index: usize) -> bool {
        let mut created: Vec<QualifiedName> = Vec::new();
        for op in self.ops_before(index) {
            match op {
                Operation::CreateTable { table: t, .. } => created.push(t.clone()),
                Operation::DropTable { table: t, .. } => created.retain(|c| !same_relation(c, t)),
                Operation::RenameTable { table: t, new_name } => {
                    for c in created.iter_mut().filter(|c| same_relation(c, t)) {
                        c.name = new_name.clone();
                    }
                }
                _ => {}
            }
        }
        created.iter().any(|c| same_relation(c, table))
    }

    /// The constraint named `name` on `table` added by a statement before `index`
    /// (`ALTER TABLE ... ADD CONSTRAINT` or `CREATE TABLE`), if any. Use it to find the
    /// referenced table of a `VALIDATE CONSTRAINT` on a foreign key.
    pub fn constraint_added_before(
        &self,
        table: &QualifiedName,
        name: &str,
        index: usize,
    ) -> Option<&ConstraintDef> {
        let mut found = None;
        for op in self.ops_before(index) {
            match op {
                Operation::AddConstraint {
                    table: t,
                    constraint,
                } if same_relation(t, table) && constraint.name.as_deref() == Some(name) => {
                    found = Some(constraint);
                }
                Operation::CreateTable {
                    table: t,
                    constraints,
                    ..
                } if same_relation(t, table) => {
                    if let Some(c) = constraints.iter().find(|c| c.name.as_deref() == Some(name)) {
                        found = Some(c);
                    }
                }
                Operation::DropConstraint {
                    table: t, name: n, ..
                } if same_relation(t, table) && n == name => {
                    found = None;
                }
                _ => {}
            }
        }
        found
    }

    /// Whether, before statement `index`, the file added a CHECK constraint on `table` proving
    /// `column IS NOT NULL` that is valid: added without `NOT VALID`, or validated later by
    /// `VALIDATE CONSTRAINT` (still before `index`). Then `SET NOT NULL` skips its scan on PG 12+
    /// (see [`crate::set_not_null_skips_scan`]).
    pub fn not_null_check_validated_before(
        &self,
        table: &QualifiedName,
        column: &str,
        index: usize,
    ) -> bool {
        let mut pending: Vec<String> = Vec::new();
        let mut valid = false;
        for op in self.ops_before(index) {
            match op {
                Operation::AddConstraint {
                    table: t,
                    constraint,
                } if same_relation(t, table) => {
                    if let ConstraintKind::Check { expr } = &constraint.kind
                        && crate::check_proves_not_null(expr, column)
                    {
                        if constraint.not_valid {
                            pending.extend(constraint.name.clone());
                        } else {
                            valid = true;
                        }
                    }
                }
                Operation::CreateTable {
                    table: t,
                    constraints,
                    columns,
                    ..
                } if same_relation(t, table) => {
                    valid |= constraints.iter().any(|c| {
                        matches!(&c.kind, ConstraintKind::Check { expr } if crate::check_proves_not_null(expr, column))
                    });
                    valid |= columns.iter().any(|c| {
                        c.check
                            .as_deref()
                            .is_some_and(|e| crate::check_proves_not_null(e, column))
                    });
                }
                Operation::ValidateConstraint { table: t, name }
                    if same_relation(t, table) && pending.contains(name) =>
                {
                    valid = true;
                }
                _ => {}
            }
        }
        valid
    }
}
