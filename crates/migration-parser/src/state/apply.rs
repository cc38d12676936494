//! How each [`Operation`] changes the [`MigrationState`]: one function per family of
//! operations, dispatched by [`apply`].

use super::{ColumnOrigin, DataChange, MigrationState, Namespace, ObjectKind, Resolved, Step};
use crate::actions::AlterTableAction;
use crate::model::{ColumnDef, ConstraintDef, ConstraintKind, Operation, QualifiedName};

/// Apply one operation at `at` (statement `at.statement`, transaction `tx`).
pub(crate) fn apply(s: &mut MigrationState, at: Step, tx: usize, op: &Operation) {
    use Operation as O;
    match op {
        O::CreateTable { .. }
        | O::DropTable { .. }
        | O::RenameTable { .. }
        | O::CreateView { .. }
        | O::DropView { .. }
        | O::CreateIndex { .. }
        | O::DropIndex { .. }
        | O::RenameIndex { .. }
        | O::RenameView { .. }
        | O::RenameSequence { .. }
        | O::CreateSequence { .. }
        | O::DropSequence { .. } => relations(s, at, tx, op),
        O::AddColumn { .. }
        | O::DropColumn { .. }
        | O::RenameColumn { .. }
        | O::AlterColumnType { .. }
        | O::SetNotNull { .. }
        | O::DropNotNull { .. } => columns(s, at, tx, op),
        O::AddConstraint { .. }
        | O::ValidateConstraint { .. }
        | O::DropConstraint { .. }
        | O::RenameConstraint { .. } => constraints(s, at, tx, op),
        O::CreateEnum { .. }
        | O::AddEnumValue { .. }
        | O::RenameEnumValue { .. }
        | O::DropType { .. }
        | O::CreateSchema { .. }
        | O::DropSchema { .. }
        | O::CreateType { .. }
        | O::RenameType { .. }
        | O::CreateDomain { .. }
        | O::DropDomain { .. }
        | O::DropExtension { .. } => types_and_schemas(s, at, tx, op),
        O::CreateFunction { .. } | O::DropFunction { .. } => functions(s, at, tx, op),
        O::Update { .. } | O::Delete { .. } | O::Insert { .. } | O::Truncate { .. } => {
            data(s, at, op)
        }
        O::AlterTableOther {
            table,
            action: AlterTableAction::SetSchema { schema },
        } => {
            if let Some(i) = s.touch(ObjectKind::Relation, table, at) {
                let new = QualifiedName::qualified(schema.clone(), table.name.clone());
                s.rename(i, at, new);
            }
        }
        // Code that can do anything: what it changes is unknown.
        O::Do { .. } => s.push_opaque(at),
        // Nothing the model follows: settings, transaction control, locks, maintenance, data
        // refreshes, comments, triggers (no name clash with relations), partitions (attached
        // or detached tables keep their names), sequence ownership, database- and system-level
        // statements, and what the parser does not type.
        O::SetDefault { .. }
        | O::DropDefault { .. }
        | O::Reindex { .. }
        | O::DropDatabase { .. }
        | O::RefreshMaterializedView { .. }
        | O::LockTable { .. }
        | O::Maintenance { .. }
        | O::AlterTableOther { .. }
        | O::AttachPartition { .. }
        | O::DetachPartition { .. }
        | O::Set { .. }
        | O::Reset { .. }
        | O::Transaction(_)
        | O::CreateExtension { .. }
        | O::CreateTrigger { .. }
        | O::DropTrigger { .. }
        | O::Comment { .. }
        | O::CreateDatabase { .. }
        | O::AttachIndexPartition { .. }
        | O::AlterSystem { .. }
        | O::AlterSequence { .. }
        | O::Other { .. } => {}
    }
}

