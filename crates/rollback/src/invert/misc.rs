//! Statements with nothing to undo (session settings, transaction control, maintenance) and
//! procedural code (`DO`).

use super::{Inversion, Outcome, misrouted};
use crate::generator::Gen;
use migration_parser::{Operation, Statement};

/// The session family.
pub(crate) struct Session;

impl Inversion for Session {
    fn family(&self) -> &'static str {
        "session"
    }

    fn invert(&self, _g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::Maintenance { command, .. } => {
                Outcome::NoOp(format!("{command} changes no structure"))
            }
            Operation::Set { .. } | Operation::Reset { .. } => {
                Outcome::NoOp("session setting".into())
            }
            Operation::Transaction(_) => Outcome::NoOp("transaction control".into()),
            Operation::Do { .. } => {
                Outcome::Irreversible("cannot invert procedural code (DO block)".into())
            }
            Operation::AlterSystem { name } => Outcome::Irreversible(format!(
                "ALTER SYSTEM changes the server's configuration ({name}), not the schema; it is not inverted"
            )),
            _ => misrouted(stmt),
        }
    }
}
