//! `object_already_exists`: an object a statement creates (without `IF NOT EXISTS`) is already
//! on the shard — drift. A name the migration freed earlier (dropped, renamed away, or maybe
//! taken along by a drop) cannot clash. Its references run in the one existence query of
//! [`super::missing_object`].

use migration_parser::Operation;

use crate::probe::cx::{Col, PlanCx};
use crate::probe::kind::ProbeKind;
use crate::probe::model::ObjKind;
use crate::probe::spec::ProbeSpec;

/// The `object_already_exists` kind.
pub(crate) struct AlreadyExists;

impl ProbeSpec for AlreadyExists {
    fn kind(&self) -> ProbeKind {
        ProbeKind::ObjectAlreadyExists
    }

    fn plan(&self, op: &Operation, cx: &mut PlanCx<'_>) {
        let relation = match op {
            Operation::CreateTable {
                table,
                if_not_exists: false,
                ..
            } => Some((table.clone(), false)),
            Operation::CreateView {
                name,
                or_replace: false,
                ..
            } => Some((name.clone(), false)),
            Operation::RenameTable { table, new_name }
            | Operation::RenameSequence {
                name: table,
                new_name,
            }
            | Operation::RenameView {
                name: table,
                new_name,
                ..
            } => Some((table.sibling(new_name), false)),
            Operation::CreateIndex {
                name: Some(n),
                table,
                if_not_exists: false,
                ..
            } => Some((table.sibling(n), true)),
            _ => None,
        };
        if let Some((rel, index)) = relation {
            if let Some(n) = cx.clashing_relation(&rel, index) {
                let name = n.name.clone();
                cx.push_ref(ObjKind::Relation, n, name, false);
            }
            return;
        }
        match op {
            Operation::AddColumn {
                table,
                column,
                if_not_exists: false,
            } => {
                if let Col::Shard(st, c) = cx.col(table, &column.name) {
                    cx.push_ref(ObjKind::Column, st, c, false);
                }
            }
            Operation::RenameColumn {
                table, new_name, ..
            } => {
                if let Col::Shard(st, c) = cx.col(table, new_name) {
                    cx.push_ref(ObjKind::Column, st, c, false);
                }
            }
            Operation::AddConstraint { table, constraint } => {
                // A drop of a shard column or relation earlier takes its constraints along.
                if let Some(name) = &constraint.name
                    && let Some((st, c)) = cx.shard_constraint(table, name)
                    && cx.state.dependent_maybe_dropped(&st, cx.at).is_none()
                {
                    cx.push_ref(ObjKind::Constraint, st, c, false);
                }
            }
            _ => {}
        }
    }
}