fn relations(s: &mut MigrationState, at: Step, tx: usize, op: &Operation) {
    use Operation as O;
    match op {
        O::CreateTable {
            table,
            columns,
            constraints,
            partition_of,
            if_not_exists,
            as_select,
        } => create_table(s, at, tx, table, columns, constraints, *if_not_exists, {
            *as_select || partition_of.is_some()
        }),
        O::DropTable { table, cascade, .. } => drop_relation(s, at, table, *cascade),
        O::DropView { name, cascade, .. } | O::DropSequence { name, cascade, .. } => {
            drop_relation(s, at, name, *cascade)
        }
        O::DropIndex { name, cascade, .. } => drop_relation(s, at, name, *cascade),
        O::RenameTable { table, new_name } => rename_relation(s, at, table, new_name),
        O::RenameIndex { name, new_name }
        | O::RenameView { name, new_name, .. }
        | O::RenameSequence { name, new_name } => rename_relation(s, at, name, new_name),
        O::CreateView {
            name,
            materialized,
            or_replace,
            ..
        } => {
            let exists = matches!(s.relation(name, at), Resolved::Tracked(..));
            if !(*or_replace && exists) {
                let kind = if *materialized {
                    ObjectKind::MaterializedView
                } else {
                    ObjectKind::View
                };
                let v = s.create(at, tx, kind, name, false);
                // A view's columns come from its query.
                s.set_columns_known(v, false);
            }
        }
        O::CreateIndex {
            name,
            table,
            if_not_exists,
            ..
        } => {
            let t = s.touch(ObjectKind::Relation, table, at);
            if let Some(name) = name {
                let qn = table.sibling(name);
                if *if_not_exists && matches!(s.relation(&qn, at), Resolved::Tracked(..)) {
                    return;
                }
                let i = s.create(at, tx, ObjectKind::Index, &qn, *if_not_exists);
                if let Some(t) = t {
                    s.set_on(i, t);
                }
            }
        }
        O::CreateSequence { name } => {
            s.create(at, tx, ObjectKind::Sequence, name, false);
        }
        _ => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn create_table(
    s: &mut MigrationState,
    at: Step,
    tx: usize,
    table: &QualifiedName,
    columns: &[ColumnDef],
    constraints: &[ConstraintDef],
    if_not_exists: bool,
    columns_unknown: bool,
) {
    // `CREATE TABLE IF NOT EXISTS` of a table the migration already has is a no-op.
    if if_not_exists && matches!(s.relation(table, at), Resolved::Tracked(..)) {
        return;
    }
    let t = s.create(at, tx, ObjectKind::Table, table, if_not_exists);
    s.set_columns_known(t, !columns_unknown);
    for c in columns {
        add_column_def(s, t, at, tx, table, c);
    }
    for c in constraints {
        s.push_constraint(t, Some((at, tx)), c.name.clone(), Some(c.clone()));
    }
}

/// A column created at `at` with its column-level constraints.
fn add_column_def(
    s: &mut MigrationState,
    t: usize,
    at: Step,
    tx: usize,
    table: &QualifiedName,
    c: &ColumnDef,
) {
    s.push_column(t, ColumnOrigin::Created(at, Box::new(c.clone())), &c.name);
    let _ = table;
    let mut inline = Vec::new();
    if let Some(expr) = &c.check {
        inline.push(ConstraintKind::Check { expr: expr.clone() });
    }
    if c.primary_key {
        inline.push(ConstraintKind::PrimaryKey {
            columns: vec![c.name.clone()],
            using_index: None,
        });
    }
    if c.unique {
        inline.push(ConstraintKind::Unique {
            columns: vec![c.name.clone()],
            using_index: None,
            nulls_not_distinct: false,
        });
    }
    if let Some(fk) = &c.references {
        inline.push(fk.clone());
    }
    for kind in inline {
        let def = ConstraintDef {
            name: None,
            kind,
            not_valid: false,
        };
        s.push_constraint(t, Some((at, tx)), None, Some(def));
    }
}

fn drop_relation(s: &mut MigrationState, at: Step, name: &QualifiedName, cascade: bool) {
    if let Some(i) = s.touch(ObjectKind::Relation, name, at) {
        if let Some(shard) = s.object(crate::state::ObjectId(i)).shard_name().cloned() {
            s.push_implicit_drop(at, name.sibling(&shard.name));
        }
        s.drop_object(i, at);
        if cascade {
            s.drop_fks_referencing(i, at);
        }
    }
    if cascade {
        s.push_cascade(at, name, Namespace::Relation);
    }
}

fn rename_relation(s: &mut MigrationState, at: Step, name: &QualifiedName, new_name: &str) {
    if let Some(i) = s.touch(ObjectKind::Relation, name, at) {
        s.rename(i, at, name.sibling(new_name));
    }
}

fn columns(s: &mut MigrationState, at: Step, tx: usize, op: &Operation) {
    use Operation as O;
    let (table, column) = match op {
        O::AddColumn { table, column, .. } => (table, column.name.as_str()),
        O::DropColumn { table, column, .. }
        | O::RenameColumn { table, column, .. }
        | O::AlterColumnType { table, column, .. }
        | O::SetNotNull { table, column }
        | O::DropNotNull { table, column } => (table, column.as_str()),
        _ => return,
    };
    let Some(t) = s.touch(ObjectKind::Relation, table, at) else {
        return;
    };
    if let O::AddColumn {
        column: def,
        if_not_exists,
        ..
    } = op
    {
        let exists = s.column_exists(t, column, at);
        if !(*if_not_exists && exists) {
            add_column_def(s, t, at, tx, table, def);
        }
        return;
    }
    let Some(c) = s.touch_column(t, column, at) else {
        return;
    };
    match op {
        O::DropColumn { .. } => {
            s.column_mut(c).dropped.get_or_insert(at);
            if s.column_mut(c).shard_name().is_some() {
                s.push_implicit_drop(at, table.clone());
            }
        }
        O::RenameColumn { new_name, .. } => s.rename_column(c, at, new_name),
        O::AlterColumnType { new_type, .. } => s.set_column_type(c, at, new_type),
        O::SetNotNull { .. } => s.set_column_not_null(c, at, true),
        O::DropNotNull { .. } => s.set_column_not_null(c, at, false),
        _ => {}
    }
}

fn constraints(s: &mut MigrationState, at: Step, tx: usize, op: &Operation) {
    use Operation as O;
    let table = match op {
        O::AddConstraint { table, .. }
        | O::ValidateConstraint { table, .. }
        | O::DropConstraint { table, .. }
        | O::RenameConstraint { table, .. } => table,
        _ => return,
    };
    let Some(t) = s.touch(ObjectKind::Relation, table, at) else {
        return;
    };
    match op {
        O::AddConstraint { constraint, .. } => {
            s.push_constraint(
                t,
                Some((at, tx)),
                constraint.name.clone(),
                Some(constraint.clone()),
            );
        }
        O::ValidateConstraint { name, .. } => {
            let k = s.touch_constraint(t, name, at);
            s.constraint_mut(k).validated.get_or_insert(at);
        }
        O::DropConstraint { name, .. } => {
            let k = s.touch_constraint(t, name, at);
            s.constraint_mut(k).dropped.get_or_insert(at);
        }
        O::RenameConstraint { name, new_name, .. } => {
            let k = s.touch_constraint(t, name, at);
            s.rename_constraint(k, at, new_name);
        }
        _ => {}
    }
}

fn types_and_schemas(s: &mut MigrationState, at: Step, tx: usize, op: &Operation) {
    use Operation as O;
    match op {
        O::CreateEnum { name, values } => {
            let e = s.create(at, tx, ObjectKind::Enum, name, false);
            for v in values {
                s.push_label(e, v.clone());
            }
        }
        O::AddEnumValue {
            name,
            value,
            if_not_exists,
        } => {
            if let Some(e) = s.touch(ObjectKind::Enum, name, at) {
                let known = s.has_label(e, value);
                if !(*if_not_exists && known) {
                    s.push_label(e, value.clone());
                }
            }
        }
        O::RenameEnumValue {
            name,
            value,
            new_value,
        } => {
            if let Some(e) = s.touch(ObjectKind::Enum, name, at) {
                s.rename_label(e, value, new_value);
            }
        }
        O::DropType { name, cascade, .. } => {
            if let Some(i) = s.touch(ObjectKind::Type, name, at) {
                s.drop_object(i, at);
            }
            if *cascade {
                s.push_cascade(at, name, Namespace::Type);
            }
        }
        O::CreateType { name, .. } | O::CreateDomain { name, .. } => {
            s.create(at, tx, ObjectKind::Type, name, false);
        }
        O::RenameType { name, new_name } => {
            if let Some(i) = s.touch(ObjectKind::Type, name, at) {
                s.rename(i, at, name.sibling(new_name));
            }
        }
        O::DropDomain { name, cascade, .. } => {
            if let Some(i) = s.touch(ObjectKind::Type, name, at) {
                s.drop_object(i, at);
            }
            if *cascade {
                s.push_cascade(at, name, Namespace::Type);
            }
        }
        O::DropExtension { name, cascade, .. } => {
            // An extension's types and functions go with it; with CASCADE, what uses them too.
            let from = QualifiedName::new(name.clone());
            s.push_cascade(at, &from, Namespace::Type);
            if *cascade {
                s.push_cascade(at, &from, Namespace::Function);
            }
        }
        O::CreateSchema {
            name,
            if_not_exists,
        } => {
            let qn = QualifiedName::new(name.clone());
            if !(*if_not_exists && matches!(s.schema(name, at), Resolved::Tracked(..))) {
                s.create(at, tx, ObjectKind::Schema, &qn, *if_not_exists);
            }
        }
        O::DropSchema { name, .. } => {
            if let Some(i) = s.touch(ObjectKind::Schema, &QualifiedName::new(name.clone()), at) {
                s.drop_object(i, at);
            }
            s.drop_schema(at, name);
        }
        _ => {}
    }
}

fn data(s: &mut MigrationState, at: Step, op: &Operation) {
    use Operation as O;
    let (tables, change): (Vec<&QualifiedName>, DataChange) = match op {
        O::Insert { table, .. } => (vec![table], DataChange::Insert),
        O::Update {
            table, has_where, ..
        } => (
            vec![table],
            DataChange::Update {
                has_where: *has_where,
            },
        ),
        O::Delete {
            table, has_where, ..
        } => (
            vec![table],
            DataChange::Delete {
                has_where: *has_where,
            },
        ),
        O::Truncate { tables, .. } => (tables.iter().collect(), DataChange::Truncate),
        _ => return,
    };
    for table in tables {
        let Some(t) = s.touch(ObjectKind::Relation, table, at) else {
            continue;
        };
        s.push_data_change(at, t, change);
        if let O::Update { columns, .. } = op {
            for col in columns {
                if let Some(c) = s.touch_column(t, col, at) {
                    s.assign_column(c, at);
                }
            }
        }
    }
}

fn functions(s: &mut MigrationState, at: Step, tx: usize, op: &Operation) {
    use Operation as O;
    match op {
        // `CREATE OR REPLACE` of a function the migration already has is the same object.
        O::CreateFunction { name, .. }
            if !matches!(s.function(name, at), Resolved::Tracked(..)) =>
        {
            s.create(at, tx, ObjectKind::Function, name, false);
        }
        O::DropFunction { name, cascade, .. } => {
            if let Some(i) = s.touch(ObjectKind::Function, name, at) {
                s.drop_object(i, at);
            }
            if *cascade {
                s.push_cascade(at, name, Namespace::Function);
            }
        }
        _ => {}
    }
}
