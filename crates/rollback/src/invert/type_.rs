//! Types: enums (create, add and rename values), drop of enum, domain and composite types.

use super::{Inversion, Outcome, misrouted, qn, sibling, tx};
use crate::catalog::TypeSnap;
use crate::generator::Gen;
use crate::names::{quote_ident, quote_literal};
use migration_parser::state::Namespace;
use migration_parser::{Expr, Operation, QualifiedName, Statement, TypeRepresentation};

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
            } => add_enum_value(g, name, value, *if_not_exists),
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
                    if let Some(sql) = g.creating_sql(Namespace::Type, name) {
                        // Created earlier in this migration (range, base type, ...).
                        return Outcome::Inverse(vec![tx(sql)]);
                    }
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
                let lost = match g.key(name) {
                    Some(k) if *cascade => g.cascade_views(super::dependents::Target::Type(&k)),
                    _ => Vec::new(),
                };
                let used_by_columns = g.state.tables.values().any(|t| {
                    t.columns.iter().any(|c| {
                        let ty = c.data_type.trim_end_matches("[]");
                        ty == name.name || ty.ends_with(&format!(".{}", name.name))
                    })
                });
                if *cascade && (used_by_columns || !lost.is_empty()) {
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
            Operation::CreateType {
                name,
                representation,
            } => create_type(g, name, representation),
            Operation::RenameType { name, new_name } => rename_type(g, name, new_name),
            Operation::CreateDomain {
                name,
                data_type,
                default,
                not_null,
                checks,
            } => create_domain(g, name, data_type, default.as_ref(), *not_null, checks),
            Operation::DropDomain {
                name, if_exists, ..
            } => drop_domain(g, name, *if_exists),
            _ => misrouted(stmt),
        }
    }
}

/// `ALTER TYPE t ADD VALUE v`: the enum rebuilt without the value (`invert::enum_value`).
fn add_enum_value(
    g: &mut Gen<'_>,
    name: &QualifiedName,
    value: &str,
    if_not_exists: bool,
) -> Outcome {
    let key = g.key(name);
    let mut before = None;
    if let Some(TypeSnap::Enum { labels, .. }) = key.as_ref().and_then(|k| g.state.types.get_mut(k))
    {
        if labels.iter().any(|l| l == value) {
            if if_not_exists {
                return Outcome::NoOp(format!(
                    "enum {name} already had the value {value:?} (IF NOT EXISTS)"
                ));
            }
        } else {
            before = Some(labels.clone());
            labels.push(value.to_string());
        }
    }
    match before {
        Some(labels) => super::enum_value::remove_enum_value(g, name, value, &labels),
        None => Outcome::Irreversible(format!(
            "PostgreSQL cannot remove a value from an enum (there is no ALTER TYPE ... DROP VALUE), \
             and the labels of {name} before the migration are not known"
        )),
    }
}

/// `CREATE TYPE` other than an enum: drop it (a composite type is remembered with its
/// attributes, so a later drop in the same migration can recreate it).
fn create_type(g: &mut Gen<'_>, name: &QualifiedName, rep: &TypeRepresentation) -> Outcome {
    if let TypeRepresentation::Composite { attributes } = rep
        && let Some(k) = g.key(name)
    {
        let attrs: Vec<String> = attributes
            .iter()
            .map(|a| format!("{} {}", quote_ident(&a.name), a.data_type))
            .collect();
        g.state.types.insert(
            k,
            TypeSnap::Composite {
                definition: format!("({})", attrs.join(", ")),
                comment: None,
            },
        );
    }
    Outcome::Inverse(vec![tx(format!("DROP TYPE {}", qn(name)))])
}

/// `ALTER TYPE t RENAME TO n`: rename it back.
fn rename_type(g: &mut Gen<'_>, name: &QualifiedName, new_name: &str) -> Outcome {
    if let Some(k) = g.key(name)
        && let Some(t) = g.state.types.remove(&k)
    {
        g.state.types.insert(new_name.to_string(), t);
    }
    Outcome::Inverse(vec![tx(format!(
        "ALTER TYPE {} RENAME TO {}",
        sibling(name, new_name),
        quote_ident(&name.name)
    ))])
}

/// `DROP DOMAIN`: the old definition.
fn drop_domain(g: &mut Gen<'_>, name: &QualifiedName, if_exists: bool) -> Outcome {
    let found = g.key(name).and_then(|k| match g.state.types.get(&k) {
        Some(TypeSnap::Domain { .. }) => g.state.types.remove(&k),
        _ => None,
    });
    match found {
        Some(TypeSnap::Domain {
            definition,
            comment,
        }) if !definition.is_empty() => {
            let mut v = vec![tx(format!("CREATE DOMAIN {} {definition}", qn(name)))];
            if let Some(c) = comment {
                v.push(tx(format!(
                    "COMMENT ON DOMAIN {} IS {}",
                    qn(name),
                    quote_literal(&c)
                )));
            }
            Outcome::Inverse(v)
        }
        Some(_) => Outcome::Irreversible(format!("the definition of domain {name} is unknown")),
        None if if_exists => Outcome::NoOp(format!("domain {name} did not exist (IF EXISTS)")),
        None => Outcome::Irreversible(format!("domain {name} is not in the pre-migration catalog")),
    }
}

/// `CREATE DOMAIN`: drop it (remembered with its definition, so a later drop in the same
/// migration can recreate it).
fn create_domain(
    g: &mut Gen<'_>,
    name: &QualifiedName,
    data_type: &str,
    default: Option<&Expr>,
    not_null: bool,
    checks: &[String],
) -> Outcome {
    let mut definition = format!("AS {data_type}");
    if let Some(d) = default {
        definition.push_str(&format!(" DEFAULT {}", d.sql));
    }
    if not_null {
        definition.push_str(" NOT NULL");
    }
    for c in checks {
        definition.push_str(&format!(" CHECK ({c})"));
    }
    if let Some(k) = g.key(name) {
        g.state.types.insert(
            k,
            TypeSnap::Domain {
                definition,
                comment: None,
            },
        );
    }
    Outcome::Inverse(vec![tx(format!("DROP DOMAIN {}", qn(name)))])
}
