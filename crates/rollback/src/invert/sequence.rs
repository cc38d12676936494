//! Sequences.

use super::{Inversion, Outcome, misrouted, qn, tx};
use crate::catalog::SequenceSnap;
use crate::generate::Gen;
use migration_parser::{Operation, Statement};

/// The sequence family.
pub(crate) struct Sequences;

impl Inversion for Sequences {
    fn family(&self) -> &'static str {
        "sequence"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateSequence { name } => {
                if let Some(k) = g.key(name) {
                    g.state.sequences.insert(k, SequenceSnap::default());
                }
                Outcome::Inverse(vec![tx(format!("DROP SEQUENCE {}", qn(name)))])
            }
            _ => misrouted(stmt),
        }
    }
}
