//! `object_already_exists`: an object a statement creates (without `IF NOT EXISTS`) is already
//! on the shard — drift. Its references run in the one existence query of
//! [`super::missing_object`].

use migration_parser::Operation;

use super::ProbeSpec;
use crate::probe::plan::{PlanCx, with_schema_of};
use crate::probe::{ObjKind, ProbeKind};

/// The `object_already_exists` kind.
pub(crate) struct AlreadyExists;

impl ProbeSpec for AlreadyExists {
    fn kind(&self) -> ProbeKind {
        ProbeKind::ObjectAlreadyExists
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        let w = cx.walk;
        match op {
            Operation::CreateTable {
                table,
                if_not_exists,
                ..
            } if !*if_not_exists && !w.dropped_tables.contains(table) => {
                cx.push_ref(ObjKind::Relation, table.clone(), table.name.clone(), false);
            }
            Operation::RenameTable { table, new_name } => {
                let new = with_schema_of(table, new_name);
                cx.push_ref(ObjKind::Relation, new, new_name.clone(), false);
            }
            Operation::AddColumn {
                table,
                column,
                if_not_exists,
            } => {
                let t = w.shard_table(table);
                if !w.is_created(&t)
                    && !*if_not_exists
                    && !w
                        .dropped_columns
                        .contains(&(t.clone(), column.name.clone()))
                {
                    cx.push_ref(ObjKind::Column, t, column.name.clone(), false);
                }
            }
            Operation::RenameColumn {
                table,
                column,
                new_name,
            } => {
                let t = w.shard_table(table);
                if !w.is_created(&t) && w.added(&t, column).is_none() {
                    cx.push_ref(ObjKind::Column, t, new_name.clone(), false);
                }
            }
            Operation::AddConstraint { table, constraint } => {
                let t = w.shard_table(table);
                if let Some(name) = &constraint.name
                    && !w.is_created(&t)
                    && !w.dropped_constraints.contains(&(t.clone(), name.clone()))
                {
                    cx.push_ref(ObjKind::Constraint, t, name.clone(), false);
                }
            }
            Operation::CreateIndex {
                name: Some(n),
                table,
                if_not_exists,
                ..
            } => {
                let rel = with_schema_of(table, n);
                if !*if_not_exists && !w.created_relations.contains(&rel) {
                    cx.push_ref(ObjKind::Relation, rel, n.clone(), false);
                }
            }
            _ => {}
        }
    }
}
