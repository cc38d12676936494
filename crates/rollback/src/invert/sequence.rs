//! Sequences.

use super::sql::sequence_sql;
use super::{Inversion, Outcome, misrouted, qn, sibling, tx};
use crate::catalog::SequenceSnap;
use crate::generator::Gen;
use crate::names::quote_ident;
use migration_parser::state::Namespace;
use migration_parser::{Operation, QualifiedName, SequenceOwnedBy, Statement};

/// The sequence family.
pub(crate) struct Sequences;

impl Inversion for Sequences {
    fn family(&self) -> &'static str {
        "sequence"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateSequence { name } => {
                // A sequence that already exists makes a plain CREATE fail: the statement was
                // CREATE SEQUENCE IF NOT EXISTS, and it left that sequence alone.
                if g.key(name)
                    .and_then(|k| g.state.sequences.get(&k))
                    .is_some()
                {
                    return Outcome::NoOp(format!(
                        "sequence {name} already existed (IF NOT EXISTS)"
                    ));
                }
                if let Some(k) = g.key(name) {
                    g.state.sequences.insert(k, SequenceSnap::default());
                }
                Outcome::Inverse(vec![tx(format!("DROP SEQUENCE {}", qn(name)))])
            }
            Operation::DropSequence {
                name, if_exists, ..
            } => drop_sequence(g, name, *if_exists),
            Operation::AlterSequence { name, owned_by } => alter_sequence(g, name, owned_by),
            Operation::RenameSequence { name, new_name } => rename_sequence(g, name, new_name),
            _ => misrouted(stmt),
        }
    }
}

/// `DROP SEQUENCE`: the old sequence and its owner (its position restarts).
fn drop_sequence(g: &mut Gen<'_>, name: &QualifiedName, if_exists: bool) -> Outcome {
    match g.key(name).and_then(|k| g.state.sequences.remove(&k)) {
        Some(s) if !s.data_type.is_empty() => {
            let mut out = vec![tx(sequence_sql(&qn(name), &s))];
            if let Some((t, c)) = &s.owned_by {
                out.push(tx(format!(
                    "ALTER SEQUENCE {} OWNED BY {}.{}",
                    qn(name),
                    sibling(name, t),
                    quote_ident(c)
                )));
            }
            Outcome::Partial(
                out,
                "the sequence's position is lost; it restarts at its START value".into(),
            )
        }
        // Created earlier in this migration: its own CREATE recreates it.
        Some(_) => match g.creating_sql(Namespace::Relation, name) {
            Some(sql) => Outcome::Inverse(vec![tx(sql)]),
            None => Outcome::Irreversible(format!("the definition of sequence {name} is unknown")),
        },
        None if if_exists => Outcome::NoOp(format!("sequence {name} did not exist (IF EXISTS)")),
        None => Outcome::Irreversible(format!(
            "sequence {name} is not in the pre-migration catalog"
        )),
    }
}

/// `ALTER SEQUENCE … RENAME TO`: renamed back (columns drawing from it follow: their defaults
/// hold the sequence's OID, not its name).
fn rename_sequence(g: &mut Gen<'_>, name: &QualifiedName, new_name: &str) -> Outcome {
    if let Some(k) = g.key(name) {
        let Some(s) = g.state.sequences.remove(&k) else {
            return Outcome::Irreversible(format!(
                "sequence {name} is not in the pre-migration catalog"
            ));
        };
        g.state
            .sequences
            .insert(crate::names::truncate_identifier(new_name).to_string(), s);
    }
    Outcome::Inverse(vec![tx(format!(
        "ALTER SEQUENCE {} RENAME TO {}",
        sibling(name, new_name),
        quote_ident(&name.name)
    ))])
}

/// `ALTER SEQUENCE`: the old parameters and owner (not the position).
fn alter_sequence(g: &mut Gen<'_>, name: &QualifiedName, owned_by: &SequenceOwnedBy) -> Outcome {
    let Some(s) = g.key(name).and_then(|k| g.state.sequences.get_mut(&k)) else {
        return Outcome::Irreversible(format!(
            "sequence {name} is not in the pre-migration catalog"
        ));
    };
    let before = s.clone();
    match owned_by {
        SequenceOwnedBy::Nobody => s.owned_by = None,
        SequenceOwnedBy::Column { table, column } => {
            s.owned_by = Some((table.name.clone(), column.clone()))
        }
        _ => {}
    }
    if before.data_type.is_empty() {
        return Outcome::NoOp(format!("sequence {name} is created by this migration"));
    }
    let mut sql = sequence_sql(&qn(name), &before).replacen("CREATE SEQUENCE", "ALTER SEQUENCE", 1);
    match &before.owned_by {
        Some((t, c)) => sql.push_str(&format!(
            " OWNED BY {}.{}",
            sibling(name, t),
            quote_ident(c)
        )),
        None => sql.push_str(" OWNED BY NONE"),
    }
    Outcome::Partial(
        vec![tx(sql)],
        format!(
            "ALTER SEQUENCE {name}: the parameters are restored, a changed current value (RESTART) is not"
        ),
    )
}
