//! Types: enums (create, add and rename values), drop of enum, domain and composite types.

use super::{Inversion, Outcome, misrouted, qn, tx};
use crate::catalog::TypeSnap;
use crate::generate::Gen;
use crate::names::quote_literal;
use migration_parser::{Operation, Statement};

/// The type family.
pub(crate) struct Types;

impl Inversion for Types {
    fn family(&self) -> &'static str {
        "type"
    }

    fn invert(&self, g: &mut Gen<'_>, stmt: &Statement, op: &Operation) -> Outcome {
        match op {
            Operation::CreateEnum { name, values } => {
                if let Some(k) = g.key(name) {
                    g.state.types.insert(
                        k,
                        TypeSnap::Enum {
                            labels: values.clone(),
                            comment: None,
                        },
                    );
                }
                Outcome::Inverse(vec![tx(format!("DROP TYPE {}", qn(name)))])
            }
            Operation::AddEnumValue {
                name,
                value,
                if_not_exists,
            } => {
                let key = g.key(name);
                if let Some(TypeSnap::Enum { labels, .. }) =
                    key.as_ref().and_then(|k| g.state.types.get_mut(k))
                {
                    if labels.contains(value) {
                        if *if_not_exists {
                            return Outcome::NoOp(format!(
                                "enum {name} already had the value {value:?} (IF NOT EXISTS)"
                            ));
                        }
                    } else {
                        labels.push(value.clone());
                    }
                }
                Outcome::Irreversible(format!(
                    "PostgreSQL cannot remove a value from an enum (there is no ALTER TYPE ... DROP VALUE) and rows may \
                     already hold {value:?}; undoing needs a new type without the value, every column using {name} \
                     re-cast to it (after rows holding {value:?} are changed), the old type dropped and the new one renamed"
                ))
            }
            Operation::RenameEnumValue {
                name,
                value,
                new_value,
            } => {
                if let Some(TypeSnap::Enum { labels, .. }) =
                    g.key(name).and_then(|k| g.state.types.get_mut(&k))
                {
                    for l in labels.iter_mut() {
                        if l == value {
                            *l = new_value.clone();
                        }
                    }
                }
                Outcome::Inverse(vec![tx(format!(
                    "ALTER TYPE {} RENAME VALUE {} TO {}",
                    qn(name),
                    quote_literal(new_value),
                    quote_literal(value)
                ))])
            }
            Operation::DropType {
                name,
                if_exists,
                cascade,
            } => {
                let found = g.key(name).and_then(|k| g.state.types.remove(&k));
                let Some(ty) = found else {
                    return if *if_exists {
                        Outcome::NoOp(format!("type {name} did not exist (IF EXISTS)"))
                    } else {
                        Outcome::Irreversible(format!(
                            "type {name} is not in the pre-migration catalog"
                        ))
                    };
                };
                let mut v = match &ty {
                    TypeSnap::Enum { labels, .. } => vec![tx(format!(
                        "CREATE TYPE {} AS ENUM ({})",
                        qn(name),
                        labels
                            .iter()
                            .map(|l| quote_literal(l))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))],
                    TypeSnap::Domain { definition, .. } => {
                        vec![tx(format!("CREATE DOMAIN {} {}", qn(name), definition))]
                    }
                    TypeSnap::Composite { definition, .. } => {
                        vec![tx(format!("CREATE TYPE {} AS {}", qn(name), definition))]
                    }
                };
                let comment = match &ty {
                    TypeSnap::Enum { comment, .. }
                    | TypeSnap::Domain { comment, .. }
                    | TypeSnap::Composite { comment, .. } => comment,
                };
                if let Some(c) = comment {
                    v.push(tx(format!(
                        "COMMENT ON TYPE {} IS {}",
                        qn(name),
                        quote_literal(c)
                    )));
                }
                if *cascade {
                    Outcome::Partial(
                        v,
                        format!(
                            "DROP TYPE {name} CASCADE also dropped the columns and objects using it; they are not restored"
                        ),
                    )
                } else {
                    Outcome::Inverse(v)
                }
            }
            _ => misrouted(stmt),
        }
    }
}
