//! Data changes: `INSERT`, `UPDATE`, `DELETE`, `TRUNCATE` (irreversible unless the table is
//! created by the same migration).

use super::{Inversion, Outcome, misrouted};
use crate::generator::Gen;
use migration_parser::{Operation, Statement};

/// The data family.
pub(crate) struct Data;

impl Inversion for Data {
    fn family(&self) -> &'static str {
        "data"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::Truncate { tables, .. } => {
                if tables
                    .iter()
                    .all(|t| g.table(t).is_some_and(|t| t.origin.is_none()))
                {
                    Outcome::NoOp("truncates only tables this migration creates".into())
                } else {
                    Outcome::Irreversible(format!(
                        "TRUNCATE deletes every row of {}; a rollback script cannot bring data back",
                        tables
                            .iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
            Operation::Update { table, .. }
            | Operation::Delete { table, .. }
            | Operation::Insert { table, .. } => {
                if g.table(table).is_some_and(|t| t.origin.is_none()) {
                    Outcome::NoOp(format!(
                        "rows of {table} (created by this migration) go away with the table"
                    ))
                } else {
                    let what = match op {
                        Operation::Update { .. } => "UPDATE overwrites values",
                        Operation::Delete { .. } => "DELETE removes rows",
                        _ => "INSERT adds rows that cannot be told apart from existing ones",
                    };
                    Outcome::Irreversible(format!(
                        "data change on {table}: {what}; a schema rollback cannot undo it"
                    ))
                }
            }
            _ => misrouted(stmt),
        }
    }
}
